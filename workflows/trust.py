"""The public keys the workflows worker trusts, for the approval workflow's validators.

An update's statement is checked here before the workflow takes it, so a
forged decision sent straight to Temporal is refused at once. This is the
first of two checks: the service that acts on a statement (review records
it, intake seals with it) verifies it again with its own keys, because
whoever reaches Temporal could also run a workflow of their own.

Validators do not run on replay, so the keys may change between runs of
the worker (a key is only ever added: rotation keeps the old ones).
"""

from __future__ import annotations

from kernel.signing import BadSignature, Signed, TrustedKeys
from workflows.approval_contract import SignedStatement

_trusted: TrustedKeys | None = None


def configure(keys: TrustedKeys) -> None:
    """Trust ``keys`` from now on (the worker calls this before it polls)."""
    global _trusted
    _trusted = keys


def verify(statement: SignedStatement, *, signer: str) -> None:
    """Raise BadSignature unless ``signer`` signed ``statement``."""
    if _trusted is None:
        raise BadSignature("this worker trusts no keys: it cannot check any statement")
    _trusted.verify(Signed(statement.body, statement.signer, statement.key_id,
                           statement.signature), signer=signer)
