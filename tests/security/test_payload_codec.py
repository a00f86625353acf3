"""The payload codec: ciphertext only, a fresh nonce each time, rotation, clear failures."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from kernel.codec import (
    ENCODING,
    KEY_ID,
    CodecError,
    EncryptingCodec,
    Keyring,
    UnknownKeyError,
    main,
    rotate,
)

MARKER = "王小明-440106199001011234"


def plain(text: str = MARKER) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_a_payload_becomes_ciphertext_naming_its_key(tmp_path: Path) -> None:
    codec = EncryptingCodec(Keyring.load(tmp_path / "keys"))
    [encoded] = await codec.encode([plain()])
    assert encoded.metadata["encoding"] == ENCODING
    assert encoded.metadata[KEY_ID] == b"0001"
    assert MARKER.encode() not in encoded.SerializeToString()
    assert b"json/plain" not in encoded.SerializeToString()  # the inner metadata is sealed too
    assert await codec.decode([encoded]) == [plain()]


async def test_each_encoding_uses_a_fresh_nonce(tmp_path: Path) -> None:
    codec = EncryptingCodec(Keyring.load(tmp_path / "keys"))
    first, second = await codec.encode([plain(), plain()])
    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_after_rotation_new_payloads_use_the_new_key_and_old_ones_still_decode(
        tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    [old] = await EncryptingCodec(Keyring.load(folder)).encode([plain("before")])
    assert rotate(folder) == "0002"
    rotated = EncryptingCodec(Keyring.load(folder))
    [new] = await rotated.encode([plain("after")])
    assert new.metadata[KEY_ID] == b"0002"
    assert await rotated.decode([old, new]) == [plain("before"), plain("after")]


async def test_a_process_loaded_before_a_rotation_decodes_what_the_new_key_sealed(
        tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    loaded_before = EncryptingCodec(Keyring.load(folder))
    rotate(folder)
    [new] = await EncryptingCodec(Keyring.load(folder)).encode([plain()])
    assert await loaded_before.decode([new]) == [plain()]
    assert loaded_before.keyring.current == "0001"  # it keeps encoding until restarted


async def test_an_unknown_key_id_fails_clearly(tmp_path: Path) -> None:
    [sealed] = await EncryptingCodec(Keyring.load(tmp_path / "a")).encode([plain()])
    sealed.metadata[KEY_ID] = b"0042"
    with pytest.raises(UnknownKeyError, match=r"key '0042', which is not in .*keys held: 0001"):
        await EncryptingCodec(Keyring.load(tmp_path / "b")).decode([sealed])


async def test_another_deployments_key_of_the_same_id_is_refused(tmp_path: Path) -> None:
    [sealed] = await EncryptingCodec(Keyring.load(tmp_path / "a")).encode([plain()])
    with pytest.raises(CodecError, match="does not authenticate under key '0001'"):
        await EncryptingCodec(Keyring.load(tmp_path / "b")).decode([sealed])


async def test_altered_ciphertext_or_a_relabelled_key_id_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    codec = EncryptingCodec(Keyring.load(folder))
    [sealed] = await codec.encode([plain()])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(CodecError, match="altered"):
        await codec.decode([altered])
    rotate(folder)
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID] = b"0002"
    with pytest.raises(CodecError, match="does not authenticate under key '0002'"):
        await codec.decode([relabelled])


async def test_an_encrypted_payload_without_its_key_id_is_refused(tmp_path: Path) -> None:
    codec = EncryptingCodec(Keyring.load(tmp_path / "keys"))
    [sealed] = await codec.encode([plain()])
    del sealed.metadata[KEY_ID]
    with pytest.raises(CodecError, match="without its 'encryption-key-id'"):
        await codec.decode([sealed])


async def test_plaintext_written_before_encryption_passes_through(tmp_path: Path) -> None:
    codec = EncryptingCodec(Keyring.load(tmp_path / "keys"))
    assert await codec.decode([plain()]) == [plain()]


def test_key_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        folder = tmp_path / "keys"
        Keyring.load(folder)
        rotate(folder)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for key in ("0001.key", "0002.key"):
        assert stat.S_IMODE((folder / key).stat().st_mode) == 0o600
        assert len((folder / key).read_bytes()) == 32
    assert sorted(p.name for p in folder.iterdir()) == ["0001.key", "0002.key"]


def test_a_key_file_of_the_wrong_size_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "0001.key").write_bytes(b"short")
    with pytest.raises(ValueError, match="payload key '0001' has 5 bytes"):
        Keyring.load(folder)


def test_the_command_line_rotates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "keys"
    previous = os.umask(0o022)
    try:
        main(["show", str(folder)])
        main(["rotate", str(folder)])
        main(["show", str(folder)])
    finally:
        os.umask(previous)
    output = capsys.readouterr().out
    assert "0001 (current 0001)" in output
    assert "new current payload key 0002" in output
    assert "0001, 0002 (current 0002)" in output
