"""What a service vouches for: statements and checkpoints signed with its own key.

Every service holds one Ed25519 signing key (``<pki>/services/<service>/signing.key``,
0600, made on first use). What it signs is a JSON object, canonicalised by
RFC 8785 (JSON Canonicalization Scheme), so a verifier in any language gets
the same bytes. The public keys are published (``<keys>/<service>/*.pub``,
one file per key, and by each service's ``GetServiceKeys`` RPC); a key is
named by its key id, the first 16 hex digits of SHA-256 over the raw public
key, so a rotated key keeps verifying what it signed.

A signed document is ``{"body": {...}, "signer": "<service>", "key_id": "...",
"signature": "<base64 Ed25519 over canonical(body)>"}``. A verifier checks
that the signer is the one it expects and that the signature holds; only
then does it read the body.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kernel.canonical import canonical_json
from kernel.keyfiles import create_once

#: The services that sign, and the workflows worker which does not.
SIGNERS = ("intake", "review", "trading", "complaints")


class BadSignature(Exception):
    """A signed document that is not what its signer signed, or not from whom it should be."""


def canonical(document: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON: sorted keys, no spaces, UTF-8, ES6 numbers."""
    return canonical_json(dict(document))


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def signing_key_path(pki_dir: Path, service: str) -> Path:
    return pki_dir / "services" / service / "signing.key"


def public_keys_dir(pki_dir: Path) -> Path:
    """Where the embedded default publishes every service's public keys."""
    return pki_dir / "services"


