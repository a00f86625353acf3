"""Verifiable random draws (DESIGN.md §2): the agency lottery and the expert draw.

Free of any framework. The scheme (docs/draws.md, ``govhall-draw/4``):

1. A trading officer opens a draw for a **subject** (the project or tender
   and what is drawn for it, ``project/SY-2026-0001/agency``): its witnesses
   in order, a commit deadline and a reveal deadline. The candidates are not
   given but built by the service from the registry (every agency for an
   agency lottery; the available experts of the requested specialties, minus
   the conflicted employers' experts and the published exclusions, for an
   expert draw). A subject has at most one draw that has not failed; a
   re-draw names the failed draw it replaces. Nothing is published yet.
2. Each witness commits its own seed, through a system that may speak for
   it: the SHA-256 of a secret seed only the witness knows. Nobody else
   supplies a witness's commitment. When every witness has committed, the
   candidates and the commitments are published as the draw's opening; a
   witness who has not committed by the commit deadline fails the draw.
3. Each witness reveals its seed; a seed whose SHA-256 is not the published
   commitment is refused. The witnesses independent of the opening system
   (recorded at opening, published in the opening) reveal last: an
   independent witness's seed is refused until every other witness's is in,
   so nobody knows the result before the last independent seed closes it.
4. When every witness has revealed, the draw is computed: randomness =
   SHA-256 over the scheme name, the draw id and the seeds, each prefixed by
   its length (4 bytes, big-endian), the seeds in the published witness order;
   the candidates are ordered by HMAC-SHA256(key=randomness, message=label
   as UTF-8), lowest first (the label breaks a tie), and the first ``count``
   are drawn. A witness who has not revealed by the reveal deadline fails
   the draw, publicly: nothing is drawn from the other seeds, so withholding
   a seed can never choose between results, only make the draw fail in the
   open, naming the witness.

At least one witness must be an official the system opening the draw may not
speak for (checked by the use case against the registry): otherwise one
system could commit, and so know, every seed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from kernel.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied
from services.trading.domain.model import EXPERT_ID_PATTERN, EXPERT_SPECIALTIES, Expert

#: The version of the scheme, named in every published body.
SCHEME = "govhall-draw/4"
MIN_CANDIDATES = 2
MIN_WITNESSES = 2
MAX_WITNESSES = 9
MAX_CANDIDATES = 1000
MAX_DEADLINE = timedelta(days=30)
#: The roles a witness may hold (one of them).
WITNESS_ROLES = ("supervisor", "trading_officer")

DRAW_ID_PATTERN = re.compile(r"^DR-[0-9]{4}-[0-9]{4}$")
COMMITMENT_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SEED_PATTERN = re.compile(r"^([0-9a-f]{2}){16,64}$")
#: What a draw is for: a project's agency lottery or a tender's expert committee.
SUBJECT_PATTERN = re.compile(r"^(project|tender)/[A-Z]{2,6}-(?:[0-9]{4}-[0-9]{4}|[0-9]{8}-[0-9]{6})"
                             r"/(agency|experts)$")
MAX_SPECIALTIES = 5
MAX_CONFLICTED_EMPLOYERS = 50
MAX_EXCLUSIONS = 100
MAX_TEXT = 200


class DrawPurpose(StrEnum):
    AGENCY_LOTTERY = "agency_lottery"
    EXPERT_DRAW = "expert_draw"


#: What the last part of a subject says a draw of each purpose picks.
SUBJECT_PURPOSES = {"agency": "agency_lottery", "experts": "expert_draw"}


class DrawState(StrEnum):
    COMMITTING = "committing"
    OPEN = "open"
    DRAWN = "drawn"
    FAILED = "failed"


class FeedKind(StrEnum):
    DRAW_OPENED = "draw.opened"
    DRAW_DRAWN = "draw.drawn"
    DRAW_FAILED = "draw.failed"


def subject_of(draw_id: str) -> str:
    return f"draw/{draw_id}"


def commitment_of(seed: bytes) -> str:
    """The commitment to a seed: SHA-256 of its raw bytes, lower-case hex."""
    return hashlib.sha256(seed).hexdigest()


def _framed(part: bytes) -> bytes:
    """``part`` prefixed by its length, 4 bytes big-endian."""
    return len(part).to_bytes(4, "big") + part


def randomness_of(draw_id: str, seeds: Sequence[bytes]) -> bytes:
    """SHA-256 over the scheme name, the draw id and the seeds in witness order,
    each prefixed by its length: the randomness belongs to this draw alone."""
    parts = [SCHEME.encode("utf-8"), draw_id.encode("utf-8"), *seeds]
    return hashlib.sha256(b"".join(_framed(part) for part in parts)).digest()


def ticket(randomness: bytes, label: str) -> str:
    """A candidate's place-maker: HMAC-SHA256(randomness, label), hex."""
    return hmac.new(randomness, label.encode("utf-8"), hashlib.sha256).hexdigest()


