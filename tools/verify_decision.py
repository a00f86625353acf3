#!/usr/bin/env python3
"""Verify a sealed govhall decision offline: the seal, and the chain of signed statements.

    python tools/verify_decision.py DOCUMENT SIGNATURE SEAL_KEY [SEAL_KEY ...]
                                    [--service-keys DIR]

DOCUMENT is the decision document exactly as issued (its canonical JSON
bytes); SIGNATURE is the seal's Ed25519 signature over it, raw (64 bytes)
or base64; each SEAL_KEY is a public key of the center's seal (PEM, raw 32
bytes or base64; ``intake.GetSealKeys`` publishes them), and the one the
document names is used. DIR holds the services' published public keys,
``DIR/<service>/<key id>.pub`` (PEM), which the statements embedded in a
format 2 document are checked with. The algorithm is docs/seal-verification.md;
nothing here needs a database or a server.

Each check prints one line, ``<check>: VALID|FAILED|NOT CHECKED — why``, and a
last line gives the verdict. Exit status: 0 every check holds; 1 a check
failed (the document, a statement or the chain is not what it should be);
2 the document names a seal key that was not given; 3 the files cannot be
read. A valid document says the center sealed this decision from this chain;
whether it was revoked since is told by the public register or the
``VerifyDecision`` RPC, not by the files.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# The chain's rules and the statement format are the project's own modules, so the
# tool checks exactly what the services check; they need no database and no server.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernel.signing import BadSignature, Signed, TrustedKeys
from workflows.approval_contract import (
    STATEMENT_SIGNER,
    StatementFacts,
    StatementKind,
    as_statement,
    content_digest,
    verified_facts,
)
from workflows.approval_rules import RuleBroken, check_chain

VALID, FAILED, OTHER_KEY, UNREADABLE = 0, 1, 2, 3
FORMAT_2 = "govhall-decision/2"
#: The statements a format 2 document embeds, in order.
CHAIN_KINDS = (StatementKind.ACCEPTANCE, StatementKind.DECISION, StatementKind.DECISION,
               StatementKind.DECISION)


def _raw_or_base64(data: bytes, size: int) -> bytes:
    if len(data) == size:
        return data
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except binascii.Error as error:
        raise ValueError(f"expected {size} raw bytes or their base64") from error
    if len(decoded) != size:
        raise ValueError(f"expected {size} bytes, found {len(decoded)}")
    return decoded


def load_public_key(data: bytes) -> Ed25519PublicKey:
    if b"-----BEGIN" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(_raw_or_base64(data, 32))


def key_id(key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass
class Report:
    """Each check's verdict line, and the exit status they add up to."""

    lines: list[str] = field(default_factory=list)
    status: int = VALID
    #: A format 1 document: its seal is all there is to check.
    seal_only: bool = False

    def valid(self, check: str, why: str) -> None:
        self.lines.append(f"{check}: VALID — {why}")

    def failed(self, check: str, why: str, status: int = FAILED) -> None:
        self.lines.append(f"{check}: FAILED — {why}")
        if self.status == VALID:
            self.status = status

    def not_checked(self, check: str, why: str) -> None:
        self.lines.append(f"{check}: NOT CHECKED — {why}")


def _check_seal(report: Report, document: bytes, signature: bytes,
                seal_keys: Sequence[Ed25519PublicKey]) -> dict[str, Any] | None:
    """The document's fields if the seal holds over these exact bytes; None otherwise."""
    try:
        content = json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        report.failed("seal", "the document is not JSON: it was altered")
        return None
    if not isinstance(content, dict):
        report.failed("seal", "the document is not a JSON object: it was altered")
        return None
    named = content.get("key_id")
    keys = {key_id(k): k for k in seal_keys}
    if named not in keys:
        report.failed("seal", f"the document names seal key {named!r}; the keys given are "
                      f"{sorted(keys)}", OTHER_KEY)
        return None
    try:
        keys[named].verify(signature, document)
    except InvalidSignature:
        report.failed("seal", f"the signature of seal key {named} does not match these exact "
                      "bytes: the document or the signature was altered")
        return None
    report.valid("seal", f"sealed with key {named}: certificate "
                 f"{content.get('certificate_number')}, case {content.get('case_number')}, "
                 f"decision {content.get('decision')}, issued {content.get('issued_at')}")
    return content


