"""`make breaking`: today's protos against the committed baseline of main's last landed ones.

The check runs on the image `make protos` builds (build/govhall.binpb) and on
copies of it with one breaking change, so it is shown both to accept the
protos as they are and to refuse what FILE-level compatibility forbids.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "node_modules" / ".bin" / "buf"
IMAGE = ROOT / "build" / "govhall.binpb"
BASELINE = ROOT / "protos" / "breaking-baseline.binpb"

#: For the tests that run buf; the baseline's being committed needs neither.
needs_buf = pytest.mark.skipif(
    not (BUF.exists() and IMAGE.exists()),
    reason="needs npm's buf (npm ci) and the image `make protos` builds")


def _breaking(image: Path) -> subprocess.CompletedProcess[str]:
    """``buf breaking`` exactly as the Makefile's ``breaking`` target runs it."""
    return subprocess.run(
        [str(BUF), "breaking", str(image), "--against", BASELINE.name, "--config", "buf.yaml",
         "--path", "govhall"],
        cwd=ROOT / "protos", capture_output=True, text=True, timeout=120, check=False)


def _image() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(IMAGE.read_bytes())


def _message(image: descriptor_pb2.FileDescriptorSet, file: str,
             name: str) -> descriptor_pb2.DescriptorProto:
    (found,) = [m for f in image.file if f.name == file for m in f.message_type
                if m.name == name]
    return found


def _write(image: descriptor_pb2.FileDescriptorSet, path: Path) -> Path:
    path.write_bytes(image.SerializeToString())
    return path


def test_the_baseline_is_committed_beside_the_protos() -> None:
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--error-unmatch",
                              str(BASELINE)], capture_output=True, check=False)
    assert tracked.returncode == 0, "protos/breaking-baseline.binpb must be committed"


@needs_buf
def test_todays_protos_are_compatible_with_the_baseline() -> None:
    result = _breaking(IMAGE)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_buf
def test_a_renumbered_field_is_a_breaking_change(tmp_path: Path) -> None:
    image = _image()
    verification = _message(image, "govhall/common/v1/common.proto", "AuditLogVerification")
    (entries,) = [f for f in verification.field if f.name == "entries"]
    entries.number = 99
    result = _breaking(_write(image, tmp_path / "renumbered.binpb"))
    assert result.returncode != 0
    assert '"entries"' in result.stdout and "AuditLogVerification" in result.stdout


@needs_buf
def test_a_removed_rpc_is_a_breaking_change(tmp_path: Path) -> None:
    image = _image()
    (intake,) = [f for f in image.file if f.name == "govhall/intake/v1/intake.proto"]
    (service,) = intake.service
    removed = service.method.pop(0).name
    result = _breaking(_write(image, tmp_path / "removed.binpb"))
    assert result.returncode != 0
    assert f'"{removed}"' in result.stdout