def drawn_order(randomness: bytes, candidates: Sequence[str]) -> list[str]:
    """The candidates sorted by their tickets, lowest first; the label breaks a tie."""
    return sorted(candidates, key=lambda label: (ticket(randomness, label), label))


@dataclass(frozen=True)
class Witness:
    official_id: str
    commitment: str
    #: Whether the opening system may not speak for the witness in any role (recorded
    #: by the service at opening; such a witness reveals after the others).
    independent: bool = False


@dataclass(frozen=True)
class Exclusion:
    """An expert kept out of an expert draw, and why (published with the draw)."""

    expert_id: str
    basis: str


@dataclass(frozen=True)
class DrawSpec:
    """A draw as opened: everything published before any seed is revealed."""

    draw_id: str
    purpose: DrawPurpose
    title: str
    #: Built by the service from the registry (``with_candidates``); empty as asked for.
    candidates: tuple[str, ...]
    witnesses: tuple[Witness, ...]
    count: int
    reveal_deadline: datetime
    #: When every witness must have committed; None for draws of scheme 1.
    commit_deadline: datetime | None = None
    #: What the draw is for (``SUBJECT_PATTERN``); '' for draws opened before scheme 4.
    subject: str = ""
    #: The failed draw of the same subject this one replaces; '' for a first draw.
    replaces_draw_id: str = ""
    #: Expert draws: the specialties the candidates are drawn from.
    specialties: tuple[str, ...] = ()
    #: Expert draws: the organisations of the parties (tenderer, bidders), whose
    #: experts stand aside (回避).
    conflicted_employers: tuple[str, ...] = ()
    #: Expert draws: experts kept out, each with its published basis.
    exclusions: tuple[Exclusion, ...] = ()

    def witness_ids(self) -> list[str]:
        return [w.official_id for w in self.witnesses]

    def uncommitted(self) -> tuple[Witness, ...]:
        """The witnesses not yet committed, in witness order."""
        return tuple(w for w in self.witnesses if not w.commitment)

    def with_commitment(self, witness_id: str, commitment: str) -> DrawSpec:
        return replace(self, witnesses=tuple(
            replace(w, commitment=commitment) if w.official_id == witness_id else w
            for w in self.witnesses))

    def with_independent(self, independent: set[str]) -> DrawSpec:
        """The draw with ``independent`` (witness ids) marked as independent witnesses."""
        return replace(self, witnesses=tuple(
            replace(w, independent=w.official_id in independent) for w in self.witnesses))


def _blank_or_padded(text: str) -> bool:
    return not text.strip() or text != text.strip()


