"""Regenerate the Python messages, gRPC stubs and type stubs from protos/.

Run as ``python tools/genprotos.py`` (``make protos``). The output goes to
gen/ and is never edited by hand.

``python tools/genprotos.py --breaking-baseline REF`` (``make
breaking-baseline REF=<commit>``) instead builds the image of the protos as
they were at git commit REF into protos/breaking-baseline.binpb, the
baseline ``buf breaking`` compares against (``make breaking``). It is
committed, so the check needs neither git history nor the network: refresh
it after every landing on main, with main's new head as REF.

protovalidate's rules (``buf/validate/validate.proto``) come from the
installed ``protovalidate`` package, which ships the file's descriptor but
not its source: we lift the descriptor out of the package and hand it to
protoc as a descriptor set, so the schema is exactly the one the validator
at run time understands and nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

import grpc_tools
import protovalidate
from google.protobuf import (
    descriptor_pb2,
    duration_pb2,
    field_mask_pb2,
    timestamp_pb2,
)
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"
BUILD = ROOT / "build"
VALIDATE_SET = BUILD / "protovalidate.binpb"
IMAGE = BUILD / "govhall.binpb"
BASELINE = PROTOS / "breaking-baseline.binpb"


def _validate_descriptor() -> descriptor_pb2.FileDescriptorProto:
    source = pathlib.Path(protovalidate.__file__).parent / "_gen/buf/validate/validate_pb.py"
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "file_desc"
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return descriptor_pb2.FileDescriptorProto.FromString(node.args[0].value)
    raise SystemExit(f"no file descriptor found in {source}")


def write_validate_set() -> None:
    files = descriptor_pb2.FileDescriptorSet()
    for module in (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2):
        module.DESCRIPTOR.CopyToProto(files.file.add())
    files.file.append(_validate_descriptor())
    BUILD.mkdir(exist_ok=True)
    VALIDATE_SET.write_bytes(files.SerializeToString())


def _protoc(*args: str, protos: pathlib.Path = PROTOS) -> None:
    well_known = str(pathlib.Path(grpc_tools.__file__).parent / "_proto")
    argv = ["protoc", f"-I{protos}", f"-I{well_known}", f"--descriptor_set_in={VALIDATE_SET}"]
    if protoc.main([*argv, *args]) != 0:
        raise SystemExit(f"protoc failed: {' '.join(args)}")


def _sources(protos: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(protos)) for p in protos.rglob("*.proto"))


def write_baseline(ref: str) -> None:
    """The image of protos/ at git commit ``ref``, for ``buf breaking --against``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref, "protos"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {ref} failed: {archive.stderr.decode().strip()}")
    write_validate_set()
    with tempfile.TemporaryDirectory() as scratch:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(scratch, filter="data")
        protos = pathlib.Path(scratch) / "protos"
        # Imports included so the image stands alone; no source info, which only
        # locates findings in the input, never in the baseline.
        _protoc(f"-o{BASELINE}", "--include_imports", *_sources(protos), protos=protos)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref],
                            capture_output=True, text=True, check=True).stdout.strip()
    print(f"wrote {BASELINE.relative_to(ROOT)} from the protos of {commit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--breaking-baseline", metavar="REF",
                        help="build protos/breaking-baseline.binpb from commit REF instead")
    arguments = parser.parse_args()
    if arguments.breaking_baseline:
        write_baseline(arguments.breaking_baseline)
        return
    # protoc-gen-mypy lives beside the interpreter in the virtual environment.
    os.environ["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    write_validate_set()
    for generated in ("govhall", "buf"):
        shutil.rmtree(GEN / generated, ignore_errors=True)
    GEN.mkdir(exist_ok=True)
    sources = _sources(PROTOS)
    out = str(GEN)
    _protoc(
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *sources,
    )
    _protoc(f"--python_out={out}", f"--mypy_out={out}", "buf/validate/validate.proto")
    # One image of every file with its sources, for `buf lint` and `buf breaking`.
    _protoc(f"-o{IMAGE}", "--include_imports", "--include_source_info", *sources)
    for directory in [GEN / "govhall", GEN / "buf", *(GEN / "govhall").rglob("*"),
                      *(GEN / "buf").rglob("*")]:
        if directory.is_dir() and directory.name != "__pycache__":
            (directory / "__init__.py").touch()
    (GEN / "govhall" / "py.typed").touch()
    print(f"generated {len(sources)} files into {GEN.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
