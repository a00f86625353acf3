#!/usr/bin/env python3
"""Recompute govhall's verifiable draws from the public feed alone, and say whether they hold.

    python -m tools.verify_draw --feed FEED.json --key trading.pem [--draw DR-2026-0001]
    python -m tools.verify_draw --address HOST:PORT --pki-dir DIR --system NAME
                                [--key trading.pem] [--save FEED.json] [--draw DR-2026-0001]

FEED holds feed entries as ``ListFeed`` returns them: one or more JSON values,
each a page (``{"entries": [...]}``), a list of entries or one entry, in
protobuf JSON (lowerCamelCase, int64 as strings) or plain snake_case. With
``--address`` the feed is read from the trading service over mTLS, as the
system NAME whose certificate and key are in DIR (``--save`` keeps what was
read, for a later offline check); without ``--key`` the service's own
published keys (``ListAuditSigningKeys``) are used, which proves less: keep
the key you trust and pass it. Each KEY is a trading service public key
(PEM, or raw 32 bytes / their base64).

The scheme is docs/draws.md. This file re-implements it with the standard
library, ``rfc8785`` and ``cryptography`` only, apart from the service's own
code, so that a fault there is not repeated here.

The feed is a chain: every entry's signed body carries its ``feed`` link
(its own sequence, the SHA-256 of the previous entry's body, its publication
time). From wherever the export starts, the entries must follow each other
without a gap, each carrying its own number and its predecessor's SHA-256.

For each draw the checks are: every entry's SHA-256 and canonical form; the
signatures of the trading service (an entry whose signature fails is not
looked into further); the result points at the opening entry it follows;
each revealed seed hashes to its witness's published commitment, in the
published witness order; the missing witnesses are exactly those who did not
reveal, and a draw with missing witnesses was not closed before its
deadline; randomness = SHA-256 over the scheme name, the draw id and the
seeds, each prefixed by its length (4 bytes, big-endian); order = candidates
sorted by HMAC-SHA256(randomness, label); drawn = the first ``count``; a
failed draw had fewer than ``min_seeds`` seeds. A draw still open although
the feed goes on past its reveal deadline is not valid: its result was cut
off (or never published). The candidates are in the order the service builds
them (sorted), and no excluded expert is among them.

Every draw names its ``subject`` (what it is for). Across the feed, a
subject has at most one draw that did not fail: two that did not (draw
shopping: keeping the result one likes) make both INVALID. The draws of a
subject form a chain: each after the first names, in ``replaces_draw_id``,
the draw of the subject before it, which must have failed before the
re-draw was published. A first draw naming a draw before the export's start
can only be checked against a full export.

Entries are sorted into draws by their SIGNED body's ``kind`` and
``draw_id``, not by the export's unsigned ``kind`` and ``subject`` fields
(anyone could relabel those): an entry whose export fields disagree with its
signed body makes its draw INVALID. Only an entry whose signature does not
hold is placed by its export fields (and reported as such).

One line a draw: ``draw <id>: VALID — ...``, ``OPEN — ...`` (no result yet)
or ``INVALID — <what is wrong>; ...``. Exit status: 0 every draw checked is
valid or still open; 1 one is not (or an entry of the feed is not what it
says); 3 the feed cannot be read or holds no such draw. Never a traceback.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import itertools
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VALID, INVALID, UNREADABLE = 0, 1, 3
SIGNER = "trading"
OPENED, DRAWN, FAILED = "draw.opened", "draw.drawn", "draw.failed"
#: The scheme this tool verifies (docs/draws.md).
SCHEME = "govhall-draw/4"
_SUBJECT = re.compile(r"^(project|tender)/[A-Z]{2,6}-(?:[0-9]{4}-[0-9]{4}|[0-9]{8}-[0-9]{6})"
                      r"/(agency|experts)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
GENESIS = "0" * 64


# ---- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    sequence: int
    kind: str
    subject: str
    body: str
    body_sha256: str
    published_at: str = ""


def _pick(item: Mapping[str, Any], snake: str) -> Any:
    parts = snake.split("_")
    camel = parts[0] + "".join(p.title() for p in parts[1:])
    return item.get(snake, item.get(camel, ""))


def _as_entries(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, list):
        for item in value:
            yield from _as_entries(item)
    elif isinstance(value, dict) and "entries" in value:
        yield from _as_entries(value["entries"])
    elif isinstance(value, dict):
        yield value
    else:
        raise ValueError("the feed holds something that is not an entry")


def parse_entries(values: Iterable[Any]) -> list[Entry]:
    entries: list[Entry] = []
    for value in values:
        for item in _as_entries(value):
            if not isinstance(item, dict):
                raise ValueError("the feed holds something that is not an entry")
            entries.append(Entry(int(_pick(item, "sequence")), str(_pick(item, "kind")),
                                 str(_pick(item, "subject")), str(_pick(item, "body")),
                                 str(_pick(item, "body_sha256")),
                                 str(_pick(item, "published_at"))))
    return sorted(entries, key=lambda e: e.sequence)


def read_feed_file(path: Path) -> list[Entry]:
    """Entries from a file of one or more JSON values (grpcurl prints one per page)."""
    text = path.read_text("utf-8")
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        value, position = decoder.raw_decode(text, position)
        values.append(value)
    return parse_entries(values)


def load_public_key(data: bytes) -> Ed25519PublicKey:
    if b"-----BEGIN" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key
    raw = data if len(data) == 32 else base64.b64decode(data.strip(), validate=True)
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# ---- checking -----------------------------------------------------------------------------


@dataclass
class Verdict:
    draw_id: str
    problems: list[str] = field(default_factory=list)
    summary: str = ""
    open: bool = False

    def line(self) -> str:
        if self.problems:
            return f"draw {self.draw_id}: INVALID — {'; '.join(self.problems)}"
        return f"draw {self.draw_id}: {'OPEN' if self.open else 'VALID'} — {self.summary}"


def _entry_body(entry: Entry, keys: Mapping[str, Ed25519PublicKey],
                problems: list[str]) -> dict[str, Any] | None:
    """The signed body of an entry, if the entry is intact and trading signed it; None
    (and the reason in ``problems``) otherwise: a body whose signature fails is not
    looked into, since anyone could have written it."""
    name = f"entry {entry.sequence} ({entry.kind})"
    if hashlib.sha256(entry.body.encode("utf-8")).hexdigest() != entry.body_sha256:
        problems.append(f"{name}: its body is not the one its SHA-256 names")
    try:
        document = json.loads(entry.body)
    except ValueError:
        problems.append(f"{name}: its body is not JSON")
        return None
    if not isinstance(document, dict):
        problems.append(f"{name}: its body is not a JSON object")
        return None
    if rfc8785.dumps(document).decode("utf-8") != entry.body:
        problems.append(f"{name}: its body is not in RFC 8785 canonical form")
    body, signer = document.get("body"), document.get("signer")
    kid, signature = document.get("key_id"), document.get("signature")
    if not isinstance(body, dict) or not all(isinstance(v, str) for v in (signer, kid,
                                                                           signature)):
        problems.append(f"{name}: not a signed document")
        return None
    if signer != SIGNER:
        problems.append(f"{name}: signed by {signer!r}, not by the trading service")
        return None
    key = keys.get(str(kid))
    if key is None:
        problems.append(f"{name}: signed with key {kid}, which is not among the keys given")
        return None
    try:
        key.verify(base64.b64decode(str(signature), validate=True), rfc8785.dumps(body))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        problems.append(f"{name}: the trading service's signature does not hold "
                        "(the entry was changed after it was signed)")
        return None
    return body


def _instant(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _recompute(opened: Mapping[str, Any], result: Mapping[str, Any], kind: str,
               problems: list[str]) -> str:
    """Check the result against the opening; a summary when it holds."""
    candidates = opened.get("candidates")
    witnesses = opened.get("witnesses")
    count, min_seeds = opened.get("count"), opened.get("min_seeds")
    if not (isinstance(candidates, list) and all(isinstance(c, str) for c in candidates)
            and isinstance(witnesses, list) and isinstance(count, int)
            and isinstance(min_seeds, int)):
        problems.append("the opening entry is malformed")
        return ""
    if len(set(candidates)) != len(candidates) or len(candidates) < 2:
        problems.append("the published candidates are fewer than two or repeat a label")
    commitments: dict[str, str] = {}
    order_of_witnesses: list[str] = []
    for witness in witnesses:
        if not (isinstance(witness, dict) and isinstance(witness.get("official_id"), str)
                and _HEX64.fullmatch(str(witness.get("commitment", "")))):
            problems.append("a published witness is malformed")
            return ""
        commitments[witness["official_id"]] = witness["commitment"]
        order_of_witnesses.append(witness["official_id"])
    revealed = result.get("revealed")
    if not isinstance(revealed, list):
        problems.append("the result lists no revealed seeds")
        return ""
    seeds: list[bytes] = []
    revealed_ids: list[str] = []
    for item in revealed:
        witness = item.get("official_id") if isinstance(item, dict) else None
        seed_hex = item.get("seed") if isinstance(item, dict) else None
        if witness not in commitments or not isinstance(seed_hex, str):
            problems.append(f"the result reveals a seed of {witness!r}, not a published witness")
            continue
        try:
            seed = bytes.fromhex(seed_hex)
        except ValueError:
            problems.append(f"the seed of {witness} is not hex")
            continue
        if hashlib.sha256(seed).hexdigest() != commitments[witness]:
            problems.append(f"the seed of {witness} does not hash to the commitment published "
                            "before the draw")
        seeds.append(seed)
        revealed_ids.append(str(witness))
    expected_order = [w for w in order_of_witnesses if w in revealed_ids]
    if revealed_ids != expected_order:
        problems.append("the seeds are not in the published witness order")
    missing = [w for w in order_of_witnesses if w not in revealed_ids]
    if result.get("missing") != missing:
        problems.append(f"the result names {result.get('missing')} as missing; the witnesses "
                        f"who did not reveal are {missing}")
    deadline, closed = _instant(opened.get("reveal_deadline")), _instant(result.get("closed_at"))
    if missing and (deadline is None or closed is None or closed < deadline):
        problems.append("the draw was closed before its reveal deadline without every seed")
    if kind == DRAWN and missing:
        problems.append(f"the draw was computed without the seeds of {', '.join(missing)}: "
                        "every witness's seed is needed")
    if kind == FAILED:
        if len(seeds) >= min_seeds:
            problems.append(f"the draw is published as failed with {len(seeds)} seeds, enough "
                            "to draw")
        return f"failed: {len(seeds)} seed(s) revealed, missing {', '.join(missing)}"
    if len(seeds) < min_seeds:
        problems.append(f"the draw was computed from {len(seeds)} seed(s), fewer than "
                        f"{min_seeds}")
    draw_id = str(opened.get("draw_id", ""))
    parts = [SCHEME.encode("utf-8"), draw_id.encode("utf-8"), *seeds]
    randomness = hashlib.sha256(
        b"".join(len(part).to_bytes(4, "big") + part for part in parts)).digest()
    if result.get("randomness") != randomness.hex():
        problems.append(f"the randomness is not SHA-256 over the scheme, the draw id and the "
                        f"revealed seeds, length-prefixed ({randomness.hex()})")
    order = sorted(candidates, key=lambda label: (
        hmac.new(randomness, label.encode("utf-8"), hashlib.sha256).hexdigest(), label))
    if result.get("order") != order:
        problems.append("the order is not the candidates sorted by HMAC-SHA256(randomness, "
                        "label)")
    if result.get("drawn") != order[:count]:
        problems.append(f"the drawn candidates are not the first {count} of the order: "
                        f"{order[:count]}")
    return (f"drew {', '.join(order[:count])} of {len(candidates)} candidates from the seeds "
            f"of {len(seeds)} witness(es)" + (f", missing {', '.join(missing)}" if missing
                                             else ""))


def _uncommitted(draw_id: str, entry: Entry, keys: Mapping[str, Ed25519PublicKey],
                 verdict: Verdict) -> Verdict:
    """A draw that failed before its opening was published: a witness did not commit."""
    problems = verdict.problems
    body = _entry_body(entry, keys, problems)
    if body is None:
        return verdict
    if body.get("kind") != FAILED or body.get("draw_id") != draw_id or body.get(
            "stage") != "commit":
        problems.append(f"entry {entry.sequence} is a result without the opening it follows")
        return verdict
    missing, witnesses = body.get("missing"), body.get("witnesses")
    if not (isinstance(missing, list) and missing and isinstance(witnesses, list)
            and all(m in witnesses for m in missing)):
        problems.append("the failure names no witness who failed to commit")
        return verdict
    deadline, closed = _instant(body.get("commit_deadline")), _instant(body.get("closed_at"))
    if deadline is None or closed is None or closed < deadline:
        problems.append("the draw was given up before its commit deadline")
    verdict.summary = (f"failed before it was opened: {', '.join(map(str, missing))} did not "
                       f"commit by the deadline (entry {entry.sequence})")
    return verdict


def _candidate_problems(opened: Mapping[str, Any], problems: list[str]) -> None:
    """The candidates are built by the service, sorted, without an excluded expert."""
    candidates, exclusions = opened.get("candidates"), opened.get("exclusions")
    if not isinstance(candidates, list) or not isinstance(exclusions, list):
        problems.append("the opening does not publish its candidates and exclusions")
        return
    if candidates != sorted(candidates, key=str):
        problems.append("the candidates are not in the order the service builds them "
                        "(sorted): the list was not built from the registry")
    excluded = {e.get("expert_id") for e in exclusions if isinstance(e, dict)}
    among = sorted(str(c) for c in candidates if c in excluded)
    if among:
        problems.append(f"excluded expert(s) {', '.join(among)} are among the candidates")


@dataclass
class _Trace:
    """What the feed shows of one draw for the checks across draws of a subject."""

    first: int
    subjects: set[str] = field(default_factory=set)
    replaces: set[str] = field(default_factory=set)
    failed_at: int | None = None


def subject_problems(entries: Sequence[Entry], keys: Mapping[str, Ed25519PublicKey],
                     *, complete: bool) -> dict[str, list[str]]:
    """By draw id, what breaks the rules of subjects: a draw without a subject, two draws
    of one subject that did not fail, a re-draw not naming the failed draw of its subject
    before it. ``complete``: the export starts at the feed's first entry."""
    traces: dict[str, _Trace] = {}
    for entry in entries:
        body = _entry_body(entry, keys, [])
        if body is None or body.get("kind") not in (OPENED, DRAWN, FAILED):
            continue
        draw_id = body.get("draw_id")
        if not isinstance(draw_id, str):
            continue
        trace = traces.setdefault(draw_id, _Trace(entry.sequence))
        trace.subjects.add(str(body.get("subject") or ""))
        trace.replaces.add(str(body.get("replaces_draw_id") or ""))
        if body.get("kind") == FAILED:
            trace.failed_at = entry.sequence
    found: dict[str, list[str]] = {}
    by_subject: dict[str, list[str]] = {}
    for draw_id, trace in traces.items():
        mine = found.setdefault(draw_id, [])
        if len(trace.subjects) > 1 or len(trace.replaces) > 1:
            mine.append("its entries name different subjects or replaced draws")
            continue
        subject = next(iter(trace.subjects))
        if not _SUBJECT.fullmatch(subject):
            mine.append("the draw names no subject (what it is for), so nothing shows "
                        "whether another draw was held for the same thing")
            continue
        by_subject.setdefault(subject, []).append(draw_id)
    for subject, ids in by_subject.items():
        ids.sort(key=lambda d: traces[d].first)
        live = [d for d in ids if traces[d].failed_at is None]
        if len(live) > 1:
            for draw_id in live:
                found[draw_id].append(
                    f"draws {', '.join(live)} are all for {subject} and none of them failed: "
                    "a subject has one draw at a time (several would let the service keep "
                    "the result it likes)")
        for index, draw_id in enumerate(ids):
            replaces = next(iter(traces[draw_id].replaces))
            before = ids[index - 1] if index else ""
            problem = ""
            if replaces == before:
                failed_at = traces[before].failed_at if before else None
                if before and failed_at is None:
                    problem = f"it replaces {before}, which did not fail"
                elif before and failed_at is not None and failed_at > traces[draw_id].first:
                    problem = (f"it replaces {before}, which had not failed yet when this "
                               "draw was published")
            elif not before and replaces not in traces:
                if complete:
                    problem = (f"it replaces {replaces}, which is not in the feed: a first "
                               f"draw of {subject} replaces nothing")
            elif not replaces:
                problem = (f"it does not name the draw of {subject} before it, {before}: a "
                           "re-draw names the failed draw it replaces in replaces_draw_id")
            elif replaces not in traces:
                problem = f"it replaces {replaces}, which is not in the feed"
            elif next(iter(traces[replaces].subjects)) != subject:
                problem = f"it replaces {replaces}, a draw of another subject"
            elif traces[replaces].failed_at is None:
                problem = f"it replaces {replaces}, which did not fail"
            else:
                problem = (f"it replaces {replaces}, but the draw of {subject} before it is "
                           f"{before or 'none'}")
            if problem:
                found[draw_id].append(problem)
    return found