def _candidate_basis_problems(spec: DrawSpec) -> list[FieldViolation]:
    """What is wrong with the specialties, conflicted employers and exclusions."""
    problems: list[FieldViolation] = []
    if spec.purpose is DrawPurpose.AGENCY_LOTTERY:
        for name in ("specialties", "conflicted_employers", "exclusions"):
            if getattr(spec, name):
                problems.append(FieldViolation(
                    name, "an agency lottery draws from every agency of the registry: "
                    "leave it empty"))
        return problems
    specialties = spec.specialties
    if not 1 <= len(specialties) <= MAX_SPECIALTIES:
        problems.append(FieldViolation(
            "specialties", f"an expert draw names 1 to {MAX_SPECIALTIES} specialties of the "
            f"pool, {len(specialties)} given"))
    unknown = [s for s in specialties if s not in EXPERT_SPECIALTIES]
    if unknown:
        problems.append(FieldViolation(
            "specialties", f"{'、'.join(unknown)} not among the pool's specialties "
            f"({'、'.join(EXPERT_SPECIALTIES)})"))
    if len(set(specialties)) != len(specialties):
        problems.append(FieldViolation("specialties", "a specialty is named more than once"))
    employers = spec.conflicted_employers
    if len(employers) > MAX_CONFLICTED_EMPLOYERS:
        problems.append(FieldViolation(
            "conflicted_employers", f"at most {MAX_CONFLICTED_EMPLOYERS} organisations"))
    for index, employer in enumerate(employers):
        if _blank_or_padded(employer) or len(employer) > MAX_TEXT:
            problems.append(FieldViolation(
                f"conflicted_employers[{index}]", "must be an organisation's name, not blank, "
                f"without surrounding spaces, at most {MAX_TEXT} characters"))
    if len(set(employers)) != len(employers):
        problems.append(FieldViolation(
            "conflicted_employers", "an organisation is named more than once"))
    exclusions = spec.exclusions
    if len(exclusions) > MAX_EXCLUSIONS:
        problems.append(FieldViolation("exclusions", f"at most {MAX_EXCLUSIONS} exclusions"))
    for index, exclusion in enumerate(exclusions):
        if not EXPERT_ID_PATTERN.fullmatch(exclusion.expert_id):
            problems.append(FieldViolation(f"exclusions[{index}].expert_id",
                                           "must look like EX-0001"))
        if _blank_or_padded(exclusion.basis) or len(exclusion.basis) > MAX_TEXT:
            problems.append(FieldViolation(
                f"exclusions[{index}].basis", "an exclusion is published with its basis: "
                f"not blank, at most {MAX_TEXT} characters"))
    excluded = [e.expert_id for e in exclusions]
    if len(set(excluded)) != len(excluded):
        problems.append(FieldViolation("exclusions", "an expert is excluded more than once"))
    return problems


def check_spec(spec: DrawSpec, *, opened_by: str, now: datetime) -> DrawSpec:
    """The draw as asked for, if it may be opened by ``opened_by`` at ``now``;
    InvalidArgument otherwise. Its candidates are not given: ``with_candidates``
    adds the ones the service builds from the registry."""
    problems: list[FieldViolation] = []
    if not DRAW_ID_PATTERN.fullmatch(spec.draw_id):
        problems.append(FieldViolation("draw_id", "must look like DR-2026-0001"))
    if not spec.title.strip():
        problems.append(FieldViolation("title", "must not be blank"))
    subject = SUBJECT_PATTERN.fullmatch(spec.subject)
    if subject is None:
        problems.append(FieldViolation(
            "subject", "must name what the draw is for, like project/SY-2026-0001/agency "
            "(an agency lottery) or tender/ZB-2026-0001/experts (an expert draw)"))
    elif SUBJECT_PURPOSES[subject.group(2)] != str(spec.purpose):
        problems.append(FieldViolation(
            "subject", f"a subject ending in /{subject.group(2)} is for "
            f"{SUBJECT_PURPOSES[subject.group(2)]}, not {spec.purpose}"))
    if spec.replaces_draw_id and (not DRAW_ID_PATTERN.fullmatch(spec.replaces_draw_id)
                                  or spec.replaces_draw_id == spec.draw_id):
        problems.append(FieldViolation(
            "replaces_draw_id", "must be empty or name another draw, like DR-2026-0001"))
    if spec.candidates:
        problems.append(FieldViolation(
            "candidates", "are not given: the service builds them from the registry (every "
            "agency for an agency lottery; for an expert draw, the available experts of the "
            "specialties, minus the conflicted employers' experts and the exclusions); "
            "leave candidates empty"))
    problems += _candidate_basis_problems(spec)
    if spec.count < 1:
        problems.append(FieldViolation("count", "must draw at least one candidate"))
    ids = spec.witness_ids()
    if not MIN_WITNESSES <= len(ids) <= MAX_WITNESSES:
        problems.append(FieldViolation(
            "witnesses", f"a draw needs {MIN_WITNESSES} to {MAX_WITNESSES} witnesses, "
            f"{len(ids)} given"))
    if len(set(ids)) != len(ids):
        problems.append(FieldViolation("witnesses", "a witness is named more than once"))
    if opened_by in ids:
        problems.append(FieldViolation(
            "witnesses", f"the official opening the draw ({opened_by}) cannot witness it"))
    if any(w.commitment for w in spec.witnesses):
        problems.append(FieldViolation(
            "witnesses", "the opener gives no commitment: each witness commits its own seed "
            "with CommitSeed; name the witnesses in witness_ids"))
    if spec.reveal_deadline > now + MAX_DEADLINE:
        problems.append(FieldViolation(
            "reveal_deadline", f"must be at most {MAX_DEADLINE.days} days ahead"))
    if spec.commit_deadline is None or spec.commit_deadline <= now:
        problems.append(FieldViolation("commit_deadline", "must be in the future"))
    elif spec.reveal_deadline <= spec.commit_deadline:
        problems.append(FieldViolation(
            "reveal_deadline", "must come after the commit deadline"))
    if problems:
        raise InvalidArgument(
            f"draw {spec.draw_id} cannot be opened: "
            + "; ".join(f"{p.field} {p.description}" for p in problems), violations=problems)
    return spec


