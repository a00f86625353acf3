"""The payload codec: every Temporal payload govhall writes is AES-256-GCM ciphertext.

Temporal is a transport, not a place to keep secrets: whoever reads a
workflow's history (the frontend, its database, the UI, the CLI) sees only
ciphertext. Each payload is encrypted on its own with a fresh 96-bit nonce;
the original payload (metadata and data) is serialised inside, and the
outer payload says ``encoding: binary/encrypted`` and which key sealed it
(``encryption-key-id``).

Keys live as files in one folder (``<pki>/temporal-codec/`` by default),
readable by their owner only: ``0001.key``, ``0002.key``, … each 32 random
bytes. The highest number encodes; every key decodes, so rotating is adding
the next file (``python -m kernel.codec rotate``) and old payloads keep
decoding. The first key is made on first use.

What codecs never see: search attributes and the workflow's static
summary and details travel in clear by Temporal's design, which is why
govhall puts no personal data there.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from kernel.keyfiles import create_once
from kernel.privatefiles import set_private_umask
from kernel.settings import VAR

#: The outer payload's encoding: what Temporal, the UI and the CLI see.
ENCODING = b"binary/encrypted"
#: Metadata entry naming the key that sealed the payload.
KEY_ID = "encryption-key-id"
KEY_BYTES = 32
NONCE_BYTES = 12
#: Binds each ciphertext to its key id (and to this format), so a payload cannot be
#: relabelled with another key id and still authenticate.
_LABEL = b"govhall/temporal-payload/v1\x00"
_KEY_FILE = re.compile(r"^(\d{4,})\.key$")


def codec_dir(pki_dir: Path) -> Path:
    """Where the payload keys live under a PKI folder."""
    return pki_dir / "temporal-codec"


log = structlog.get_logger("govhall.codec")


class CodecError(Exception):
    """A payload that cannot be decoded: unknown key, wrong key or altered bytes."""


class UnknownKeyError(CodecError):
    """A payload sealed with a key this keyring does not hold."""


class Keyring:
    """Payload keys by id: one current for encoding, all of them for decoding."""

    def __init__(self, keys: Mapping[str, bytes], *, current: str,
                 directory: Path | None = None) -> None:
        if current not in keys:
            raise ValueError(f"the current key {current!r} is not among the keys")
        self._keys = {key_id: _aead(key_id, key) for key_id, key in keys.items()}
        self._current = current
        self._directory = directory

    @classmethod
    def load(cls, directory: Path) -> Keyring:
        """The keys in ``directory``; makes the first one there if it has none."""
        keys = _read_keys(directory)
        if not keys:
            create_once(directory / _file_name(1), os.urandom(KEY_BYTES))
            keys = _read_keys(directory)
        return cls(keys, current=max(keys, key=int), directory=directory)

    @property
    def current(self) -> str:
        """The id of the key that encodes."""
        return self._current

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys, key=int)

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._keys.get(key_id)
        if cipher is None and self._directory is not None:
            # Another process may have rotated since this one loaded: look again once.
            fresh = _read_keys(self._directory)
            self._keys.update({k: _aead(k, v) for k, v in fresh.items() if k not in self._keys})
            cipher = self._keys.get(key_id)
        if cipher is None:
            where = f" in {self._directory}" if self._directory is not None else ""
            raise UnknownKeyError(
                f"the payload was encrypted with key {key_id!r}, which is not{where} "
                f"(keys held: {', '.join(self.key_ids)}); give this process that key file")
        return cipher

    def seal(self, plaintext: bytes) -> tuple[str, bytes]:
        """``(key id, nonce + ciphertext)`` under the current key."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plaintext,
                                                    _LABEL + self._current.encode())
        return self._current, nonce + sealed

    def unseal(self, key_id: str, sealed: bytes) -> bytes:
        """The plaintext ``seal`` gave ``sealed`` under ``key_id``, or a CodecError."""
        cipher = self._cipher(key_id)
        if len(sealed) < NONCE_BYTES + 16:
            raise CodecError(f"the payload sealed with key {key_id!r} is truncated")
        try:
            return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                  _LABEL + key_id.encode())
        except InvalidTag as error:
            raise CodecError(
                f"the payload does not authenticate under key {key_id!r}: the key file "
                "differs from the one that sealed it, or the payload was altered") from error