def check_draw(draw_id: str, entries: Sequence[Entry],
               keys: Mapping[str, Ed25519PublicKey], *, newest: datetime | None = None
               ) -> Verdict:
    """The verdict on one draw; ``newest`` is when the newest entry of the feed was
    published (a draw still open past its reveal deadline then is not valid)."""
    verdict = Verdict(draw_id)
    problems = verdict.problems
    try:
        return _check_draw(draw_id, entries, keys, newest, verdict)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as error:
        problems.append(f"an entry of the draw is malformed ({type(error).__name__})")
        return verdict


def _check_draw(draw_id: str, entries: Sequence[Entry], keys: Mapping[str, Ed25519PublicKey],
                newest: datetime | None, verdict: Verdict) -> Verdict:
    problems = verdict.problems
    mine = [e for e in entries if e.subject == f"draw/{draw_id}"]
    openings = [e for e in mine if e.kind == OPENED]
    results = [e for e in mine if e.kind in (DRAWN, FAILED)]
    if not openings and len(results) == 1 and results[0].kind == FAILED:
        return _uncommitted(draw_id, results[0], keys, verdict)
    if len(openings) != 1 or len(results) > 1:
        problems.append(f"the feed holds {len(openings)} opening(s) and {len(results)} "
                        "result(s) of this draw; one of each at most")
        return verdict
    opening = openings[0]
    opened = _entry_body(opening, keys, problems)
    if opened is None:
        return verdict
    if opened.get("kind") != OPENED or opened.get("draw_id") != draw_id:
        problems.append("the opening entry's body is about another draw or kind")
    if opened.get("scheme") != SCHEME:
        problems.append(f"the draw follows scheme {opened.get('scheme')!r}; this tool "
                        f"verifies {SCHEME}")
    _candidate_problems(opened, problems)
    if not results:
        deadline = _instant(opened.get("reveal_deadline"))
        if deadline is None:
            problems.append("the opening entry has no reveal deadline")
        elif newest is not None and deadline < newest:
            problems.append(
                f"the draw is still open in this feed although its reveal deadline "
                f"({opened.get('reveal_deadline')}) lies before the newest entry's publication "
                "time: its result was cut off, or never published")
            return verdict
        verdict.open = True
        verdict.summary = (f"opened in entry {opening.sequence}, no result yet; seeds are due "
                           f"by {opened.get('reveal_deadline')}")
        return verdict
    result_entry = results[0]
    result = _entry_body(result_entry, keys, problems)
    if result is None:
        return verdict
    if result.get("kind") != result_entry.kind or result.get("draw_id") != draw_id:
        problems.append("the result entry's body is about another draw or kind")
    if result_entry.sequence <= opening.sequence:
        problems.append("the result was published before the draw was opened")
    if result.get("opened_entry") != {"sequence": opening.sequence,
                                      "body_sha256": opening.body_sha256}:
        problems.append("the result does not name the opening entry it follows "
                        f"(entry {opening.sequence}, SHA-256 {opening.body_sha256})")
    summary = _recompute(opened, result, result_entry.kind, problems)
    verdict.summary = f"{summary} (entries {opening.sequence} and {result_entry.sequence})"
    return verdict