def agency_candidates(codes: Iterable[str]) -> list[str]:
    """The candidates of an agency lottery: every agency of the registry, sorted by code."""
    return sorted(codes)


def expert_candidates(experts: Iterable[Expert], *, specialties: Sequence[str],
                      conflicted_employers: Sequence[str],
                      exclusions: Sequence[Exclusion]) -> list[str]:
    """The candidates of an expert draw, sorted by id: the available experts registered
    in any of ``specialties``, except those employed by a conflicted employer (回避)
    and those excluded."""
    conflicted = {e.strip() for e in conflicted_employers}
    excluded = {e.expert_id for e in exclusions}
    wanted = set(specialties)
    return sorted(e.id for e in experts
                  if e.available and wanted & set(e.specialties)
                  and e.employer.strip() not in conflicted and e.id not in excluded)


def with_candidates(spec: DrawSpec, candidates: Sequence[str]) -> DrawSpec:
    """The draw with the candidates the service built; FailedPrecondition when too few
    remain for ``count`` (or for a draw at all), or more than a draw takes."""
    needed = max(spec.count, MIN_CANDIDATES)
    if len(candidates) < needed:
        raise FailedPrecondition(
            f"draw {spec.draw_id} cannot be opened: {len(candidates)} candidate(s) remain "
            f"{_basis_text(spec)}, and it needs at least {needed} (count {spec.count}, "
            f"a draw at least {MIN_CANDIDATES})")
    if len(candidates) > MAX_CANDIDATES:
        raise FailedPrecondition(
            f"draw {spec.draw_id} cannot be opened: {len(candidates)} candidates remain "
            f"{_basis_text(spec)}, more than the {MAX_CANDIDATES} a draw takes")
    return replace(spec, candidates=tuple(candidates))


def _basis_text(spec: DrawSpec) -> str:
    if spec.purpose is DrawPurpose.AGENCY_LOTTERY:
        return "in the agency registry"
    return (f"of specialties {'、'.join(spec.specialties)} in the expert pool (available, "
            f"minus {len(spec.conflicted_employers)} conflicted employer(s) and "
            f"{len(spec.exclusions)} exclusion(s))")


def _witness(spec: DrawSpec, witness_id: str) -> Witness:
    witness = next((w for w in spec.witnesses if w.official_id == witness_id), None)
    if witness is None:
        raise PermissionDenied(f"official {witness_id} is not a witness of draw {spec.draw_id}")
    return witness


