"""Live monitoring of the venue (DESIGN.md §2, issue #9 item 7), free of any framework.

Every recorded step of every trade (a tender's steps, each sealed bid
received — never its content —, each step of a draw) is numbered 1, 2, 3, ...
in the order the steps commit, beside the public feed, so that a watcher
continuing after the last number it saw misses nothing and sees nothing
twice. Each step carries the alerts the rules below raise on it:

``same_origin``
    a sealed bid on a tender from the same network origin (the caller's IP
    address, the port left out) as another bidder's bid on that tender; a
    listing bid, buyer's registration or auction bid from the same network
    origin as another bidder's act on that listing;
``identical_documents``
    a sealed bid whose envelope has the same SHA-256 as another bidder's on
    that tender, or, at the opening, valid bids whose opened documents have
    the same SHA-256;
``low_price``
    at the opening, a valid bid whose price is below ``LOW_PRICE_PERCENT`` %
    of the mean of the other valid bids' prices (of the project's estimate
    when no other bid has a price); at the award, an awarded amount below
    ``LOW_PRICE_PERCENT`` % of the project's estimate;
``out_of_order``
    a step whose stage does not follow the trade's previous step (a tender's
    first step that is not its announcement, a stage moving backwards or
    skipping one).

The rules only read: an alert stops nothing, it is for the supervision desk.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.trading.domain import evaluation


class AlertRule(StrEnum):
    SAME_ORIGIN = "same_origin"
    IDENTICAL_DOCUMENTS = "identical_documents"
    LOW_PRICE = "low_price"
    OUT_OF_ORDER = "out_of_order"


#: A price below this percentage of its reference is abnormally low.
LOW_PRICE_PERCENT = 70


@dataclass(frozen=True)
class Alert:
    """An alert a rule raised on a step."""

    rule: AlertRule
    message: str
    #: Public facts behind the alert (bidder ids, digests, origins, amounts).
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewTradeStep:
    """A step about to be recorded; its number is given when it commits."""

    trade: str
    kind: str
    step: str
    stage: str
    at: datetime
    feed_sequence: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredAlert:
    alert_no: int
    step_sequence: int
    trade: str
    rule: AlertRule
    message: str
    details: Mapping[str, Any]
    raised_at: datetime


@dataclass(frozen=True)
class TradeStep:
    """A recorded step and the alerts raised on it."""

    sequence: int
    trade: str
    kind: str
    step: str
    stage: str
    at: datetime
    feed_sequence: int
    details: Mapping[str, Any]
    alerts: tuple[StoredAlert, ...] = ()


def details_text(details: Mapping[str, Any]) -> str:
    """Details as stored and shown: JSON with sorted keys."""
    return json.dumps(dict(details), ensure_ascii=False, sort_keys=True)


# ---- network origin ---------------------------------------------------------------------------

def network_origin(peer: str) -> str:
    """The network origin of a gRPC peer (``ipv4:10.0.0.1:5000``, ``ipv6:[::1]:5000``): its
    IP address in canonical form, without the port; '' when the peer names none."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        host = rest.rsplit(":", 1)[0]
    elif kind == "ipv6":
        host = rest[1:].split("]", 1)[0] if rest.startswith("[") else rest.rsplit(":", 1)[0]
    else:
        return ""
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return ""


# ---- bids received ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BidSeen:
    """A sealed bid as monitoring sees it: who, from where, which envelope."""

    bidder_id: str
    origin: str
    ciphertext_sha256: str


def alerts_on_bid(new: BidSeen, others: Iterable[BidSeen]) -> list[Alert]:
    """The alerts on a bid received, given the other bidders' bids on the same tender."""
    others = [o for o in others if o.bidder_id != new.bidder_id]
    alerts: list[Alert] = []
    same_origin = sorted(o.bidder_id for o in others if new.origin and o.origin == new.origin)
    if same_origin:
        alerts.append(Alert(
            AlertRule.SAME_ORIGIN,
            f"bidder {new.bidder_id} bid from the same network origin as "
            f"{', '.join(same_origin)}",
            {"bidders": sorted([new.bidder_id, *same_origin]), "origin": new.origin}))
    same_envelope = sorted(o.bidder_id for o in others
                           if o.ciphertext_sha256 == new.ciphertext_sha256)
    if same_envelope:
        alerts.append(Alert(
            AlertRule.IDENTICAL_DOCUMENTS,
            f"bidder {new.bidder_id} sent the same sealed envelope as "
            f"{', '.join(same_envelope)}",
            {"bidders": sorted([new.bidder_id, *same_envelope]),
             "ciphertext_sha256": new.ciphertext_sha256}))
    return alerts


