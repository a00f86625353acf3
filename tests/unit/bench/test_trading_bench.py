"""The trading benchmark, run with tiny numbers: it submits, opens and ranks for real and
prints its figures; its arithmetic is checked on made-up rounds. Nothing here measures
speed."""

from __future__ import annotations

import base64
import json

import pytest

import kernel.signing
from bench.trading import MAX_DOCUMENT_KIB, Round, bid_document, parse, report, run


def _round(number: int, opening: float, floor: float, bids_per_second: float) -> Round:
    figures = Round(number, 100, submitted=100, submit_seconds=100 / bids_per_second,
                    latencies=[0.01] * 100)
    figures.parts = {"close_bidding": opening / 2, "close_decryption": opening / 2}
    figures.floor_seconds = floor
    figures.candidates = ["BD-5001"]
    return figures


def test_the_report_gives_each_round_the_medians_and_the_ratio_against_the_aim() -> None:
    printed = report([_round(1, 0.4, 0.1, 50.0), _round(2, 0.1, 0.1, 70.0),
                      _round(3, 0.3, 0.1, 60.0)])
    assert "median ratio opening / crypto floor: 3.00; aim <= 2.00: NOT met" in printed
    assert "submission 60.0 bids/s" in printed
    assert "opening 300.0 ms, crypto floor 100.0 ms" in printed
    assert len([line for line in printed.splitlines() if line.startswith("    ")]) == 3
    assert "aim <= 2.00: met" in report([_round(1, 0.15, 0.1, 50.0)])


def test_the_arguments_refuse_too_few_bids() -> None:
    with pytest.raises(SystemExit):
        parse(["--bids", "2"])
    args = parse(["--bids", "7", "--concurrency", "3", "--repeat", "2"])
    assert (args.bids, args.concurrency, args.repeat) == (7, 3, 2)


def test_the_default_document_is_the_small_one_and_the_filler_is_exact_random_base64() -> None:
    small = json.loads(bid_document(3))
    assert set(small) == {"price_fen", "offer"} and small["price_fen"] == 400_000_000 + 3 * 7919
    padded = json.loads(bid_document(3, kib=64))
    assert padded["price_fen"] == small["price_fen"]
    assert len(padded["annex"]) == 64 * 1024
    assert len(base64.b64decode(padded["annex"], validate=True)) == 64 * 768
    assert padded["annex"] != json.loads(bid_document(3, kib=64))["annex"]
    assert len(bid_document(0, kib=64)) > 64 * 1024 > len(bid_document(0))


def test_the_document_size_option_defaults_to_none_and_stays_sealable() -> None:
    assert parse([]).document_kib == 0
    assert parse(["--document-kib", "64"]).document_kib == 64
    for wrong in ("-1", str(MAX_DOCUMENT_KIB + 1)):
        with pytest.raises(SystemExit):
            parse(["--document-kib", wrong])


async def test_a_tiny_run_submits_opens_and_publishes_candidates() -> None:
    before = kernel.signing._workflow_keys
    try:
        (figures,) = await run(parse(["--bids", "5", "--concurrency", "2"]))
    finally:
        # The run trusts its own keys in workflows; the other tests' trust is theirs.
        kernel.signing._workflow_keys = before
    assert figures.submitted == 5 and figures.bids_per_second > 0
    assert set(figures.parts) == {"close_bidding", "close_decryption", "rank_and_publish"}
    assert all(seconds > 0 for seconds in figures.parts.values())
    assert figures.floor_seconds > 0
    # The lowest prices win: the bench's prices rise with the bidder's number.
    assert figures.candidates == ["BD-5000", "BD-5001", "BD-5002"]
    assert "opening / crypto floor" in report([figures])