def check_commit(spec: DrawSpec, state: DrawState, *, witness_id: str, commitment: str,
                 now: datetime) -> bool:
    """Whether ``commitment`` is to be recorded; False for a retry of the one recorded.

    Refused: a non-witness, a malformed commitment, one equal to another
    witness's, a change of a recorded commitment, a commitment after the
    commit deadline or once the draw is published or closed.
    """
    witness = _witness(spec, witness_id)
    if witness.commitment:
        if witness.commitment == commitment:
            return False
        raise FailedPrecondition(
            f"{witness_id} has committed for draw {spec.draw_id} already: a commitment "
            "cannot change")
    if state is not DrawState.COMMITTING:
        raise FailedPrecondition(
            f"draw {spec.draw_id} is {state}: no commitment is taken any more")
    if spec.commit_deadline is None or now >= spec.commit_deadline:
        raise FailedPrecondition(
            f"the commit deadline of draw {spec.draw_id} has passed: no commitment is taken "
            "any more")
    if not COMMITMENT_PATTERN.fullmatch(commitment):
        raise InvalidArgument("a commitment is the SHA-256 of the seed in lower-case hex",
                              violations=[FieldViolation("commitment", "must be 64 hex digits")])
    if any(w.commitment == commitment for w in spec.witnesses):
        raise InvalidArgument(
            f"another witness of draw {spec.draw_id} gave this commitment: each witness "
            "needs its own seed", violations=[FieldViolation(
                "commitment", "equal to another witness's: choose a new random seed")])
    return True


def check_reveal(spec: DrawSpec, state: DrawState, *, witness_id: str, seed: bytes,
                 now: datetime, revealed: frozenset[str] = frozenset()) -> None:
    """Refuse a reveal the draw cannot take; returns when the seed may be recorded.

    ``revealed`` names the witnesses whose seeds are in. An independent
    witness's seed is refused until every other witness's seed is in: the
    independent seeds come last, so whoever reads the seeds held before the
    result cannot know it, and a witness the opening system controls cannot
    withhold its seed once it could know the result.
    """
    if not SEED_PATTERN.fullmatch(seed.hex()):
        raise InvalidArgument(
            "a seed is 16 to 64 random bytes, given in hex", violations=[FieldViolation(
                "seed", f"must be 16 to 64 bytes, {len(seed)} given")])
    if state is DrawState.COMMITTING:
        raise FailedPrecondition(
            f"draw {spec.draw_id} waits for its witnesses' commitments: no seed is taken yet")
    if state is not DrawState.OPEN:
        raise FailedPrecondition(f"draw {spec.draw_id} is {state}: no seed is taken any more")
    if now >= spec.reveal_deadline:
        raise FailedPrecondition(
            f"the reveal deadline of draw {spec.draw_id} has passed: no seed is taken any more")
    witness = _witness(spec, witness_id)
    if witness.independent:
        waiting = [w.official_id for w in spec.witnesses
                   if not w.independent and w.official_id not in revealed]
        if waiting:
            raise FailedPrecondition(
                f"{witness_id} is an independent witness of draw {spec.draw_id} and reveals "
                "after every other witness: an independent witness's seed is taken only "
                f"once every other witness's seed is in; waiting for {', '.join(waiting)}")
    if commitment_of(seed) != witness.commitment:
        raise InvalidArgument(
            f"the SHA-256 of this seed is not the commitment {witness_id} published for "
            f"draw {spec.draw_id}", violations=[FieldViolation(
                "seed", "its SHA-256 does not match the witness's published commitment")])


@dataclass(frozen=True)
class Outcome:
    """What a closed draw publishes."""

    state: DrawState
    #: (witness, seed hex) of the revealed seeds, in witness order.
    revealed: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]
    randomness: str = ""
    order: tuple[str, ...] = ()
    drawn: tuple[str, ...] = ()


def outcome(spec: DrawSpec, seeds: Mapping[str, bytes]) -> Outcome:
    """The draw computed from the revealed seeds (by witness id)."""
    revealed = tuple((w.official_id, seeds[w.official_id].hex())
                     for w in spec.witnesses if w.official_id in seeds)
    missing = tuple(w.official_id for w in spec.witnesses if w.official_id not in seeds)
    if missing:
        return Outcome(DrawState.FAILED, revealed, missing)
    randomness = randomness_of(spec.draw_id, [seeds[witness] for witness, _ in revealed])
    order = tuple(drawn_order(randomness, spec.candidates))
    return Outcome(DrawState.DRAWN, revealed, missing, randomness.hex(), order,
                   order[:spec.count])


