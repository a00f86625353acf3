"""The draw rules of services/trading/domain/draws.py, without a database or a server."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from kernel.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.trading.domain.draws import (
    DrawPurpose,
    DrawSpec,
    DrawState,
    Exclusion,
    Witness,
    check_commit,
    check_reveal,
    check_spec,
    commitment_of,
    drawn_order,
    expert_candidates,
    outcome,
    result_body,
    with_candidates,
)
from services.trading.domain.model import Expert

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SEEDS = {"JJZ-001": b"\x01" * 32, "ZWFWZX-008": b"\x02" * 32, "JJZ-002": b"\x03" * 32}


def _spec(**changes: object) -> DrawSpec:
    """A draw as published: every witness has committed."""
    values: dict[str, object] = {
        "draw_id": "DR-2026-0001", "purpose": DrawPurpose.AGENCY_LOTTERY, "title": "代理机构摇号",
        "candidates": ("AG-001", "AG-002", "AG-003", "AG-004"),
        "witnesses": tuple(Witness(w, commitment_of(s)) for w, s in SEEDS.items()),
        "count": 2, "reveal_deadline": NOW + timedelta(hours=1),
        "commit_deadline": NOW + timedelta(minutes=30),
        "subject": "project/SY-2026-0001/agency"}
    return DrawSpec(**(values | changes))  # type: ignore[arg-type]


def _opening(**changes: object) -> DrawSpec:
    """A draw as its opener asks for it: no candidates, witnesses without commitments."""
    values: dict[str, object] = {"witnesses": tuple(Witness(w, "") for w in SEEDS),
                                 "candidates": ()}
    return _spec(**(values | changes))


def _fields(error: InvalidArgument) -> list[str]:
    return [v.field for v in error.violations]


EXPERT_DRAW = {"purpose": DrawPurpose.EXPERT_DRAW, "subject": "tender/ZB-2026-0001/experts",
               "specialties": ("市政工程",)}


@pytest.mark.parametrize(("changes", "field"), [
    # Candidates are built by the service, never given.
    ({"candidates": ("AG-001", "AG-002")}, "candidates"),
    ({"count": 0}, "count"),
    ({"subject": ""}, "subject"),
    ({"subject": "project/SY-2026-0001"}, "subject"),
    ({"subject": "project/SY-2026-0001/agency "}, "subject"),
    ({"subject": "tender/ZB-2026-0001/experts"}, "subject"),  # not an agency lottery's
    (EXPERT_DRAW | {"subject": "project/SY-2026-0001/agency"}, "subject"),
    ({"replaces_draw_id": "DR-2026-0001"}, "replaces_draw_id"),  # itself
    ({"replaces_draw_id": "draw 1"}, "replaces_draw_id"),
    ({"specialties": ("市政工程",)}, "specialties"),  # an agency lottery takes none
    ({"conflicted_employers": ("某公司",)}, "conflicted_employers"),
    ({"exclusions": (Exclusion("EX-0001", "近亲属"),)}, "exclusions"),
    (EXPERT_DRAW | {"specialties": ()}, "specialties"),
    (EXPERT_DRAW | {"specialties": ("烹饪",)}, "specialties"),
    (EXPERT_DRAW | {"specialties": ("市政工程", "市政工程")}, "specialties"),
    (EXPERT_DRAW | {"conflicted_employers": (" ",)}, "conflicted_employers[0]"),
    (EXPERT_DRAW | {"conflicted_employers": ("甲公司", "甲公司")}, "conflicted_employers"),
    (EXPERT_DRAW | {"exclusions": (Exclusion("EX-1", "近亲属"),)}, "exclusions[0].expert_id"),
    (EXPERT_DRAW | {"exclusions": (Exclusion("EX-0001", " "),)}, "exclusions[0].basis"),
    (EXPERT_DRAW | {"exclusions": (Exclusion("EX-0001", "a"), Exclusion("EX-0001", "b"))},
     "exclusions"),
    ({"witnesses": (Witness("JJZ-001", ""),)}, "witnesses"),
    ({"witnesses": (Witness("JJZ-001", ""),) * 2}, "witnesses"),
    ({"witnesses": (Witness("JJZ-001", ""), Witness("ZWFWZX-007", ""))}, "witnesses"),
    # The opener may not give a witness's commitment.
    ({"witnesses": (Witness("JJZ-001", commitment_of(b"a" * 16)), Witness("JJZ-002", ""))},
     "witnesses"),
    ({"commit_deadline": NOW}, "commit_deadline"),
    ({"commit_deadline": None}, "commit_deadline"),
    ({"reveal_deadline": NOW + timedelta(minutes=30)}, "reveal_deadline"),
    ({"reveal_deadline": NOW + timedelta(days=31)}, "reveal_deadline"),
    ({"title": " "}, "title"),
])
def test_a_draw_that_cannot_be_opened_is_refused_naming_the_field(
        changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_spec(_opening(**changes), opened_by="ZWFWZX-007", now=NOW)
    assert field in _fields(refused.value)


def test_a_good_draw_opens_and_all_candidates_may_be_drawn() -> None:
    assert check_spec(_opening(), opened_by="ZWFWZX-007", now=NOW) == _opening()
    expert = _opening(**EXPERT_DRAW, conflicted_employers=("甲公司",),
                      exclusions=(Exclusion("EX-0001", "与投标人存在利害关系"),))
    assert check_spec(expert, opened_by="ZWFWZX-007", now=NOW) == expert
    four = ("AG-001", "AG-002", "AG-003", "AG-004")
    assert with_candidates(_opening(count=4), four).candidates == four


@pytest.mark.parametrize(("count", "candidates"), [(5, 4), (1, 1), (2, 0)])
def test_too_few_candidates_left_refuse_the_draw_saying_how_many_remain(
        count: int, candidates: int) -> None:
    with pytest.raises(FailedPrecondition) as refused:
        with_candidates(_opening(count=count),
                        [f"AG-{n:03d}" for n in range(1, candidates + 1)])
    assert f"{candidates} candidate(s) remain" in str(refused.value)


def test_expert_candidates_are_the_available_experts_of_the_specialties_minus_conflicts() -> None:
    def expert(number: int, specialties: tuple[str, ...], employer: str,
               available: bool = True) -> Expert:
        return Expert(id=f"EX-{number:04d}", name="专家", specialties=specialties,
                      employer=employer, available=available,
                      unavailable_reason="" if available else "出国")

    pool = [expert(5, ("市政工程",), "甲公司"), expert(4, ("法律", "交通工程"), "乙公司"),
            expert(3, ("市政工程",), "乙公司", available=False), expert(2, ("法律",), "丙公司"),
            expert(1, ("财务会计",), "丁公司"), expert(6, ("交通工程",), "丁公司")]
    assert expert_candidates(pool, specialties=("市政工程", "法律"), conflicted_employers=(),
                             exclusions=()) == ["EX-0002", "EX-0004", "EX-0005"]
    assert expert_candidates(
        pool, specialties=("市政工程", "法律", "交通工程"), conflicted_employers=("甲公司",),
        exclusions=(Exclusion("EX-0002", "曾参与该项目前期咨询"),)) == ["EX-0004", "EX-0006"]


def test_each_witness_commits_once_before_the_commit_deadline() -> None:
    spec = _opening()
    committing = DrawState.COMMITTING
    assert check_commit(spec, committing, witness_id="JJZ-001",
                        commitment=commitment_of(SEEDS["JJZ-001"]), now=NOW)
    spec = spec.with_commitment("JJZ-001", commitment_of(SEEDS["JJZ-001"]))
    assert [w.official_id for w in spec.uncommitted()] == ["ZWFWZX-008", "JJZ-002"]
    # A retry is no change; another commitment is.
    for state in (committing, DrawState.OPEN, DrawState.DRAWN):
        assert not check_commit(spec, state, witness_id="JJZ-001",
                                commitment=commitment_of(SEEDS["JJZ-001"]), now=NOW)
    with pytest.raises(FailedPrecondition):
        check_commit(spec, committing, witness_id="JJZ-001",
                     commitment=commitment_of(b"other" * 8), now=NOW)
    with pytest.raises(InvalidArgument) as copied:
        check_commit(spec, committing, witness_id="JJZ-002",
                     commitment=commitment_of(SEEDS["JJZ-001"]), now=NOW)
    assert _fields(copied.value) == ["commitment"]
    with pytest.raises(InvalidArgument):
        check_commit(spec, committing, witness_id="JJZ-002", commitment="F" * 64, now=NOW)
    with pytest.raises(PermissionDenied):
        check_commit(spec, committing, witness_id="ZWFWZX-007",
                     commitment=commitment_of(b"x" * 16), now=NOW)
    with pytest.raises(FailedPrecondition):
        check_commit(spec, committing, witness_id="JJZ-002",
                     commitment=commitment_of(SEEDS["JJZ-002"]), now=NOW + timedelta(minutes=30))
    with pytest.raises(FailedPrecondition):
        check_commit(spec, DrawState.FAILED, witness_id="JJZ-002",
                     commitment=commitment_of(SEEDS["JJZ-002"]), now=NOW)


def test_the_order_is_by_hmac_of_the_randomness_over_each_label() -> None:
    labels = [f"EX-{n:04d}" for n in range(30)]
    for randomness in (b"\x00" * 32, hashlib.sha256(b"r").digest()):
        tickets = [hmac.new(randomness, label.encode(), hashlib.sha256).digest()
                   for label in labels]
        expected = [label for _, label in sorted(zip(tickets, labels, strict=True))]
        assert drawn_order(randomness, labels) == expected
    # Another randomness gives another order (30! orders: a collision would be a bug).
    assert drawn_order(b"\x00" * 32, labels) != drawn_order(b"\x01" * 32, labels)


def _framed(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def test_all_seeds_draw_from_the_scheme_the_draw_id_and_the_seeds_in_witness_order() -> None:
    result = outcome(_spec(), SEEDS)
    randomness = hashlib.sha256(_framed(
        b"govhall-draw/4", b"DR-2026-0001", b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)).digest()
    assert result.state is DrawState.DRAWN
    assert result.randomness == randomness.hex()
    assert result.order == tuple(drawn_order(randomness, _spec().candidates))
    assert result.drawn == result.order[:2]
    assert result.missing == ()
    # The order of the published witnesses, not of the reveals, decides.
    assert outcome(_spec(), dict(reversed(list(SEEDS.items())))) == result


def test_the_same_seeds_draw_differently_for_another_draw() -> None:
    """The randomness is bound to the draw: the seeds of one draw replayed for another
    draw (or moved between lengths) do not give the same randomness."""
    first = outcome(_spec(), SEEDS)
    other = outcome(_spec(draw_id="DR-2026-0002"), SEEDS)
    assert first.randomness != other.randomness
    # Length-prefixed: moving a byte from one seed to the next changes the randomness.
    moved = {"JJZ-001": b"\x01" * 31, "ZWFWZX-008": b"\x01" + b"\x02" * 32,
             "JJZ-002": b"\x03" * 32}
    spec = _spec(witnesses=tuple(Witness(w, commitment_of(s)) for w, s in moved.items()))
    assert outcome(spec, moved).randomness != first.randomness


def test_a_missing_witness_fails_the_draw_whatever_the_others_revealed() -> None:
    for count in (0, 1, 2):
        seeds = dict(itertools.islice(SEEDS.items(), count))
        result = outcome(_spec(), seeds)
        assert result.state is DrawState.FAILED
        assert result.missing == tuple(list(SEEDS)[count:])
        assert (result.order, result.drawn, result.randomness) == ((), (), "")
        body = result_body(_spec(), result, opened_sequence=1, opened_sha256="0" * 64,
                           closed_at=NOW)
        assert body["kind"] == "draw.failed" and "every witness's seed" in body["reason"]
        assert "order" not in body


def test_a_reveal_is_checked_against_the_commitment_the_witness_and_the_state() -> None:
    spec = _spec()
    check_reveal(spec, DrawState.OPEN, witness_id="JJZ-001", seed=SEEDS["JJZ-001"], now=NOW)
    with pytest.raises(InvalidArgument) as wrong:
        check_reveal(spec, DrawState.OPEN, witness_id="JJZ-001", seed=SEEDS["JJZ-002"], now=NOW)
    assert _fields(wrong.value) == ["seed"]
    with pytest.raises(PermissionDenied):
        check_reveal(spec, DrawState.OPEN, witness_id="JJZ-003", seed=SEEDS["JJZ-001"], now=NOW)
    for state in (DrawState.COMMITTING, DrawState.DRAWN, DrawState.FAILED):
        with pytest.raises(FailedPrecondition):
            check_reveal(spec, state, witness_id="JJZ-001", seed=SEEDS["JJZ-001"], now=NOW)
    with pytest.raises(FailedPrecondition):
        check_reveal(spec, DrawState.OPEN, witness_id="JJZ-001", seed=SEEDS["JJZ-001"],
                     now=spec.reveal_deadline)


@pytest.mark.parametrize("seed", [b"", b"\x01" * 15, b"\x01" * 65])
def test_a_seed_of_the_wrong_length_is_refused(seed: bytes) -> None:
    witnesses = (Witness("JJZ-001", commitment_of(seed)), Witness("ZWFWZX-008", "b" * 64))
    with pytest.raises(InvalidArgument) as refused:
        check_reveal(_spec(witnesses=witnesses), DrawState.OPEN, witness_id="JJZ-001",
                     seed=seed, now=NOW)
    assert _fields(refused.value) == ["seed"]


def test_an_independent_witness_reveals_only_after_every_other_witness() -> None:
    spec = _spec().with_independent({"JJZ-001", "JJZ-002"})
    for revealed in (frozenset(), frozenset({"JJZ-002"})):
        with pytest.raises(FailedPrecondition) as refused:
            check_reveal(spec, DrawState.OPEN, witness_id="JJZ-001", seed=SEEDS["JJZ-001"],
                         now=NOW, revealed=revealed)
        assert "independent witness" in str(refused.value)
        assert "ZWFWZX-008" in str(refused.value)
    # The witness the opening system speaks for may reveal at once ...
    check_reveal(spec, DrawState.OPEN, witness_id="ZWFWZX-008", seed=SEEDS["ZWFWZX-008"],
                 now=NOW)
    # ... and once it has, the independent witnesses may, in any order.
    for witness in ("JJZ-001", "JJZ-002"):
        check_reveal(spec, DrawState.OPEN, witness_id=witness, seed=SEEDS[witness], now=NOW,
                     revealed=frozenset({"ZWFWZX-008"}))