def _statement_facts(report: Report, chain: Sequence[Any],
                     keys: TrustedKeys) -> list[StatementFacts] | None:
    """Every embedded statement's facts, each verified with its signer's published key."""
    if len(chain) != len(CHAIN_KINDS):
        report.failed("statements", f"the chain holds {len(chain)} statements, not "
                      f"{len(CHAIN_KINDS)} (acceptance, review, sign, seal)")
        return None
    facts: list[StatementFacts] = []
    for position, (item, kind) in enumerate(zip(chain, CHAIN_KINDS, strict=True), start=1):
        check = f"statement {position} ({kind}, signed by {STATEMENT_SIGNER[kind]})"
        try:
            if not isinstance(item, Mapping):
                raise BadSignature("not a signed statement")
            signed = Signed.from_dict(item)
            found = verified_facts(keys, as_statement(signed), kind)
        except (BadSignature, StatementFacts.Malformed) as error:
            report.failed(check, str(error))
            continue
        stage = f" at {found.stage}" if found.stage else ""
        report.valid(check, f"key {signed.key_id}: {found.official_id} of "
                     f"{found.department_code} ({', '.join(found.roles)}){stage}"
                     f"{', ' + found.outcome if found.outcome else ''}, {found.issued_at}")
        facts.append(found)
    return facts if len(facts) == len(CHAIN_KINDS) else None


def _check_texts(report: Report, texts: Any, decisions: Sequence[StatementFacts]) -> None:
    """Each decision's opinion and legal basis are the ones its statement's digest covers."""
    for facts in decisions:
        check = f"texts of {facts.stage}"
        given = texts.get(facts.stage) if isinstance(texts, Mapping) else None
        if not (isinstance(given, Mapping)
                and all(isinstance(given.get(k), str) for k in ("opinion", "legal_basis"))):
            report.failed(check, "the document does not carry its opinion and legal basis")
            continue
        digest = content_digest(opinion=given["opinion"], legal_basis=given["legal_basis"])
        if digest != facts.content_sha256:
            report.failed(check, f"their SHA-256 {digest} is not the {facts.content_sha256} "
                          "the statement was signed over: the texts were altered")
        else:
            report.valid(check, f"content digest {digest} matches the statement")


def _check_fields(report: Report, content: Mapping[str, Any], acceptance: StatementFacts,
                  decisions: Sequence[StatementFacts], outcome: str) -> None:
    """What the document says on its face is what its chain says."""
    by_stage = {facts.stage: facts for facts in decisions}
    texts = content.get("texts")
    stage_texts: Mapping[str, Any] = texts if isinstance(texts, Mapping) else {}

    def text_of(name: str) -> Any:
        """The leader's text, or the reviewer's where the leader added none."""
        for stage in ("sign", "review"):
            given = stage_texts.get(stage)
            value = given.get(name, "") if isinstance(given, Mapping) else ""
            if value:
                return value
        return ""

    expected = {
        "case_number": acceptance.case_number, "item_code": acceptance.item_code,
        "item_version": acceptance.item_version, "department_code": acceptance.department_code,
        "decision": outcome, "decided_at": by_stage["sign"].issued_at,
        "reviewer_id": by_stage["review"].official_id,
        "signer_id": by_stage["sign"].official_id,
        "sealed_by": by_stage["seal"].official_id,
        "opinion": text_of("opinion"), "legal_basis": text_of("legal_basis"),
    }
    wrong = [f"{name} is {content.get(name)!r}, the chain says {value!r}"
             for name, value in expected.items() if content.get(name) != value]
    if wrong:
        report.failed("document fields", "; ".join(wrong))
    else:
        report.valid("document fields", "case, item, decision, officials and texts are the "
                     "chain's")