def _link(entry: Entry, keys: Mapping[str, Ed25519PublicKey]) -> Mapping[str, Any] | None:
    """The entry's signed ``feed`` link, or None if the entry is not signed or has none."""
    body = _entry_body(entry, keys, [])
    link = body.get("feed") if body is not None else None
    return link if isinstance(link, dict) else None


def feed_problems(entries: Sequence[Entry], keys: Mapping[str, Ed25519PublicKey],
                  ) -> tuple[list[str], datetime | None]:
    """What breaks the chain of the entries, from wherever they start; and when the
    newest of them was published (by its signed link, else as exported)."""
    found: list[str] = []
    links = [_link(entry, keys) for entry in entries]
    for entry, link in zip(entries, links, strict=True):
        if link is None:
            found.append(f"entry {entry.sequence} carries no signed link into the feed's chain")
        elif link.get("sequence") != entry.sequence:
            found.append(f"entry {entry.sequence} is signed as entry {link.get('sequence')}: "
                         "the feed was renumbered")
        elif entry.published_at and _instant(entry.published_at) != _instant(
                link.get("published_at")):
            found.append(f"entry {entry.sequence} shows another publication time than the one "
                         "signed")
    if entries and entries[0].sequence == 1 and links[0] is not None and links[0].get(
            "previous_sha256") != GENESIS:
        found.append("entry 1 does not start the chain")
    for (before, _), (after, link) in itertools.pairwise(zip(entries, links, strict=True)):
        if after.sequence != before.sequence + 1:
            found.append(f"entry {after.sequence} follows entry {before.sequence}: the "
                         "feed has a gap or a repeat")
        elif link is not None and link.get("previous_sha256") != before.body_sha256:
            found.append(f"entry {after.sequence} does not follow entry {before.sequence}: "
                         "it names another previous entry (the chain is broken)")
    times = [t for t in (_instant(link.get("published_at")) if link else _instant(
        entry.published_at) for entry, link in zip(entries, links, strict=True))
             if t is not None]
    return found, max(times, default=None)


