"""Field-level encryption of personal data kept in a service's database.

A ``FieldCipher`` seals one field's value with AES-256-GCM under a key kept
as a file under the service's PKI directory (``kernel.keyfiles``: made once,
0600). Each value is bound to the row it belongs to (``context``, for
example a case number, as associated data), so a sealed value copied into
another row does not open there. A token is ``v1.`` and the URL-safe base64
of a fresh 96-bit nonce followed by the ciphertext and its tag.

``digest`` gives a keyed fingerprint (HMAC-SHA256 under a second key derived
from the file's key) of content holding personal data: two pushes of the
same content can be compared without keeping the content in the clear, and
nobody without the key can test a guessed phone number against it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kernel.keyfiles import create_once

_VERSION = "v1."
_NONCE_BYTES = 12
_KEY_BYTES = 32


class FieldCipherError(ValueError):
    """A sealed value that does not open with this key in this context."""


class FieldCipher:
    """Seals and opens personal data fields, and fingerprints content holding them."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError(f"a field key is {_KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self._mac_key = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None,
                             info=b"govhall field fingerprint").derive(key)

    def seal(self, plaintext: bytes, *, context: str) -> str:
        """``plaintext`` encrypted, bound to ``context``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode("utf-8"))
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, *, context: str) -> bytes:
        """The plaintext ``seal`` sealed under ``context``; FieldCipherError otherwise."""
        if not token.startswith(_VERSION):
            raise FieldCipherError("not a sealed field of this version")
        try:
            raw = base64.urlsafe_b64decode(token[len(_VERSION):].encode("ascii"))
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:],
                                      context.encode("utf-8"))
        except (binascii.Error, UnicodeError, InvalidTag, ValueError) as error:
            raise FieldCipherError(
                "the sealed field does not open with this key for this row") from error

    def digest(self, content: bytes) -> str:
        """A keyed fingerprint of ``content`` (hex HMAC-SHA256)."""
        return hmac.new(self._mac_key, content, hashlib.sha256).hexdigest()


def field_cipher(key_path: Path) -> FieldCipher:
    """The cipher whose key is at ``key_path``, the key made on first use."""
    stored = create_once(key_path, base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
    try:
        key = base64.b64decode(stored.strip(), validate=True)
    except binascii.Error as error:
        raise ValueError(f"{key_path} does not hold a base64 field key") from error
    return FieldCipher(key)
