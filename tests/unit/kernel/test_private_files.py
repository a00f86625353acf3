"""Files under var/ are readable by their owner only: 0600 files, 0700 folders."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from kernel.pki import ensure_pki
from kernel.privatefiles import make_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_make_private_takes_group_and_other_bits_off_everything_below(tmp_path: Path) -> None:
    var = tmp_path / "var"
    (var / "db").mkdir(parents=True)
    (var / "db").chmod(0o755)
    database = var / "db" / "intake.sqlite3"
    database.write_bytes(b"")
    database.chmod(0o644)
    script = var / "run.sh"
    script.write_bytes(b"")
    script.chmod(0o755)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"")
    outside.chmod(0o644)
    (var / "link").symlink_to(outside)

    changed = make_private(var)

    assert (mode(var / "db"), mode(database), mode(script)) == (0o700, 0o600, 0o700)
    assert mode(outside) == 0o644  # a link's target is not ours to change
    assert set(changed) >= {var / "db", database, script}
    assert make_private(var) == []


def test_a_service_process_writes_its_database_and_keys_private(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    ensure_pki(pki)
    before = {p for p in tmp_path.rglob("*")}
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GOVHALL_")}
    environment |= {"GOVHALL_INTAKE_PKI_DIR": str(pki),
                    "GOVHALL_INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'intake.db'}"}
    (tmp_path / "db").mkdir(mode=0o700)
    completed = subprocess.run([sys.executable, "-m", "services.intake.main", "prepare"],
                               env=environment, capture_output=True, text=True, timeout=120,
                               check=False, umask=0o022)
    assert completed.returncode == 0, completed.stderr
    made = {p for p in tmp_path.rglob("*")} - before
    assert tmp_path / "db" / "intake.db" in made
    open_to_others = [(str(p), oct(mode(p))) for p in made if mode(p) & 0o077]
    assert open_to_others == []