def as_signed(entries: Sequence[Entry], keys: Mapping[str, Ed25519PublicKey],
              ) -> tuple[list[Entry], dict[str, list[str]]]:
    """The entries labelled by their signed bodies' ``kind`` and ``draw_id``; and, by
    draw id, where an entry's export fields say otherwise.

    The export's ``kind`` and ``subject`` are not signed: sorting entries into
    draws by them would let a relabelled entry pass for another kind, or hide
    from its draw. An entry whose signature does not hold keeps its export
    labels (its body could be anything; its draw reports it).
    """
    labelled: list[Entry] = []
    relabelled: dict[str, list[str]] = {}
    for entry in entries:
        body = _entry_body(entry, keys, [])
        kind = body.get("kind") if body is not None else None
        draw_id = body.get("draw_id") if body is not None else None
        if not (isinstance(kind, str) and isinstance(draw_id, str)):
            labelled.append(entry)
            continue
        subject = f"draw/{draw_id}"
        if (entry.kind, entry.subject) != (kind, subject):
            relabelled.setdefault(draw_id, []).append(
                f"entry {entry.sequence} is exported as {entry.kind!r} of {entry.subject!r} "
                f"but its signed body is {kind!r} of {subject!r}")
        labelled.append(Entry(entry.sequence, kind, subject, entry.body, entry.body_sha256,
                              entry.published_at))
    return labelled, relabelled