# ---- listing acts -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ActSeen:
    """A bidder's act on a listing as monitoring sees it: who, from where."""

    bidder_id: str
    origin: str


def alerts_on_listing_act(new: ActSeen, others: Iterable[ActSeen], *, act: str) -> list[Alert]:
    """The alerts on a listing bid, buyer's registration or auction bid (``act``), given the
    other acts recorded on the same listing: other bidders acting from its network origin."""
    if not new.origin:
        return []
    same_origin = sorted({o.bidder_id for o in others
                          if o.bidder_id != new.bidder_id and o.origin == new.origin})
    if not same_origin:
        return []
    return [Alert(AlertRule.SAME_ORIGIN,
                  f"bidder {new.bidder_id}'s {act.replace('_', ' ')} came from the same "
                  f"network origin as the acts of {', '.join(same_origin)} on this listing",
                  {"bidders": sorted([new.bidder_id, *same_origin]), "origin": new.origin,
                   "act": act})]


# ---- the opening -----------------------------------------------------------------------------

def parsed_document(document: bytes) -> Any:
    """An opened bid document's JSON value, parsed once for every rule that reads it
    (``price_in`` here, ``evaluation.price_in``); None when it is not JSON in UTF-8, which
    states no price either. A document nested deeper than the parser goes (RecursionError)
    is no JSON value either: one bidder's document must not stall the opening."""
    try:
        return json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def price_in(parsed: Any) -> int | None:
    """``bid_price`` of a document already parsed (``parsed_document``)."""
    return evaluation.price_in(parsed)


def bid_price(document: bytes) -> int | None:
    """The price a bid document states, in fen, as the evaluation reads it: its JSON
    object's whole number ``price_fen`` from 1 to ``evaluation.MAX_PRICE_FEN``; None for a
    document that states none (no price rule applies to it). A bound, not any positive
    number: the rules add prices up, and a sum of 4,300-digit prices could not even be
    written into an alert's details."""
    return price_in(parsed_document(document))


@dataclass(frozen=True)
class OpenedBid:
    """A valid bid after the opening: its document's digest and stated price."""

    bidder_id: str
    document_sha256: str
    price_fen: int | None

    @classmethod
    def of(cls, bidder_id: str, document: bytes, *, parsed: Any = None) -> OpenedBid:
        """The bid; ``parsed``: its document's ``parsed_document`` when already made."""
        if parsed is None:
            parsed = parsed_document(document)
        return cls(bidder_id, hashlib.sha256(document).hexdigest(), price_in(parsed))


def is_abnormally_low(price_fen: int, reference_fen: int, *, references: int = 1) -> bool:
    """``price_fen`` < LOW_PRICE_PERCENT % of ``reference_fen`` / ``references`` (a mean of
    ``references`` prices summing to ``reference_fen``), in exact integer arithmetic."""
    return price_fen * 100 * references < LOW_PRICE_PERCENT * reference_fen


def identical_documents(documents: Iterable[tuple[str, bytes]]) -> dict[str, list[str]]:
    """The opened documents held by more than one of ``documents`` ((bidder, document)
    pairs): each such document's SHA-256 and its holders, in the order each document first
    occurs. Only those documents are hashed (SHA-256), not every document of an opening:
    the documents are first told apart by their length and their first and last bytes,
    and only the ones alike in those by their whole bytes (a document no longer than
    both ends at once)."""
    alike = AlikeDocuments(_same_document)
    for bidder_id, document in documents:
        alike.add(bidder_id, document, document)
    return alike.shared()


def _same_document(document: Any) -> bytes:
    found: bytes = document
    return found


