"""Private files: everything a govhall process writes is readable by its owner only.

Databases, logs, keys, the Temporal dev server's SQLite file and pid files
hold personal data or secrets, so each process sets the umask 077 before it
creates anything (folders 0700, files 0600), and the runner tightens the
modes of files made before this rule existed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


def set_private_umask() -> None:
    """From here on, this process (and its children) create files 0600 and folders 0700."""
    os.umask(PRIVATE_UMASK)


def make_private(root: Path) -> list[Path]:
    """Take group and other permissions off everything under ``root``; what changed.

    Symbolic links are left alone (their target is not necessarily ours).
    """
    changed: list[Path] = []
    if not root.exists():
        return changed
    paths = [root]
    for folder, folders, files in os.walk(root):
        paths += [Path(folder) / name for name in (*folders, *files)]
    for path in paths:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            path.chmod(mode & ~0o077)
            changed.append(path)
    return changed