def verify(entries: Sequence[Entry], keys: Mapping[str, Ed25519PublicKey],
           draw_ids: Sequence[str] = ()) -> tuple[int, list[str]]:
    """The exit status and the report lines for the draws named (every draw by default)."""
    problems, newest = feed_problems(entries, keys)
    entries, relabelled = as_signed(entries, keys)
    subjects = subject_problems(entries, keys, complete=bool(entries)
                                and entries[0].sequence == 1)
    ids = list(draw_ids) or sorted({e.subject.split("/", 1)[1] for e in entries
                                    if e.kind in (OPENED, FAILED)
                                    and e.subject.startswith("draw/")})
    if not ids:
        return UNREADABLE, ["the feed holds no draw"]
    lines = [f"feed: INVALID — {p}" for p in problems]
    status = INVALID if lines else VALID
    for draw_id in ids:
        if not any(e.subject == f"draw/{draw_id}" for e in entries):
            lines.append(f"draw {draw_id}: not in the feed")
            status = max(status, UNREADABLE)
            continue
        verdict = check_draw(draw_id, entries, keys, newest=newest)
        verdict.problems[:0] = relabelled.get(draw_id, [])
        verdict.problems += subjects.get(draw_id, [])
        lines.append(verdict.line())
        if verdict.problems:
            status = max(status, INVALID)
    return status, lines


