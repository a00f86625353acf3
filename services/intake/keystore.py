"""The intake service's secret keys, kept as files under the PKI directory.

- ``seal/seal.key``: the center's Ed25519 seal key (PKCS#8 PEM). Replacing
  the file rotates the seal: the old public key stays in the database so
  documents sealed with it still verify.
- ``intake/applicant-data.key``: the Fernet key applicants' personal data is
  encrypted with in the intake database.

Both are made on first use, readable by the owner only (0600). Several
processes starting at once agree on one key: each writes its candidate to a
private temporary file and links it into place; the first link wins and the
others read the winner's.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from kernel.keyfiles import create_once
from services.intake.domain.cases import Applicant


def seal_key_path(pki_dir: Path) -> Path:
    return pki_dir / "seal" / "seal.key"


def applicant_key_path(pki_dir: Path) -> Path:
    return pki_dir / "intake" / "applicant-data.key"


def seal_key(pki_dir: Path) -> Ed25519PrivateKey:
    """The center's seal key, made on first use."""
    candidate = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    key = serialization.load_pem_private_key(
        create_once(seal_key_path(pki_dir), candidate), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{seal_key_path(pki_dir)} is not an Ed25519 private key")
    return key


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def public_key_pem(raw: bytes) -> str:
    return Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class ApplicantCipher:
    """Encrypts an applicant's personal data for the intake database, and back."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, applicant: Applicant) -> str:
        content = json.dumps({"kind": applicant.kind, "name": applicant.name,
                              "id_number": applicant.id_number, "phone": applicant.phone},
                             ensure_ascii=False)
        return self._fernet.encrypt(content.encode("utf-8")).decode("ascii")

    def open(self, token: str) -> Applicant:
        try:
            content = json.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken as error:
            raise ValueError("applicant data cannot be decrypted with this key") from error
        return Applicant(content["kind"], content["name"], content["id_number"],
                         content["phone"])


def applicant_cipher(pki_dir: Path) -> ApplicantCipher:
    """The cipher of applicants' personal data, its key made on first use."""
    return ApplicantCipher(create_once(applicant_key_path(pki_dir), Fernet.generate_key()))
