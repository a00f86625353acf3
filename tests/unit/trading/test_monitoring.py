"""The monitoring rules (services/trading/domain/monitoring.py), each on both sides."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime

import pytest

from services.trading.domain import evaluation
from services.trading.domain.monitoring import (
    ActSeen,
    AlertRule,
    AlikeDocuments,
    BidSeen,
    NewTradeStep,
    OpenedBid,
    alerts_on_award,
    alerts_on_bid,
    alerts_on_listing_act,
    alerts_on_opened,
    alerts_on_opened_documents,
    alerts_on_opening,
    bid_price,
    identical_documents,
    is_abnormally_low,
    network_origin,
    out_of_order,
    parsed_document,
    price_in,
)

AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
A = "a" * 64
B = "b" * 64


@pytest.mark.parametrize(("peer", "origin"), [
    ("ipv4:10.1.2.3:50000", "10.1.2.3"),
    ("ipv4:127.0.0.1:1", "127.0.0.1"),
    ("ipv6:[::1]:50000", "::1"),
    ("ipv6:[2001:DB8:0:0::1]:443", "2001:db8::1"),
    ("ipv6:[fe80::1%eth0]:443", "fe80::1"),
    ("unix:/tmp/socket", ""),
    ("", ""),
    ("ipv4:not-an-address:1", ""),
])
def test_the_network_origin_is_the_address_without_the_port(peer: str, origin: str) -> None:
    assert network_origin(peer) == origin


def test_two_ports_of_one_address_are_one_origin() -> None:
    assert network_origin("ipv4:10.0.0.7:40001") == network_origin("ipv4:10.0.0.7:40002")


def test_bids_from_one_origin_raise_an_alert_and_from_two_do_not() -> None:
    first = BidSeen("BD-0001", "10.0.0.1", A)
    same = alerts_on_bid(BidSeen("BD-0002", "10.0.0.1", B), [first])
    other = alerts_on_bid(BidSeen("BD-0002", "10.0.0.2", B), [first])
    assert [a.rule for a in same] == [AlertRule.SAME_ORIGIN]
    assert same[0].details == {"bidders": ["BD-0001", "BD-0002"], "origin": "10.0.0.1"}
    assert other == []


def test_an_unknown_origin_matches_nothing() -> None:
    assert alerts_on_bid(BidSeen("BD-0002", "", B), [BidSeen("BD-0001", "", A)]) == []


def test_listing_acts_of_two_bidders_from_one_origin_raise_an_alert() -> None:
    others = [ActSeen("BD-0001", "10.0.0.1"), ActSeen("BD-0003", "10.0.0.1"),
              ActSeen("BD-0001", "10.0.0.1")]
    same = alerts_on_listing_act(ActSeen("BD-0002", "10.0.0.1"), others, act="auction_bid")
    assert [a.rule for a in same] == [AlertRule.SAME_ORIGIN]
    assert same[0].details == {"bidders": ["BD-0001", "BD-0002", "BD-0003"],
                               "origin": "10.0.0.1", "act": "auction_bid"}
    assert "auction bid" in same[0].message


def test_listing_acts_from_another_origin_or_of_the_bidder_itself_raise_none() -> None:
    assert alerts_on_listing_act(ActSeen("BD-0002", "10.0.0.2"),
                                 [ActSeen("BD-0001", "10.0.0.1")], act="listing_bid") == []
    assert alerts_on_listing_act(ActSeen("BD-0001", "10.0.0.1"),
                                 [ActSeen("BD-0001", "10.0.0.1")], act="listing_bid") == []
    assert alerts_on_listing_act(ActSeen("BD-0002", ""),
                                 [ActSeen("BD-0001", "")], act="buyer_registered") == []


def test_the_same_envelope_raises_an_alert_and_another_does_not() -> None:
    first = BidSeen("BD-0001", "10.0.0.1", A)
    same = alerts_on_bid(BidSeen("BD-0002", "10.0.0.2", A), [first])
    other = alerts_on_bid(BidSeen("BD-0002", "10.0.0.2", B), [first])
    assert [a.rule for a in same] == [AlertRule.IDENTICAL_DOCUMENTS]
    assert same[0].details["bidders"] == ["BD-0001", "BD-0002"]
    assert other == []


def test_a_bidder_s_own_retry_is_not_compared_with_itself() -> None:
    bid = BidSeen("BD-0001", "10.0.0.1", A)
    assert alerts_on_bid(bid, [bid]) == []


@pytest.mark.parametrize(("document", "price"), [
    (b'{"price_fen": 123456}', 123456),
    (json.dumps({"price_fen": 5, "note": "报价"}).encode(), 5),
    (b'{"price_fen": 0}', None),
    (b'{"price_fen": -3}', None),
    (b'{"price_fen": "100"}', None),
    (b'{"price_fen": true}', None),
    (b'{"price_fen": 1.5}', None),
    (b"[1, 2]", None),
    ("投标报价 100 元".encode(), None),
    (b"\xff\xfe", None),
])
def test_a_bid_states_its_price_as_an_integer_of_fen(document: bytes,
                                                      price: int | None) -> None:
    assert bid_price(document) == price


def test_seventy_percent_is_the_threshold_in_exact_integers() -> None:
    # 70% of 1000 is 700: 699 is below, 700 is not.
    assert is_abnormally_low(699, 1000)
    assert not is_abnormally_low(700, 1000)
    # The mean of 3 prices summing to 3001 is 1000.33...; 70% of it is 700.23...
    assert is_abnormally_low(700, 3001, references=3)
    assert not is_abnormally_low(701, 3001, references=3)


def _opened(bidder: str, price: int | None, text: str = "") -> OpenedBid:
    body = {"price_fen": price} if price is not None else {}
    return OpenedBid.of(bidder, json.dumps(body | {"who": text or bidder}).encode())


def test_a_price_below_seventy_percent_of_the_others_mean_raises_an_alert() -> None:
    # Others: 1000 and 1000, mean 1000: 699 is low, 700 is not.
    low = alerts_on_opening([_opened("BD-1", 699), _opened("BD-2", 1000),
                             _opened("BD-3", 1000)], estimate_fen=10)
    fine = alerts_on_opening([_opened("BD-1", 700), _opened("BD-2", 1000),
                              _opened("BD-3", 1000)], estimate_fen=10)
    assert [(a.rule, a.details["bidder_id"]) for a in low] == [(AlertRule.LOW_PRICE, "BD-1")]
    assert low[0].details["basis"] == "mean_of_other_bids"
    assert low[0].details["reference_sum_fen"] == 2000
    assert fine == []


def test_with_no_other_price_the_estimate_is_the_reference() -> None:
    low = alerts_on_opening([_opened("BD-1", 6999), _opened("BD-2", None)], estimate_fen=10_000)
    fine = alerts_on_opening([_opened("BD-1", 7000), _opened("BD-2", None)], estimate_fen=10_000)
    assert [(a.rule, a.details["basis"]) for a in low] == [(AlertRule.LOW_PRICE, "estimate")]
    assert fine == []


def test_identical_documents_at_the_opening_raise_one_alert_per_group() -> None:
    twins = [_opened("BD-1", 1000, "same"), _opened("BD-2", 1000, "same"),
             _opened("BD-3", 1000)]
    distinct = [_opened("BD-1", 1000), _opened("BD-2", 1000), _opened("BD-3", 1000)]
    found = alerts_on_opening(twins, estimate_fen=1000)
    assert [(a.rule, a.details["bidders"]) for a in found] == [
        (AlertRule.IDENTICAL_DOCUMENTS, ["BD-1", "BD-2"])]
    assert alerts_on_opening(distinct, estimate_fen=1000) == []


def test_an_award_below_seventy_percent_of_the_estimate_raises_an_alert() -> None:
    low = alerts_on_award(winner="BD-1", amount_fen=69_999, estimate_fen=100_000)
    assert [a.rule for a in low] == [AlertRule.LOW_PRICE]
    assert alerts_on_award(winner="BD-1", amount_fen=70_000, estimate_fen=100_000) == []


def _step(step: str, stage: str, kind: str = "tender") -> NewTradeStep:
    return NewTradeStep(f"{kind}/X", kind, step, stage, AT)


@pytest.mark.parametrize(("previous", "step", "stage"), [
    (None, "announced", "bidding"),
    ("bidding", "bid_received", "bidding"),
    ("bidding", "amended", "bidding"),
    ("bidding", "deadline", "decryption"),
    ("bidding", "deadline", "failed"),
    ("decryption", "decryption_closed", "evaluation"),
    # Fewer than 3 valid bids after decryption; no bid qualified in the evaluation.
    ("decryption", "decryption_closed", "failed"),
    ("evaluation", "scored", "failed"),
    ("evaluation", "candidates_published", "candidates"),
    ("candidates", "objected", "candidates"),
    ("candidates", "awarded", "awarded"),
    ("awarded", "contract_late", "awarded"),
    ("awarded", "contracted", "contracted"),
])
def test_a_tender_step_following_its_previous_one_raises_nothing(
        previous: str | None, step: str, stage: str) -> None:
    assert out_of_order(_step(step, stage), previous) is None


@pytest.mark.parametrize(("previous", "step", "stage"), [
    (None, "bid_received", "bidding"),
    (None, "deadline", "decryption"),
    ("bidding", "decryption_closed", "evaluation"),
    ("bidding", "awarded", "awarded"),
    ("evaluation", "announced", "bidding"),
    ("candidates", "contracted", "contracted"),
    ("failed", "bid_received", "bidding"),
    ("contracted", "contracted", "contracted"),
])
def test_a_tender_step_out_of_order_raises_an_alert(previous: str | None, step: str,
                                                    stage: str) -> None:
    alert = out_of_order(_step(step, stage), previous)
    assert alert is not None and alert.rule is AlertRule.OUT_OF_ORDER
    assert alert.details["step"] == step


def test_a_draw_follows_its_own_order() -> None:
    assert out_of_order(_step("registered", "committing", "draw"), None) is None
    assert out_of_order(_step("opened", "open", "draw"), "committing") is None
    assert out_of_order(_step("drawn", "drawn", "draw"), "open") is None
    assert out_of_order(_step("drawn", "drawn", "draw"), "committing") is not None
    assert out_of_order(_step("seed_revealed", "open", "draw"), None) is not None


_DOCUMENTS = [b'{"price_fen": 123456}', b'{"price_fen": 0}', b'{"price_fen": -3}',
              b'{"price_fen": "100"}', b'{"price_fen": true}', b'{"price_fen": 1.5}',
              b'{"price_fen": 100000000000001}', b'{"price_fen": 1, "price_fen": 7}',
              b"[1, 2]", b"null", "投标报价 100 元".encode(), b"\xff\xfe"]


def test_one_parse_of_a_document_gives_both_readings_of_its_price() -> None:
    for document in _DOCUMENTS:
        parsed = parsed_document(document)
        # The monitoring rules' reading and the ranking's from the one parse, each as it
        # reads the document itself; and they are one reading (1 to MAX_PRICE_FEN).
        assert price_in(parsed) == bid_price(document)
        assert evaluation.price_in(parsed) == evaluation.stated_price(document)
        assert price_in(parsed) == evaluation.price_in(parsed)
    # What the reading is, written out: only whole numbers from 1 to MAX_PRICE_FEN are
    # prices; the last of a repeated key counts.
    assert [price_in(parsed_document(d)) for d in _DOCUMENTS] == [
        123456, None, None, None, None, None, None, 7, None, None, None, None]
    assert price_in(parsed_document(b'{"price_fen": 100000000000000}')) == 10**14
    assert price_in(parsed_document(b'{"price_fen": 100000000000001}')) is None
    assert price_in(parsed_document(b'{"price_fen": ' + b"9" * 4300 + b"}")) is None
    assert parsed_document(b"\xff\xfe") is None and parsed_document(b"[1, 2]") == [1, 2]


def test_an_opened_bid_reads_its_price_from_the_parse_it_is_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    document = b'{"price_fen": 123456}'
    parsed = parsed_document(document)
    parses: list[str] = []
    loads = json.loads

    def counted(text: str) -> object:
        parses.append(text)
        return loads(text)

    monkeypatch.setattr(json, "loads", counted)
    opened = OpenedBid.of("BD-0001", document, parsed=parsed)
    assert parses == []
    assert opened == OpenedBid("BD-0001", hashlib.sha256(document).hexdigest(), 123456)
    assert OpenedBid.of("BD-0001", document) == opened and len(parses) == 1


def test_a_document_nested_deeper_than_the_parser_goes_is_no_json_value() -> None:
    # One bidder's document must not stall the opening (RecursionError is not ValueError).
    for nested in (b"[" * 100_000 + b"]" * 100_000,
                   b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        assert parsed_document(nested) is None
    assert parsed_document(b'{"price_fen": 5}') == {"price_fen": 5}


def _document(price: int | None, middle: bytes) -> bytes:
    """A document of a fixed length whose bytes differ only in ``middle``, far from its ends."""
    body = {"price_fen": price} if price is not None else {}
    return json.dumps(body | {"annex": "x" * 200 + middle.decode() + "y" * 200}).encode()


def test_identical_documents_hashes_only_what_is_held_twice_and_tells_alike_ones_apart(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # BD-1 and BD-3 hold the same document; BD-2's and BD-4's have its length and its first
    # and last bytes and differ only inside; BD-5 and BD-6 share another one.
    same, other = _document(1000, b"AAAA"), _document(1000, b"CCCC")
    documents = [("BD-5", other), ("BD-1", same), ("BD-2", _document(1000, b"AAAB")),
                 ("BD-3", bytes(bytearray(same))), ("BD-4", _document(1000, b"BAAA")),
                 ("BD-6", bytes(bytearray(other))), ("BD-7", b"{}")]
    hashed: list[bytes] = []
    sha256 = hashlib.sha256

    def counted(data: bytes) -> hashlib._Hash:
        hashed.append(data)
        return sha256(data)

    monkeypatch.setattr(hashlib, "sha256", counted)
    found = identical_documents(documents)
    assert found == {sha256(other).hexdigest(): ["BD-5", "BD-6"],
                     sha256(same).hexdigest(): ["BD-1", "BD-3"]}
    assert sorted(hashed) == sorted([same, other])
    assert identical_documents([("BD-1", same), ("BD-2", other)]) == {}


def test_the_alerts_on_opened_documents_are_those_of_the_opened_bids() -> None:
    # Differential: random openings with documents repeated, alike in length and ends or
    # not, prices stated or not, give the very alerts alerts_on_opening gives.
    rng = random.Random(15)
    for _ in range(300):
        pool = [_document(rng.choice([None, 1, 650, 1000, 1400]),
                          bytes(rng.choice(b"AB") for _ in range(3)))
                for _ in range(rng.randint(1, 6))] + [b"[]", b"not json"]
        opened = []
        for index in rng.sample(range(40), rng.randint(0, 12)):
            document = bytes(bytearray(rng.choice(pool)))
            opened.append((f"BD-{index:02d}", document, bid_price(document)))
        estimate = rng.choice([0, 1000, 10**6])
        expected = alerts_on_opening([OpenedBid.of(b, d) for b, d, _ in opened],
                                     estimate_fen=estimate)
        assert alerts_on_opened_documents(opened, estimate_fen=estimate) == expected


def _low_price_by_definition(opened: list[tuple[str, bytes, int | None]],
                             estimate: int) -> list[tuple[str, int, str, int, int]]:
    """The low-price rule read straight off its definition, bid by bid: each priced bid
    (by bidder) against the sum and count of the priced bids of every other bidder, or the
    estimate when there are none."""
    priced = [(bidder, price) for bidder, _, price in opened if price is not None]
    found = []
    for bidder, price in sorted(priced, key=lambda pair: pair[0]):
        others = [p for b, p in priced if b != bidder]
        if others:
            reference, count, basis = sum(others), len(others), "mean_of_other_bids"
        elif estimate > 0:
            reference, count, basis = estimate, 1, "estimate"
        else:
            continue
        if price * 100 * count < 70 * reference:
            found.append((bidder, price, basis, reference, count))
    return found


def test_the_opening_alerts_hold_for_short_documents_and_a_bidder_named_twice() -> None:
    # Differential, besides the one above: short documents (no longer than both ends of
    # identical_documents' sketch, so told apart by their whole bytes), repeated or alike
    # in length, and bidders drawn with repeats (the general path of the low-price rule,
    # where a bidder's own bids are left out of its reference); the low prices checked
    # against the rule's definition too.
    rng = random.Random(16)
    for _ in range(400):
        pool = [json.dumps({"price_fen": rng.choice([1, 650, 1000, 1400, 10**15]),
                            "o": rng.choice(["a", "b", "ab"])}).encode()
                for _ in range(rng.randint(1, 5))] + [b"[]", b"{}", b"x" * 128, b"y" * 128]
        bidders = [f"BD-{rng.randint(0, 6):02d}" if rng.random() < 0.5 else f"BD-{i:02d}"
                   for i in range(10, 10 + rng.randint(0, 12))]
        opened = []
        for bidder in bidders:
            document = bytes(bytearray(rng.choice(pool)))
            opened.append((bidder, document, bid_price(document)))
        estimate = rng.choice([0, 1000, 10**6])
        expected = alerts_on_opening([OpenedBid.of(b, d) for b, d, _ in opened],
                                     estimate_fen=estimate)
        alerts = alerts_on_opened_documents(opened, estimate_fen=estimate)
        assert alerts == expected
        assert [(a.details["bidder_id"], a.details["price_fen"], a.details["basis"],
                 a.details["reference_sum_fen"], a.details["reference_count"])
                for a in alerts if a.rule == AlertRule.LOW_PRICE] == \
            _low_price_by_definition(opened, estimate)
        by_bytes: dict[bytes, list[str]] = {}
        for bidder, document, _ in opened:
            by_bytes.setdefault(document, []).append(bidder)
        assert identical_documents((b, d) for b, d, _ in opened) == {
            hashlib.sha256(document).hexdigest(): holders
            for document, holders in by_bytes.items() if len(holders) > 1}


def test_alike_documents_holds_none_but_reopens_the_first_of_alike_ones() -> None:
    # The opening's way: each document given once with a token, none held; a document
    # alike in length and ends with an earlier one has the earlier one opened again (by
    # its token, once), and the result is identical_documents' and its alerts the same.
    rng = random.Random(17)
    for _ in range(300):
        pool = [_document(rng.choice([None, 650, 1000]), bytes(rng.choice(b"AB") for _ in
                                                               range(3)))
                for _ in range(rng.randint(1, 4))] + [b"{}", b'{"price_fen": 5}', b"z" * 200]
        opened = [(f"BD-{index:02d}", bytes(bytearray(rng.choice(pool))))
                  for index in rng.sample(range(40), rng.randint(0, 12))]
        reopened: list[int] = []

        def reopen(token: object, opened: list[tuple[str, bytes]] = opened,
                   reopened: list[int] = reopened) -> bytes:
            assert isinstance(token, int)
            reopened.append(token)
            return bytes(bytearray(opened[token][1]))

        alike = AlikeDocuments(reopen)
        for index, (bidder, document) in enumerate(opened):
            alike.add(bidder, document, index)
        assert alike.shared() == identical_documents(opened)
        # Reopened: the first holder of each sketch another document came with, once.
        firsts: dict[object, list[int]] = {}
        for index, (_, document) in enumerate(opened):
            sketch = document if len(document) <= 128 else (
                len(document), document[:64], document[-64:])
            firsts.setdefault(sketch, []).append(index)
        assert sorted(reopened) == sorted(i[0] for i in firsts.values() if len(i) > 1)
        prices = [(b, bid_price(d)) for b, d in opened]
        again = AlikeDocuments(reopen)
        for index, (bidder, document) in enumerate(opened):
            again.add(bidder, document, index)
        assert alerts_on_opened(again, prices, estimate_fen=1000) == \
            alerts_on_opened_documents([(b, d, p) for (b, d), (_, p) in zip(opened, prices,
                                                                             strict=True)],
                                       estimate_fen=1000)