def verify(document: bytes, signature: bytes, seal_keys: Sequence[Ed25519PublicKey],
           service_keys: TrustedKeys | None) -> Report:
    """Every check on a sealed document (docs/seal-verification.md)."""
    report = Report()
    content = _check_seal(report, document, signature, seal_keys)
    if content is None:
        return report
    form = content.get("format")
    if form is None:
        report.seal_only = True
        report.not_checked(
            "statements", "a format 1 document (sealed before the chain was signed) carries "
            "no signed statements: only its seal was checked")
        return report
    if form != FORMAT_2:
        report.failed("format", f"{form!r} is not a format this tool knows")
        return report
    if rfc8785.dumps(content) != document:
        report.failed("canonical form", "the bytes are not the RFC 8785 form of the document")
    else:
        report.valid("canonical form", "RFC 8785")
    chain = content.get("chain")
    if service_keys is None:
        report.failed("statements", "no service keys were given (--service-keys DIR): the "
                      "signed statements cannot be checked")
        return report
    if not isinstance(chain, list):
        report.failed("statements", "the document carries no chain of statements")
        return report
    facts = _statement_facts(report, chain, service_keys)
    if facts is None:
        report.not_checked("chain rules", "not every statement holds")
        return report
    acceptance, decisions = facts[0], facts[1:]
    _check_texts(report, content.get("texts"), decisions)
    try:
        outcome = check_chain(acceptance, decisions)
    except RuleBroken as broken:
        report.failed("chain rules", broken.message)
        return report
    report.valid("chain rules", f"window, review, sign and seal by four different officials "
                 f"of the right roles and departments, in order: {outcome}")
    _check_fields(report, content, acceptance, decisions, outcome)
    return report


def _verdict(report: Report, content_line: str) -> str:
    if report.status == VALID and report.seal_only:
        return f"VALID (format 1: the seal only; there is no chain to check): {content_line}"
    if report.status == VALID:
        return f"VALID: {content_line}"
    if report.status == OTHER_KEY:
        return "OTHER KEY: the document was not sealed with any key given"
    return "NOT VALID: at least one check failed"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_decision.py", description="Verify a sealed govhall decision offline.")
    parser.add_argument("document", type=Path, help="the decision document, as issued")
    parser.add_argument("signature", type=Path, help="its Ed25519 signature (raw or base64)")
    parser.add_argument("seal_keys", type=Path, nargs="+", metavar="seal_key",
                        help="the seal's public key(s): PEM, raw or base64")
    parser.add_argument("--service-keys", type=Path, default=None, metavar="DIR",
                        help="the services' published keys, DIR/<service>/<key id>.pub")
    arguments = parser.parse_args(argv)
    try:
        document = arguments.document.read_bytes()
        signature = _raw_or_base64(arguments.signature.read_bytes(), 64)
        seal_keys = [load_public_key(path.read_bytes()) for path in arguments.seal_keys]
        service_keys = None
        if arguments.service_keys is not None:
            if not arguments.service_keys.is_dir():
                raise ValueError(f"{arguments.service_keys} is not a folder")
            service_keys = TrustedKeys.load(arguments.service_keys)
    except (OSError, ValueError) as error:
        print(f"UNREADABLE: {error}", file=sys.stderr)
        return UNREADABLE
    report = verify(document, signature, seal_keys, service_keys)
    for line in report.lines:
        print(line)
    fields = json.loads(document) if report.status == VALID else {}
    print(_verdict(report, f"certificate {fields.get('certificate_number')}, case "
                           f"{fields.get('case_number')}, decision {fields.get('decision')}"))
    return report.status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
