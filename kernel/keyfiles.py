"""Secret key files: made once, readable by their owner only.

Several processes starting at once must agree on one key: each writes its
candidate to a private temporary file and links it into place; the first
link wins and the others read the winner's. Folders are 0700, files 0600.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def create_once(path: Path, content: bytes) -> bytes:
    """Write ``content`` to ``path`` unless it exists; return what ``path`` holds."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return path.read_bytes()
