"""The platforms' Open311 API keys: random secrets the database knows only by their SHA-256.

A key is 256 random bits, so a plain SHA-256 of it is as good as a salted or
keyed hash: nobody can search that space, and the hash is enough to find the
platform a key belongs to. The embedded default hands the keys to platforms
in a file (``var/open311/api-keys.json``, 0600, like the center's private
keys): written on first start, kept on later starts, and a platform whose key
in the file no longer matches the database (or is missing from it) gets a new
one, written there, so file and database always agree after a start.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from datetime import datetime
from pathlib import Path

import structlog

from kernel.privatefiles import make_private
from services.complaints.db.open311 import Open311UnitOfWork

log = structlog.get_logger("govhall.complaints.open311")

#: Every key starts so, which tells it apart from other secrets in a configuration.
KEY_PREFIX = "o311_"


def new_api_key() -> str:
    """A fresh key: the prefix and 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(api_key: str) -> str:
    """What the database keeps of ``api_key``: its SHA-256, in hex."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def read_key_file(path: Path) -> dict[str, str]:
    """The keys ``path`` holds by platform id; empty when it is missing or unreadable."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(content, dict):
        return {}
    return {str(k): v for k, v in content.items() if isinstance(v, str)}


def _write_key_file(path: Path, keys: dict[str, str]) -> None:
    """Replace ``path`` with ``keys`` at once, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(keys, handle, ensure_ascii=False, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    make_private(path.parent)


def ensure_platform_keys(*, uow: Open311UnitOfWork, key_file: Path, now: datetime) -> list[str]:
    """Give every platform a key the file and the database agree on; the platforms that got
    a new one."""
    written = read_key_file(key_file)
    with uow:
        stored = uow.api_keys.hashes()
        keys: dict[str, str] = {}
        issued: list[str] = []
        for platform in uow.platforms.list():
            known = written.get(platform.id)
            if known is not None and stored.get(platform.id) == key_hash(known):
                keys[platform.id] = known
                continue
            keys[platform.id] = new_api_key()
            uow.api_keys.replace(platform.id, key_hash(keys[platform.id]), at=now)
            issued.append(platform.id)
        if issued or keys != written:
            _write_key_file(key_file, keys)
        uow.commit()
    if issued:
        log.info("open311.api_keys_issued", platforms=issued, key_file=str(key_file))
    return issued
