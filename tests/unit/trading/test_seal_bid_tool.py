"""``python -m tools.seal_bid`` end to end in a subprocess, held to the venue's format."""

from __future__ import annotations

import ast
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from services.trading.domain.sealed_bids import KeyMismatch, open_bid, seal_bid

ROOT = Path(__file__).resolve().parents[3]
TENDER = "TD-2026-0001"
BIDDER = "91320100MA1XXXXX0X"
DOCUMENT = b"%PDF-1.7\n" + "投标函：报价 1,234,567.00 元".encode() + bytes(range(256)) * 8


def _tool(*args: str | Path) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "tools.seal_bid", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout, done.stderr


def _printed(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines())


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    document = tmp_path / "bid.pdf"
    document.write_bytes(DOCUMENT)
    code, out, err = _tool("seal", "--tender", TENDER, "--bidder", BIDDER, document)
    assert (code, err) == (0, "")
    return tmp_path, _printed(out)


def test_seal_writes_the_envelope_and_a_private_key_and_prints_the_commitments(
        sealed: tuple[Path, dict[str, str]]) -> None:
    folder, printed = sealed
    envelope = (folder / "bid.sealed").read_bytes()
    key = bytes.fromhex((folder / "bid.key").read_text("ascii"))
    assert stat.S_IMODE((folder / "bid.key").stat().st_mode) == 0o600
    assert DOCUMENT not in envelope
    # The venue's own code opens what the tool sealed, under the printed commitments.
    assert open_bid(envelope, key, tender_number=TENDER, bidder_id=BIDDER,
                    ciphertext_sha256=printed["ciphertext_sha256"],
                    key_commitment=printed["key_commitment"]) == DOCUMENT


def test_seal_never_overwrites_a_key_or_an_envelope(sealed: tuple[Path, dict[str, str]]) -> None:
    folder, _ = sealed
    key = (folder / "bid.key").read_bytes()
    code, _, err = _tool("seal", "--tender", TENDER, "--bidder", BIDDER, folder / "bid.pdf")
    assert code == 3
    assert "exists already" in err
    assert (folder / "bid.key").read_bytes() == key


def test_reveal_checks_the_key_against_the_commitments_and_prints_it(
        sealed: tuple[Path, dict[str, str]]) -> None:
    folder, printed = sealed
    code, out, _ = _tool("reveal", "--tender", TENDER, "--bidder", BIDDER, folder / "bid.sealed",
                         folder / "bid.key", "--ciphertext-sha256", printed["ciphertext_sha256"],
                         "--key-commitment", printed["key_commitment"])
    assert code == 0
    assert _printed(out)["key"] == (folder / "bid.key").read_text("ascii").strip()
    code, _, err = _tool("reveal", "--tender", "TD-2026-0002", "--bidder", BIDDER,
                         folder / "bid.sealed", folder / "bid.key",
                         "--key-commitment", printed["key_commitment"])
    assert code == 1
    assert "key_mismatch" in err


def test_open_does_what_the_venue_does(sealed: tuple[Path, dict[str, str]]) -> None:
    folder, printed = sealed
    commitments = ("--ciphertext-sha256", printed["ciphertext_sha256"],
                   "--key-commitment", printed["key_commitment"])
    code, out, _ = _tool("open", "--tender", TENDER, "--bidder", BIDDER, folder / "bid.sealed",
                         folder / "bid.key", *commitments)
    assert code == 0, out
    assert (folder / "bid.opened").read_bytes() == DOCUMENT
    assert stat.S_IMODE((folder / "bid.opened").stat().st_mode) == 0o600

    other = folder / "other.key"
    other.write_text("ab" * 32)
    code, _, err = _tool("open", "--tender", TENDER, "--bidder", BIDDER, folder / "bid.sealed",
                         other, *commitments, "-o", folder / "x")
    assert (code, "key_mismatch" in err, (folder / "x").exists()) == (1, True, False)

    tampered = folder / "tampered.sealed"
    envelope = bytearray((folder / "bid.sealed").read_bytes())
    envelope[-1] ^= 1
    tampered.write_bytes(bytes(envelope))
    code, _, err = _tool("open", "--tender", TENDER, "--bidder", BIDDER, tampered,
                         folder / "bid.key", *commitments, "-o", folder / "y")
    assert (code, "ciphertext_mismatch" in err) == (1, True)


def test_the_tool_opens_nothing_the_venue_refuses(tmp_path: Path) -> None:
    """Sealed by the venue's code, opened by the tool; a wrong key is refused by both."""
    bid, key = seal_bid(DOCUMENT, tender_number=TENDER, bidder_id=BIDDER)
    (tmp_path / "b.sealed").write_bytes(bid.envelope)
    (tmp_path / "b.key").write_text(key.hex())
    (tmp_path / "w.key").write_text((bytes([key[0] ^ 1]) + key[1:]).hex())
    commitments = ("--ciphertext-sha256", bid.ciphertext_sha256,
                   "--key-commitment", bid.key_commitment)
    code, _, _ = _tool("open", "--tender", TENDER, "--bidder", BIDDER, tmp_path / "b.sealed",
                       tmp_path / "b.key", *commitments)
    assert code == 0
    assert (tmp_path / "b.opened").read_bytes() == DOCUMENT
    code, _, err = _tool("open", "--tender", TENDER, "--bidder", BIDDER, tmp_path / "b.sealed",
                         tmp_path / "w.key", *commitments, "-o", tmp_path / "w.opened")
    assert (code, "key_mismatch" in err) == (1, True)
    with pytest.raises(KeyMismatch):
        open_bid(bid.envelope, bytes.fromhex((tmp_path / "w.key").read_text()),
                 tender_number=TENDER, bidder_id=BIDDER, ciphertext_sha256=bid.ciphertext_sha256,
                 key_commitment=bid.key_commitment)


def test_bad_input_gets_a_message_and_an_exit_status_never_a_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    long_key = tmp_path / "long.key"
    long_key.write_text("ab" * 100)
    cases = [
        (("seal", "--tender", TENDER, "--bidder", BIDDER, tmp_path / "missing.pdf"), 3),
        (("seal", "--tender", TENDER, "--bidder", BIDDER, empty), 1),
        (("seal", "--tender", " T", "--bidder", BIDDER, empty), 1),
        (("open", "--tender", TENDER, "--bidder", BIDDER, empty, empty,
          "--ciphertext-sha256", "zz", "--key-commitment", "0" * 64), 1),
        (("open", "--tender", TENDER), 2),
    ]
    for args, status in cases:
        code, _, err = _tool(*args)
        assert code == status, (args, err)
        assert "Traceback" not in err
    code, _, err = _tool("reveal", "--tender", TENDER, "--bidder", BIDDER, empty, long_key)
    assert (code, "malformed_key" in err) == (1, True)


def test_the_tool_uses_the_standard_library_and_cryptography_only() -> None:
    tree = ast.parse((ROOT / "tools" / "seal_bid.py").read_text("utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}
