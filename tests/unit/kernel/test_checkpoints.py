"""Signed checkpoints: signing, the feed, refusing forgeries, and when a service publishes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, MetaData, create_engine

from kernel.audit import GENESIS, Actor, AuditLog, audit_table
from kernel.checkpoints import (
    CHECKPOINT_TYPE,
    BadCheckpoint,
    Checkpoint,
    CheckpointFeed,
    CheckpointPolicy,
    audit_checkpoints_table,
    check_checkpoint,
    sign_checkpoint,
)
from kernel.signing import ServiceSigner, TrustedKeys

metadata = MetaData()
log_table = audit_table(metadata)
feed_table = audit_checkpoints_table(metadata)
AT = datetime(2026, 3, 5, 2, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signer(key: Ed25519PrivateKey) -> ServiceSigner:
    return ServiceSigner("intake", key)


@pytest.fixture
def keys(signer: ServiceSigner) -> TrustedKeys:
    return TrustedKeys({"intake": [signer.public_key]})


@pytest.fixture
def connection() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.connect() as connection:
        yield connection


def _feed(connection: Connection) -> CheckpointFeed:
    return CheckpointFeed(connection, feed_table, AuditLog(connection, log_table), "intake")


def _resigned(checkpoint: Checkpoint, key: Ed25519PrivateKey, **changes: object) -> Checkpoint:
    body = json.loads(checkpoint.body) | changes
    content = rfc8785.dumps(body)
    return replace(checkpoint, body=content, signature=key.sign(content))


def test_a_checkpoint_signs_the_head_and_is_appended_to_the_feed(
        connection: Connection, signer: ServiceSigner, keys: TrustedKeys) -> None:
    log = AuditLog(connection, log_table)
    empty = _feed(connection).publish(signer, at=AT, published_by="timer")
    for n in range(3):
        log.append(actor=Actor("operator", "ZWFWZX-004"), action="step", subject=f"s/{n}")
    head = log.head()
    second = _feed(connection).publish(signer, at=AT + timedelta(seconds=1), published_by="timer")

    assert (empty.number, empty.sequence, empty.head_hash) == (1, 0, GENESIS)
    assert (second.number, second.sequence, second.head_hash) == (2, *head)
    body = json.loads(second.body)
    assert body == {"type": CHECKPOINT_TYPE, "service": "intake", "checkpoint": 2,
                    "sequence": 3, "head_hash": head[1],
                    "signed_at": "2026-03-05T02:00:01.123456Z"}
    assert second.body == rfc8785.dumps(body)
    signer.public_key.verify(second.signature, second.body)  # raises if it does not hold
    claim = check_checkpoint(second, service="intake", keys=keys)
    assert (claim.number, claim.sequence, claim.head_hash) == (2, 3, head[1])
    assert _feed(connection).all() == [empty, second]
    assert _feed(connection).after(1, limit=10) == [second]
    assert _feed(connection).latest() == second


def test_a_checkpoint_whose_body_was_changed_is_refused(
        signer: ServiceSigner, keys: TrustedKeys) -> None:
    genuine = sign_checkpoint(signer, number=4, sequence=10, head_hash="a" * 64, at=AT)
    body = json.loads(genuine.body) | {"head_hash": "b" * 64}
    altered = replace(genuine, head_hash="b" * 64, body=rfc8785.dumps(body))
    with pytest.raises(BadCheckpoint, match="not signed by intake's key"):
        check_checkpoint(altered, service="intake", keys=keys)


def test_a_checkpoint_signed_by_another_key_is_refused_even_naming_the_right_key_id(
        signer: ServiceSigner, keys: TrustedKeys) -> None:
    genuine = sign_checkpoint(signer, number=4, sequence=10, head_hash="a" * 64, at=AT)
    forged = _resigned(genuine, Ed25519PrivateKey.generate(), head_hash="c" * 64)
    with pytest.raises(BadCheckpoint, match="does not hold"):
        check_checkpoint(replace(forged, head_hash="c" * 64), service="intake", keys=keys)


def test_a_checkpoint_of_another_service_or_key_is_refused(signer: ServiceSigner,
                                                          keys: TrustedKeys) -> None:
    review = ServiceSigner("review", Ed25519PrivateKey.generate())
    theirs = sign_checkpoint(review, number=1, sequence=1, head_hash="a" * 64, at=AT)
    both = TrustedKeys({"intake": [signer.public_key], "review": [review.public_key]})
    with pytest.raises(BadCheckpoint, match="checkpoint of 'review', not of 'intake'"):
        check_checkpoint(theirs, service="intake", keys=both)
    unknown = sign_checkpoint(ServiceSigner("intake", Ed25519PrivateKey.generate()),
                              number=1, sequence=1, head_hash="a" * 64, at=AT)
    with pytest.raises(BadCheckpoint, match="no published key"):
        check_checkpoint(unknown, service="intake", keys=keys)


def test_a_checkpoint_whose_fields_disagree_with_its_signed_body_is_refused(
        signer: ServiceSigner, keys: TrustedKeys) -> None:
    genuine = sign_checkpoint(signer, number=4, sequence=10, head_hash="a" * 64, at=AT)
    for changed in (replace(genuine, sequence=11), replace(genuine, number=5),
                    replace(genuine, head_hash="b" * 64),
                    replace(genuine, signed_at=AT + timedelta(hours=1))):
        with pytest.raises(BadCheckpoint, match="is not the signed"):
            check_checkpoint(changed, service="intake", keys=keys)
    # Only the body and the signature are needed: unset fields are not a disagreement.
    bare = Checkpoint(0, "", 0, "", None, genuine.key_id, genuine.body, genuine.signature)
    assert check_checkpoint(bare, service="intake", keys=keys).sequence == 10


@pytest.mark.parametrize(("body", "refusal"), [
    (b"not json", "not JSON"),
    (b"[1,2]", "not a JSON object"),
    (b'{"type": "govhall.audit_checkpoint.v1"}', "canonical"),
    (rfc8785.dumps({"type": "other"}), "not of type"),
    (rfc8785.dumps({"type": CHECKPOINT_TYPE, "service": "intake", "checkpoint": 0,
                    "sequence": 1, "head_hash": "a" * 64, "signed_at": "2026-03-05T02:00:00Z"}),
     "no checkpoint number"),
    (rfc8785.dumps({"type": CHECKPOINT_TYPE, "service": "intake", "checkpoint": 1,
                    "sequence": -1, "head_hash": "a" * 64, "signed_at": "2026-03-05T02:00:00Z"}),
     "no audit sequence"),
    (rfc8785.dumps({"type": CHECKPOINT_TYPE, "service": "intake", "checkpoint": 1,
                    "sequence": 1, "head_hash": "A" * 64, "signed_at": "2026-03-05T02:00:00Z"}),
     "no head hash"),
    (rfc8785.dumps({"type": CHECKPOINT_TYPE, "service": "intake", "checkpoint": 1,
                    "sequence": 1, "head_hash": "a" * 64, "signed_at": "yesterday"}),
     "no signing time"),
])
def test_a_malformed_checkpoint_is_refused_even_when_signed(
        key: Ed25519PrivateKey, signer: ServiceSigner, keys: TrustedKeys, body: bytes,
        refusal: str) -> None:
    # Signed with the service's own key: the body's shape alone must refuse it.
    signed = Checkpoint(0, "", 0, "", None, signer.key_id, body, key.sign(body))
    with pytest.raises(BadCheckpoint, match=refusal):
        check_checkpoint(signed, service="intake", keys=keys)


def test_a_signature_that_is_not_base64_in_the_table_verifies_as_nothing(
        connection: Connection, signer: ServiceSigner, keys: TrustedKeys) -> None:
    _feed(connection).publish(signer, at=AT, published_by="timer")
    connection.execute(feed_table.update().values(signature="***"))
    [stored] = _feed(connection).all()
    assert stored.signature == b""
    with pytest.raises(BadCheckpoint):
        check_checkpoint(stored, service="intake", keys=keys)


def _checkpoint_at(sequence: int, at: datetime) -> Checkpoint:
    return Checkpoint(1, "intake", sequence, "a" * 64, at, "k", b"{}", b"")


@pytest.mark.parametrize(("policy", "head", "latest", "due"), [
    (CheckpointPolicy(100, 300, 5), 0, None, ""),
    (CheckpointPolicy(100, 300, 5), 3, None, "timer"),
    (CheckpointPolicy(100, 0, 5), 3, None, ""),
    (CheckpointPolicy(100, 0, 5), 100, None, "entries"),
    (CheckpointPolicy(100, 300, 5), 150, _checkpoint_at(50, AT), "entries"),
    (CheckpointPolicy(100, 300, 5), 149, _checkpoint_at(50, AT), ""),
    (CheckpointPolicy(100, 300, 5), 51, _checkpoint_at(50, AT - timedelta(seconds=300)),
     "timer"),
    (CheckpointPolicy(100, 300, 5), 50, _checkpoint_at(50, AT - timedelta(days=3)), ""),
    (CheckpointPolicy(0, 300, 5), 5000, _checkpoint_at(50, AT - timedelta(seconds=299)), ""),
])
def test_a_service_publishes_after_so_many_entries_or_when_the_last_checkpoint_is_old(
        policy: CheckpointPolicy, head: int, latest: Checkpoint | None, due: str) -> None:
    assert policy.due(head_sequence=head, latest=latest, now=AT) == due


def test_a_policy_with_neither_rule_is_inactive() -> None:
    assert not CheckpointPolicy(0, 0, 5).active
    assert CheckpointPolicy(0, 1, 5).active
    assert CheckpointPolicy(1, 0, 5).active
