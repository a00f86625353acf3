"""Field-level encryption: real AES-GCM, bound to its row, with a keyed fingerprint."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from kernel.fieldcipher import FieldCipher, FieldCipherError, field_cipher


def test_a_sealed_field_opens_only_in_its_own_row(tmp_path: Path) -> None:
    cipher = field_cipher(tmp_path / "svc" / "field.key")
    token = cipher.seal(b"13975318642", context="CP-20260105-000001")
    assert "13975318642" not in token and token.startswith("v1.")
    assert cipher.open(token, context="CP-20260105-000001") == b"13975318642"
    with pytest.raises(FieldCipherError):
        cipher.open(token, context="CP-20260105-000002")


def test_each_seal_uses_a_fresh_nonce() -> None:
    cipher = FieldCipher(os.urandom(32))
    assert cipher.seal(b"same", context="r") != cipher.seal(b"same", context="r")


def _flip(token: str, index: int) -> str:
    """The token with one bit of its raw bytes (nonce, ciphertext or tag) flipped."""
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    raw[index] ^= 1
    return "v1." + base64.urlsafe_b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("damage", [
    lambda t: _flip(t, 0), lambda t: _flip(t, 13), lambda t: _flip(t, -1),
    lambda t: "v2." + t[3:], lambda t: t[:10], lambda t: "v1.!!!not base64",
])
def test_a_damaged_or_foreign_token_does_not_open(damage: Callable[[str], str]) -> None:
    cipher = FieldCipher(os.urandom(32))
    token = cipher.seal(b"secret", context="r")
    with pytest.raises(FieldCipherError):
        cipher.open(damage(token), context="r")


def test_another_key_opens_nothing() -> None:
    token = FieldCipher(os.urandom(32)).seal(b"secret", context="r")
    with pytest.raises(FieldCipherError):
        FieldCipher(os.urandom(32)).open(token, context="r")


def test_the_fingerprint_is_keyed_and_stable() -> None:
    key = os.urandom(32)
    assert FieldCipher(key).digest(b"push") == FieldCipher(key).digest(b"push")
    assert FieldCipher(key).digest(b"push") != FieldCipher(key).digest(b"other push")
    assert FieldCipher(key).digest(b"push") != FieldCipher(os.urandom(32)).digest(b"push")


def test_the_key_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "svc" / "field.key"
    token = field_cipher(path).seal(b"secret", context="r")
    assert path.stat().st_mode & 0o777 == 0o600
    assert field_cipher(path).open(token, context="r") == b"secret"


def test_a_key_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher(b"short")
    path = tmp_path / "field.key"
    path.write_bytes(b"not base64 at all!\n")
    with pytest.raises(ValueError, match="base64 field key"):
        field_cipher(path)