def utc_text(at: datetime) -> str:
    """An instant as published: ISO 8601 in UTC with microseconds and ``Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def candidate_basis(spec: DrawSpec) -> dict[str, Any]:
    """Where the candidates come from, as published with them."""
    return {
        "candidates_from": ("every agency of the registry, sorted by code"
                            if spec.purpose is DrawPurpose.AGENCY_LOTTERY else
                            "the available experts of the specialties, minus the experts of "
                            "the conflicted employers and the exclusions, sorted by id"),
        "specialties": list(spec.specialties),
        "conflicted_employers": list(spec.conflicted_employers),
        "exclusions": [{"expert_id": e.expert_id, "basis": e.basis} for e in spec.exclusions],
    }


def opened_body(spec: DrawSpec, *, opened_by: str, opened_at: datetime) -> dict[str, Any]:
    """The body of the ``draw.opened`` entry: candidates and commitments, no seed."""
    return {
        "scheme": SCHEME,
        "kind": str(FeedKind.DRAW_OPENED),
        "draw_id": spec.draw_id,
        "subject": spec.subject,
        "replaces_draw_id": spec.replaces_draw_id,
        "purpose": str(spec.purpose),
        "title": spec.title,
        **candidate_basis(spec),
        "candidates": list(spec.candidates),
        "witnesses": [{"official_id": w.official_id, "commitment": w.commitment,
                       "independent": w.independent} for w in spec.witnesses],
        "count": spec.count,
        "commit_deadline": utc_text(spec.commit_deadline) if spec.commit_deadline else "",
        "reveal_deadline": utc_text(spec.reveal_deadline),
        "min_seeds": len(spec.witnesses),
        "opened_by": opened_by,
        "opened_at": utc_text(opened_at),
    }


def result_body(spec: DrawSpec, result: Outcome, *, opened_sequence: int,
                opened_sha256: str, closed_at: datetime) -> dict[str, Any]:
    """The body of the ``draw.drawn`` or ``draw.failed`` entry."""
    body: dict[str, Any] = {
        "scheme": SCHEME,
        "kind": str(FeedKind.DRAW_DRAWN if result.state is DrawState.DRAWN
                    else FeedKind.DRAW_FAILED),
        "draw_id": spec.draw_id,
        "subject": spec.subject,
        "replaces_draw_id": spec.replaces_draw_id,
        "opened_entry": {"sequence": opened_sequence, "body_sha256": opened_sha256},
        "revealed": [{"official_id": witness, "seed": seed} for witness, seed in result.revealed],
        "missing": list(result.missing),
        "closed_at": utc_text(closed_at),
    }
    if result.state is DrawState.DRAWN:
        body |= {"randomness": result.randomness, "order": list(result.order),
                 "drawn": list(result.drawn)}
    else:
        body["reason"] = (f"not revealed by the deadline: {', '.join(result.missing)}; "
                          "every witness's seed is needed, nothing is drawn")
    return body


def uncommitted_body(spec: DrawSpec, *, opened_by: str, closed_at: datetime) -> dict[str, Any]:
    """The body of the ``draw.failed`` entry of a draw some witness did not commit to.

    It is the draw's only entry: the commitments given are not published
    (their seeds stay secret and must not be used again).
    """
    missing = [w.official_id for w in spec.uncommitted()]
    return {
        "scheme": SCHEME,
        "kind": str(FeedKind.DRAW_FAILED),
        "stage": "commit",
        "draw_id": spec.draw_id,
        "subject": spec.subject,
        "replaces_draw_id": spec.replaces_draw_id,
        "purpose": str(spec.purpose),
        "title": spec.title,
        **candidate_basis(spec),
        "candidates": list(spec.candidates),
        "witnesses": spec.witness_ids(),
        "count": spec.count,
        "commit_deadline": utc_text(spec.commit_deadline) if spec.commit_deadline else "",
        "opened_by": opened_by,
        "missing": missing,
        "closed_at": utc_text(closed_at),
        "reason": f"not committed by the commit deadline: {', '.join(missing)}; nothing is "
                  "drawn",
    }