# ---- reading from the service -------------------------------------------------------------


def _from_service(address: str, pki_dir: Path, system: str,
                  ) -> tuple[list[dict[str, Any]], list[Ed25519PublicKey]]:
    """Every feed entry (as snake_case JSON) and the service's published keys."""
    import asyncio

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import grpc
    from google.protobuf import json_format

    from govhall.common.v1 import audit_pb2, audit_pb2_grpc
    from govhall.trading.v1 import trading_pb2, trading_pb2_grpc
    from kernel.grpcserver import secure_channel

    async def read() -> tuple[list[dict[str, Any]], list[Ed25519PublicKey]]:
        channel = secure_channel(address, pki_dir=pki_dir, system=system)
        try:
            stub = trading_pb2_grpc.TradingServiceStub(channel)
            items: list[dict[str, Any]] = []
            cursor = 0
            while True:
                page = await stub.ListFeed(trading_pb2.ListFeedRequest(cursor=cursor,
                                                                       page_size=500))
                items += [json_format.MessageToDict(e, preserving_proto_field_name=True)
                          for e in page.entries]
                if not page.entries:
                    break
                cursor = page.next_cursor
            published = await audit_pb2_grpc.AuditCheckpointsServiceStub(
                channel).ListAuditSigningKeys(audit_pb2.ListAuditSigningKeysRequest())
            return items, [load_public_key(k.public_key_pem.encode()) for k in published.keys]
        except grpc.aio.AioRpcError as error:
            raise ValueError(f"the trading service answered {error.code().name}: "
                             f"{error.details()}") from error
        finally:
            await channel.close(None)

    return asyncio.run(read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--feed", type=Path, help="a JSON export of the feed's entries")
    source.add_argument("--address", help="the trading service, HOST:PORT")
    parser.add_argument("--pki-dir", type=Path, help="with --address: where the CA and the "
                        "system's certificate and key are")
    parser.add_argument("--system", help="with --address: the calling system's name")
    parser.add_argument("--key", type=Path, action="append", default=[],
                        help="a trading service public key you trust (repeatable)")
    parser.add_argument("--save", type=Path, help="with --address: write the feed read here")
    parser.add_argument("--draw", action="append", default=[], help="only this draw")
    args = parser.parse_args(argv)
    try:
        keys = [load_public_key(path.read_bytes()) for path in args.key]
        if args.feed is not None:
            entries = read_feed_file(args.feed)
        else:
            if args.pki_dir is None or args.system is None:
                parser.error("--address needs --pki-dir and --system")
            items, published = _from_service(args.address, args.pki_dir, args.system)
            if args.save is not None:
                args.save.write_text(json.dumps({"entries": items}, ensure_ascii=False,
                                                indent=1), "utf-8")
            if not keys:
                print("keys: the trading service's own published keys are used; pass --key "
                      "to check against a key you keep")
                keys = published
            entries = parse_entries([items])
    except (OSError, ValueError, TypeError, binascii.Error) as error:
        print(f"UNREADABLE: {error}")
        return UNREADABLE
    status, lines = verify(entries, {key_id(k): k for k in keys}, args.draw)
    for line in lines:
        print(line)
    return status


if __name__ == "__main__":
    sys.exit(main())
