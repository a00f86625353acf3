"""The score tallies ``Evaluations.add_sheet`` keeps (tables.tender_bid_tallies and
tender_member_tallies) against the sheets themselves: migration 0016 computes them from the
sheets already recorded, each new sheet adds to them in its own transaction, and the
ranking read from them is the one computed from every sheet (``evaluation.evaluate``), on
random committees and sheets (compliant or not, scores of any range, sheets by someone
off the committee)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from kernel.db import make_engine
from kernel.migrations import alembic_config, upgrade
from services.trading.db.repository import TradingUnitOfWork
from services.trading.domain.evaluation import (
    Method,
    ScoreSheet,
    Tally,
    Weights,
    evaluate,
    rank,
)
from services.trading.main import DEFINITION
from tests.integration.trading.test_envelope_migration import _filled
from tests.support import fresh_database_url

_AT = datetime(2026, 12, 1, tzinfo=UTC)


def _recomputed(sheets: list[ScoreSheet]) -> tuple[dict[str, Tally], dict[str, int]]:
    """Each bid's tally and each member's count of sheets, summed here from the sheets."""
    bids: dict[str, Tally] = {}
    members: dict[str, int] = {}
    for s in sheets:
        was = bids.get(s.bidder_id, Tally(0, 0, 0, 0))
        bids[s.bidder_id] = Tally(was.sheets + 1, was.compliant + s.compliant,
                                  was.technical + s.technical, was.business + s.business)
        members[s.member_id] = members.get(s.member_id, 0) + 1
    return bids, members


def _random_sheets(rng: random.Random, tender_no: str, members: list[str],
                   bidders: list[str], *, method: Method) -> list[ScoreSheet]:
    scored = method == Method.COMPREHENSIVE
    return [ScoreSheet(member, bidder, rng.random() < 0.7,
                       rng.randint(0, 100) if scored else 0,
                       rng.randint(0, 100) if scored else 0)
            for bidder in bidders for member in members]


def _tender(connection: sa.Connection, t: dict[str, sa.Table], tender_no: str) -> None:
    project = f"PJ-{tender_no}"
    connection.execute(t["projects"].insert(), _filled(t["projects"], {
        "project_no": project, "request_id": f"r-{project}"}))
    connection.execute(t["tenders"].insert(), _filled(t["tenders"], {
        "tender_no": tender_no, "project_no": project, "request_id": f"r-{tender_no}"}))


def test_the_migration_sums_the_recorded_sheets_and_add_sheet_keeps_the_sums(
        backend: str, tmp_path: Path) -> None:
    rng = random.Random(16)
    url = fresh_database_url(backend, "trading", tmp_path)
    config = alembic_config(migrations_dir=DEFINITION.migrations_dir, url=url)
    command.upgrade(config, "0015_sealed_bid_envelopes")
    engine = make_engine(url)
    reflected = sa.MetaData()
    reflected.reflect(engine)
    t = dict(reflected.tables)
    members = [f"EX-{i:04d}" for i in range(5)]
    bidders = [f"BD-{i:04d}" for i in range(12)]
    before = _random_sheets(rng, "TD-1", members, bidders, method=Method.COMPREHENSIVE)
    # Two sheets of another tender, and one by someone off TD-1's committee.
    other = [ScoreSheet("EX-0001", "BD-0001", True, 5, 6),
             ScoreSheet("EX-0002", "BD-0001", False, 7, 8)]
    before.append(ScoreSheet("EX-0099", "BD-0003", True, 40, 50))
    with engine.begin() as connection:
        for tender_no, sheets in (("TD-1", before), ("TD-2", other)):
            _tender(connection, t, tender_no)
            for s in sheets:
                connection.execute(t["tender_score_sheets"].insert(), _filled(
                    t["tender_score_sheets"], {
                        "tender_no": tender_no, "member_id": s.member_id,
                        "bidder_id": s.bidder_id, "compliant": s.compliant,
                        "technical": s.technical, "business": s.business}))
    engine.dispose()

    upgrade(migrations_dir=DEFINITION.migrations_dir, url=url)
    engine = make_engine(url)
    with TradingUnitOfWork(engine) as unit:
        bids, by_member = _recomputed(before)
        assert unit.evaluations.committee_tallies("TD-1", members) == (bids, 1)
        assert bids == unit.evaluations.tallies("TD-1")
        assert unit.evaluations.recorded_sheets("TD-1") == sum(by_member.values()) == len(
            before)
        assert unit.evaluations.committee_tallies("TD-2", members) == (
            _recomputed(other)[0], 0)
        # The sheets to come: each adds to its bid's and its member's tallies.
        later = [ScoreSheet(m, b, rng.random() < 0.5, rng.randint(0, 100),
                            rng.randint(0, 100))
                 for b in ("BD-0100", "BD-0101") for m in members]
        later.append(ScoreSheet("EX-0098", "BD-0100", False, 1, 2))
        for s in later:
            unit.evaluations.add_sheet("TD-1", member_id=s.member_id, bidder_id=s.bidder_id,
                                       compliant=s.compliant, technical=s.technical,
                                       business=s.business, system="t", at=_AT, statement={})
        unit.commit()
    with TradingUnitOfWork(engine) as unit:
        bids, by_member = _recomputed(before + later)
        assert unit.evaluations.committee_tallies("TD-1", members) == (bids, 2)
        assert unit.evaluations.committee_tallies("TD-1", [*members, "EX-0098"]) == (bids, 1)
        assert bids == unit.evaluations.tallies("TD-1")
        assert unit.evaluations.recorded_sheets("TD-1") == unit.evaluations.sheet_count("TD-1")
        assert unit.evaluations.sheets_by_others("TD-1", members) == 2
    # A sheet refused by the database (the same member and bid twice) adds nothing.
    with pytest.raises(sa.exc.IntegrityError), TradingUnitOfWork(engine) as unit:
        unit.evaluations.add_sheet("TD-1", member_id="EX-0000", bidder_id="BD-0100",
                                   compliant=True, technical=100, business=100, system="t",
                                   at=_AT, statement={})
    with TradingUnitOfWork(engine) as unit:
        assert unit.evaluations.committee_tallies("TD-1", members)[0] == bids

    command.downgrade(config, "0015_sealed_bid_envelopes")
    with engine.connect() as connection:
        names = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    assert not names & {"tender_bid_tallies", "tender_member_tallies"}


@pytest.mark.parametrize("method", list(Method))
def test_the_ranking_from_the_kept_tallies_is_the_ranking_from_every_sheet(
        backend: str, tmp_path: Path, method: Method) -> None:
    """On random committees (5 to 9 members), bids, prices and sheets, the ranking read
    from the tallies ``add_sheet`` kept is ``evaluate``'s over the sheets themselves."""
    rng = random.Random(f"tallies-{method}")
    url = fresh_database_url(backend, "trading", tmp_path)
    upgrade(migrations_dir=DEFINITION.migrations_dir, url=url)
    engine = make_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    reflected = dict(metadata.tables)
    weights = Weights(40, 45, 15)
    for round_no in range(12):
        tender_no = f"TD-{round_no}"
        size = rng.choice((5, 7, 9))
        members = [f"EX-{rng.randrange(10_000):04d}" for _ in range(size)]
        if len(set(members)) != size:
            continue
        bidders = [f"BD-{i:04d}" for i in rng.sample(range(1000), rng.randint(1, 30))]
        # Few distinct prices and scores: ties at every level of the order.
        prices = {b: rng.choice((800_000, 900_000, 1_000_000)) for b in bidders}
        sheets = _random_sheets(rng, tender_no, members, bidders, method=method)
        rng.shuffle(sheets)
        with engine.begin() as connection:
            _tender(connection, reflected, tender_no)
        with TradingUnitOfWork(engine) as unit:
            for s in sheets:
                unit.evaluations.add_sheet(tender_no, member_id=s.member_id,
                                           bidder_id=s.bidder_id, compliant=s.compliant,
                                           technical=s.technical, business=s.business,
                                           system="t", at=_AT, statement={})
            unit.commit()
        with TradingUnitOfWork(engine) as unit:
            kept, others = unit.evaluations.committee_tallies(tender_no, members)
            assert others == 0
            assert unit.evaluations.recorded_sheets(tender_no) == len(sheets)
        expected = evaluate(method=method, prices=prices, sheets=sheets, members=members,
                            weights=weights)
        assert rank(method=method, prices=prices, tallies=kept, members=size,
                    weights=weights) == expected
    engine.dispose()