@dataclass(frozen=True)
class Signed:
    """A body and its signer's signature over its canonical form."""

    body: dict[str, Any]
    signer: str
    key_id: str
    signature: str

    def as_dict(self) -> dict[str, Any]:
        return {"body": self.body, "signer": self.signer, "key_id": self.key_id,
                "signature": self.signature}

    def canonical_with(self, body_canonical: bytes) -> bytes:
        """``canonical(self.as_dict())`` from the body's canonical form already made for
        its signature: RFC 8785 writes an object as its members in key order ("body",
        "key_id", "signature", "signer"), each value in its own canonical form, so the
        body is not written a second time."""
        return b"".join((b'{"body":', body_canonical, b',"key_id":',
                         canonical_json(self.key_id), b',"signature":',
                         canonical_json(self.signature), b',"signer":',
                         canonical_json(self.signer), b"}"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signed:
        try:
            body, signer = data["body"], data["signer"]
            kid, signature = data["key_id"], data["signature"]
        except (KeyError, TypeError) as error:
            raise BadSignature("not a signed document: body, signer, key_id and "
                               "signature are required") from error
        if not (isinstance(body, dict) and all(isinstance(v, str)
                                               for v in (signer, kid, signature))):
            raise BadSignature("not a signed document: malformed fields")
        return cls(body, signer, kid, signature)


class ServiceSigner:
    """One service's signing key."""

    def __init__(self, service: str, key: Ed25519PrivateKey) -> None:
        self.service = service
        self._key = key
        self.public_key = key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, body: Mapping[str, Any]) -> Signed:
        return self.sign_canonical(body)[0]

    def sign_canonical(self, body: Mapping[str, Any]) -> tuple[Signed, bytes]:
        """The body signed, and the signed document's canonical form (what
        ``canonical(signed.as_dict())`` gives), the body written once for both."""
        written = canonical(body)
        signature = self._key.sign(written)
        signed = Signed(dict(body), self.service, self.key_id,
                        base64.b64encode(signature).decode("ascii"))
        return signed, signed.canonical_with(written)

    def derived_key(self, purpose: str) -> bytes:
        """A 32-byte secret for ``purpose`` (e.g. keying a MAC), derived from the signing
        key with HKDF-SHA256: only the service holding the key can compute it, and each
        purpose gets its own."""
        private = self._key.private_bytes(serialization.Encoding.Raw,
                                          serialization.PrivateFormat.Raw,
                                          serialization.NoEncryption())
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=f"govhall {self.service} {purpose}".encode()).derive(private)

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def service_signer(pki_dir: Path, service: str) -> ServiceSigner:
    """``service``'s signing key, made on first use; its public key is published beside it."""
    candidate = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    path = signing_key_path(pki_dir, service)
    key = serialization.load_pem_private_key(create_once(path, candidate), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    signer = ServiceSigner(service, key)
    publish(public_keys_dir(pki_dir), service, signer.public_key)
    return signer


def publish(keys_dir: Path, service: str, public_key: Ed25519PublicKey) -> Path:
    """Write ``public_key`` as ``<keys_dir>/<service>/<key id>.pub`` (PEM), once.

    A key already there under another name (as a deployment's read-only
    ConfigMap gives it, deploy/k8s) counts as published and nothing is written.
    """
    path = keys_dir / service / f"{key_id(public_key)}.pub"
    if not path.exists():
        for existing in sorted((keys_dir / service).glob("*.pub")):
            key = serialization.load_pem_public_key(existing.read_bytes())
            if isinstance(key, Ed25519PublicKey) and raw_public(key) == raw_public(public_key):
                return existing
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = public_key.public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
        create_once(path, pem)
    return path


def _read_keys(keys_dir: Path) -> dict[str, list[Ed25519PublicKey]]:
    keys: dict[str, list[Ed25519PublicKey]] = {}
    if keys_dir.is_dir():
        for path in sorted(keys_dir.glob("*/*.pub")):
            key = serialization.load_pem_public_key(path.read_bytes())
            if isinstance(key, Ed25519PublicKey):
                keys.setdefault(path.parent.name, []).append(key)
    return keys


class TrustedKeys:
    """The public keys a verifier accepts, by signer and key id.

    Loaded from a folder, it looks there again (at most once a second) when
    asked for a key it does not know, so a key published after start (a
    rotation elsewhere) is found without a restart.
    """

    RELOAD_SECONDS = 1.0

    def __init__(self, keys: Mapping[str, Iterable[Ed25519PublicKey]],
                 source: Path | None = None) -> None:
        self._source = source
        #: Never looked again yet: the first unknown key is looked for at once.
        self._loaded_at = -self.RELOAD_SECONDS
        self._keys: dict[str, dict[str, Ed25519PublicKey]] = {}
        self._set(keys)

    def _set(self, keys: Mapping[str, Iterable[Ed25519PublicKey]]) -> None:
        self._keys = {signer: {key_id(k): k for k in ks} for signer, ks in keys.items()}

    @classmethod
    def load(cls, keys_dir: Path) -> TrustedKeys:
        """Every ``<keys_dir>/<service>/*.pub`` file (PEM Ed25519 public keys)."""
        return cls(_read_keys(keys_dir), source=keys_dir)

    def signers(self) -> dict[str, list[str]]:
        return {signer: sorted(ks) for signer, ks in self._keys.items()}

    def public_key(self, signer: str, kid: str) -> Ed25519PublicKey | None:
        key = self._keys.get(signer, {}).get(kid)
        if key is None and self._source is not None and \
                time.monotonic() - self._loaded_at >= self.RELOAD_SECONDS:
            self._loaded_at = time.monotonic()
            self._set(_read_keys(self._source))
            key = self._keys.get(signer, {}).get(kid)
        return key

    def verify(self, signed: Signed, *, signer: str) -> dict[str, Any]:
        """The body, if ``signer`` signed it; BadSignature otherwise."""
        if signed.signer != signer:
            raise BadSignature(f"signed by {signed.signer!r}, not by {signer!r}")
        key = self.public_key(signer, signed.key_id)
        if key is None:
            raise BadSignature(f"{signer} has no published key {signed.key_id!r}")
        try:
            signature = base64.b64decode(signed.signature, validate=True)
            key.verify(signature, canonical(signed.body))
        except (InvalidSignature, ValueError) as error:
            raise BadSignature(f"the signature of {signer} does not hold") from error
        return signed.body


# ---- the keys a workflows worker trusts ---------------------------------------------------
#
# The approval workflow's update validators check each statement before the workflow takes
# it, so a forged decision sent straight to Temporal is refused at once. Workflow code runs in
# Temporal's sandbox, which imports workflow modules afresh but passes this kernel module
# through: the worker configures the keys here once, and every workflow run sees them.
# Validators do not run on replay, so the keys may change between runs of the worker (they
# are only ever added to: a rotated key stays trusted for what it signed).

_workflow_keys: TrustedKeys | None = None


def trust_in_workflows(keys: TrustedKeys) -> None:
    """Trust ``keys`` in this process's workflow validators (the worker calls this first)."""
    global _workflow_keys
    _workflow_keys = keys


def verify_in_workflow(signed: Signed, *, signer: str) -> None:
    """Raise BadSignature unless ``signer`` signed ``signed``, by the worker's keys."""
    if _workflow_keys is None:
        raise BadSignature("this worker trusts no keys: it cannot check any statement")
    _workflow_keys.verify(signed, signer=signer)