class AlikeDocuments:
    """``identical_documents``, fed one opened document at a time, holding none of them
    but those alike in length and ends (``_sketch``) with another one: the opening lets
    each document go once read (1,000 documents of up to 1 MiB each, all held, cost a page
    fault per 4 KiB of fresh memory).

    ``add`` takes each document with a token its caller can open it again by:
    ``reopen(token)`` gives the document's bytes again, and is called only for the first
    holder of a sketch when a second document with that sketch comes (documents alike in
    length and both ends are rare: mostly copies, which the rule is about).
    """

    def __init__(self, reopen: Callable[[Any], bytes]) -> None:
        self._reopen = reopen
        self._added = 0
        #: Per sketch seen once: its holder's position, bidder and token.
        self._once: dict[object, tuple[int, str, Any]] = {}
        #: Per sketch seen more than once: each holder's position, bidder and document.
        self._alike: dict[object, list[tuple[int, str, bytes]]] = {}

    def add(self, bidder_id: str, document: bytes, token: Any) -> None:
        index = self._added
        self._added += 1
        # A document no longer than both ends is its own sketch (its bytes).
        sketch: object = document if len(document) <= _WHOLE else \
            (len(document), document[:_SKETCH], document[-_SKETCH:])
        alike = self._alike.get(sketch)
        if alike is not None:
            alike.append((index, bidder_id, document))
            return
        first = self._once.pop(sketch, None)
        if first is None:
            self._once[sketch] = (index, bidder_id, token)
            return
        self._alike[sketch] = [(first[0], first[1], self._reopen(first[2])),
                               (index, bidder_id, document)]

    def shared(self) -> dict[str, list[str]]:
        """Each document held by more than one bidder: its SHA-256 and its holders, in the
        order each such document first came."""
        shared: list[tuple[int, bytes, list[str]]] = []
        for alike in self._alike.values():
            by_bytes: dict[bytes, tuple[int, list[str]]] = {}
            for index, bidder_id, document in alike:
                by_bytes.setdefault(document, (index, []))[1].append(bidder_id)
            shared.extend((first, document, holders)
                          for document, (first, holders) in by_bytes.items()
                          if len(holders) > 1)
        shared.sort(key=lambda group: group[0])
        return {hashlib.sha256(document).hexdigest(): holders
                for _, document, holders in shared}


#: The bytes at each end of a document that ``identical_documents`` compares first.
_SKETCH = 64
#: A document of at most this many bytes is told apart by its whole bytes at once.
_WHOLE = 2 * _SKETCH


def alerts_on_opening(opened: Sequence[OpenedBid], *, estimate_fen: int) -> list[Alert]:
    """The alerts on a tender's opening: identical documents among the valid bids, and each
    valid bid priced abnormally low against the mean of the others (or the estimate)."""
    by_digest: dict[str, list[str]] = defaultdict(list)
    for bid in opened:
        by_digest[bid.document_sha256].append(bid.bidder_id)
    return (_identical_alerts(by_digest)
            + _low_price_alerts([(b.bidder_id, b.price_fen) for b in opened],
                                estimate_fen=estimate_fen))


def alerts_on_opened_documents(opened: Sequence[tuple[str, bytes, int | None]], *,
                               estimate_fen: int) -> list[Alert]:
    """``alerts_on_opening`` of the valid bids given as (bidder, opened document, stated
    price) triples: the same alerts, with only the documents held by more than one bidder
    hashed (``identical_documents``)."""
    return (_identical_alerts(identical_documents((b, d) for b, d, _ in opened))
            + _low_price_alerts([(b, p) for b, _, p in opened], estimate_fen=estimate_fen))


def alerts_on_opened(documents: AlikeDocuments, prices: Sequence[tuple[str, int | None]], *,
                     estimate_fen: int) -> list[Alert]:
    """``alerts_on_opened_documents`` of the valid bids whose documents ``documents`` was
    given and whose stated prices ``prices`` holds ((bidder, price) pairs), in the same
    order."""
    return (_identical_alerts(documents.shared())
            + _low_price_alerts(prices, estimate_fen=estimate_fen))


def _identical_alerts(by_digest: Mapping[str, list[str]]) -> list[Alert]:
    alerts: list[Alert] = []
    for digest, bidders in sorted(by_digest.items(), key=lambda item: sorted(item[1])):
        if len(bidders) > 1:
            alerts.append(Alert(
                AlertRule.IDENTICAL_DOCUMENTS,
                f"bidders {', '.join(sorted(bidders))} submitted the same bid document",
                {"bidders": sorted(bidders), "document_sha256": digest}))
    return alerts


