"""The venue's public feed (DESIGN.md §2), free of any framework.

Every entry is a JSON object published in RFC 8785 canonical form beside its
SHA-256, numbered 1, 2, 3, ... without a gap in the order the entries
commit, so a reader that continues after the last sequence it read never
misses or reads twice an entry.

The entries are chained: every entry's signed body carries its ``feed``
link, its own sequence, the SHA-256 of the previous entry's body (``GENESIS``
for the first) and its publication time, so an entry cannot be renumbered,
dropped from the middle or moved without breaking a signature or the chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kernel.canonical import canonical_json


def canonical_text(body: Mapping[str, Any]) -> str:
    """The body as RFC 8785 canonical JSON text."""
    return canonical_json(dict(body)).decode("utf-8")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: The previous_sha256 of the first entry.
GENESIS = "0" * 64


@dataclass(frozen=True)
class FeedLink:
    """Where an entry goes in the feed, known only under the feed's lock."""

    sequence: int
    previous_sha256: str
    published_at: datetime

    def as_dict(self, published_at_text: str) -> dict[str, Any]:
        return {"sequence": self.sequence, "previous_sha256": self.previous_sha256,
                "published_at": published_at_text}


@dataclass(frozen=True)
class NewFeedEntry:
    """An entry about to be published: its number is given when it commits."""

    kind: str
    subject: str
    body: str
    body_sha256: str

    @classmethod
    def of(cls, kind: str, subject: str, body: Mapping[str, Any]) -> NewFeedEntry:
        text = canonical_text(body)
        return cls(kind, subject, text, sha256_hex(text))

    @classmethod
    def of_canonical(cls, kind: str, subject: str, canonical: bytes) -> NewFeedEntry:
        """An entry whose body is already RFC 8785 canonical JSON (UTF-8)."""
        return cls(kind, subject, canonical.decode("utf-8"),
                   hashlib.sha256(canonical).hexdigest())


@dataclass(frozen=True)
class FeedEntry:
    """A published entry."""

    sequence: int
    kind: str
    subject: str
    published_at: datetime
    body: str
    body_sha256: str