def _aead(key_id: str, key: bytes) -> AESGCM:
    if len(key) != KEY_BYTES:
        raise ValueError(f"payload key {key_id!r} has {len(key)} bytes, not {KEY_BYTES}")
    return AESGCM(key)


def _file_name(serial: int) -> str:
    return f"{serial:04d}.key"


def _read_keys(directory: Path) -> dict[str, bytes]:
    if not directory.is_dir():
        return {}
    keys: dict[str, bytes] = {}
    for path in directory.iterdir():
        match = _KEY_FILE.match(path.name)
        if match:
            keys[match.group(1)] = path.read_bytes()
    return keys


def rotate(directory: Path) -> str:
    """Add the next key, which becomes the current one; returns its id.

    Processes pick it up for encoding when they restart; until then they
    still decode what it sealed, because an unknown key id makes a keyring
    read its folder again.
    """
    keys = _read_keys(directory)
    serial = max((int(k) for k in keys), default=0) + 1
    path = directory / _file_name(serial)
    create_once(path, os.urandom(KEY_BYTES))
    match = _KEY_FILE.match(path.name)
    assert match is not None
    return match.group(1)


#: What a payload that cannot be decrypted becomes in a worker or client (see below).
UNDECODABLE = b"binary/govhall-undecodable"


class EncryptingCodec(PayloadCodec):
    """AES-256-GCM over each whole payload; the key id travels in the metadata.

    ``refuse_undecodable`` (the default, and the codec server's) raises
    CodecError for a payload that claims to be encrypted but cannot be
    decrypted. Workers and clients turn such a payload into one of encoding
    ``binary/govhall-undecodable`` instead: whoever reaches Temporal could
    otherwise send one in a signal and fail every later workflow task of a
    case; as it is, the data converter cannot read it, so the SDK drops the
    signal, refuses the update or fails the one activity, and the case goes on.
    """

    def __init__(self, keyring: Keyring, *, refuse_undecodable: bool = True) -> None:
        self.keyring = keyring
        self.refuse_undecodable = refuse_undecodable

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_or_mark(payload) for payload in payloads]

    def _decode_or_mark(self, payload: Payload) -> Payload:
        try:
            return self.decode_one(payload)
        except CodecError as error:
            if self.refuse_undecodable:
                raise
            log.warning("codec.undecodable_payload", reason=str(error)[:200])
            return Payload(metadata={"encoding": UNDECODABLE}, data=b"")

    def encode_one(self, payload: Payload) -> Payload:
        key_id, sealed = self.keyring.seal(payload.SerializeToString(deterministic=True))
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=sealed)

    def decode_one(self, payload: Payload) -> Payload:
        """The original payload; one not encrypted by this codec passes through.

        Passing plaintext through lets a worker finish workflows started before
        payloads were encrypted; it reveals nothing, since whoever wrote that
        payload already had its contents.
        """
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_key_id = payload.metadata.get(KEY_ID)
        if not raw_key_id:
            raise CodecError(f"an encrypted payload without its {KEY_ID!r} metadata")
        inner = Payload()
        inner.ParseFromString(self.keyring.unseal(raw_key_id.decode(errors="replace"),
                                                  payload.data))
        return inner


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m kernel.codec [show|rotate] [folder]`` (default folder var/pki/temporal-codec)."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "show"
    directory = Path(args[1]) if len(args) > 1 else codec_dir(VAR / "pki")
    set_private_umask()
    if command == "rotate":
        key_id = rotate(directory)
        print(f"new current payload key {key_id} in {directory}; restart the processes "
              "that encode (services, workers) to use it")
    elif command == "show":
        keyring = Keyring.load(directory)
        print(f"payload keys in {directory}: {', '.join(keyring.key_ids)} "
              f"(current {keyring.current})")
    else:
        raise SystemExit(f"unknown command {command!r}: use show or rotate")


if __name__ == "__main__":
    main()