def _low_price_alerts(opened: Sequence[tuple[str, int | None]], *,
                      estimate_fen: int) -> list[Alert]:
    alerts: list[Alert] = []
    priced = [(bidder_id, price) for bidder_id, price in opened if price is not None]
    # The others' sum and count from the totals, less the bidder's own: linear, not a
    # pass over every other bid for each bid (1,000 bids at an opening).
    total = sum(price for _, price in priced)
    own_sum: dict[str, int] = defaultdict(int)
    own_count: dict[str, int] = defaultdict(int)
    if len({bidder_id for bidder_id, _ in priced}) == len(priced):
        # One bid per bidder (a tender's opening): its own sum is its price, and sorting
        # the pairs sorts by bidder alone.
        others = len(priced) - 1
        in_order = sorted(priced)
    else:
        others = -1
        in_order = sorted(priced, key=lambda b: b[0])
        for bidder_id, price in priced:
            own_sum[bidder_id] += price
            own_count[bidder_id] += 1
    threshold = LOW_PRICE_PERCENT
    for bidder_id, price in in_order:
        if others >= 0:
            count, reference = others, total - price
        else:
            count, reference = len(priced) - own_count[bidder_id], total - own_sum[bidder_id]
        if count:
            basis = "mean_of_other_bids"
        elif estimate_fen > 0:
            reference, count, basis = estimate_fen, 1, "estimate"
        else:
            continue
        # is_abnormally_low, inline: a call per bid costs more than the test.
        if price * 100 * count < threshold * reference:
            alerts.append(Alert(
                AlertRule.LOW_PRICE,
                f"bidder {bidder_id}'s price {price} fen is below "
                f"{LOW_PRICE_PERCENT}% of the {basis.replace('_', ' ')}",
                {"bidder_id": bidder_id, "price_fen": price, "basis": basis,
                 "reference_sum_fen": reference, "reference_count": count}))
    return alerts


def alerts_on_award(*, winner: str, amount_fen: int, estimate_fen: int) -> list[Alert]:
    """An awarded amount below LOW_PRICE_PERCENT % of the project's estimate."""
    if estimate_fen > 0 and is_abnormally_low(amount_fen, estimate_fen):
        return [Alert(AlertRule.LOW_PRICE,
                      f"tender awarded to {winner} at {amount_fen} fen, below "
                      f"{LOW_PRICE_PERCENT}% of the estimate {estimate_fen} fen",
                      {"bidder_id": winner, "price_fen": amount_fen, "basis": "estimate",
                       "reference_sum_fen": estimate_fen, "reference_count": 1})]
    return []


# ---- order ------------------------------------------------------------------------------------

#: Per kind of trade: the step that must come first, and the stages each stage may move to
#: (staying at a stage is always in order).
FIRST_STEP = {"tender": "announced", "draw": "registered", "listing": "announced"}
NEXT_STAGES: dict[str, dict[str, frozenset[str]]] = {
    "tender": {
        "bidding": frozenset({"decryption", "failed"}),
        "decryption": frozenset({"evaluation", "failed"}),
        "evaluation": frozenset({"candidates", "failed"}),
        "candidates": frozenset({"awarded"}),
        "awarded": frozenset({"contracted"}),
        "contracted": frozenset(),
        "failed": frozenset(),
    },
    "draw": {
        "committing": frozenset({"open", "failed"}),
        "open": frozenset({"drawn", "failed"}),
        "drawn": frozenset(),
        "failed": frozenset(),
    },
    "listing": {
        "listing": frozenset({"auction", "agreement", "sold", "failed"}),
        "agreement": frozenset({"sold"}),
        "auction": frozenset({"sold", "failed"}),
        "sold": frozenset(),
        "failed": frozenset(),
    },
}
#: The stage a trade is at after its first step.
FIRST_STAGE = {"tender": "bidding", "draw": "committing", "listing": "listing"}
#: Stages no further step may follow.
FINAL_STAGES = {"tender": frozenset({"contracted", "failed"}),
                "draw": frozenset({"drawn", "failed"}),
                "listing": frozenset({"sold", "failed"})}


def out_of_order(step: NewTradeStep, previous_stage: str | None) -> Alert | None:
    """An alert when ``step`` does not follow the trade's previous step (at
    ``previous_stage``; None when it is the trade's first)."""
    rules = NEXT_STAGES.get(step.kind)
    if rules is None:
        return None
    if previous_stage is None:
        if step.step == FIRST_STEP[step.kind] and step.stage == FIRST_STAGE[step.kind]:
            return None
        return Alert(AlertRule.OUT_OF_ORDER,
                     f"{step.trade}: {step.step} came before the {step.kind}'s "
                     f"{FIRST_STEP[step.kind]} step",
                     {"step": step.step, "stage": step.stage, "previous_stage": ""})
    if previous_stage in FINAL_STAGES[step.kind]:
        reason = f"the {step.kind} had ended at {previous_stage}"
    elif step.stage == previous_stage or step.stage in rules.get(previous_stage, frozenset()):
        return None
    else:
        reason = f"stage {step.stage} does not follow {previous_stage}"
    return Alert(AlertRule.OUT_OF_ORDER, f"{step.trade}: {step.step} out of order: {reason}",
                 {"step": step.step, "stage": step.stage, "previous_stage": previous_stage})
