"""Regenerate the Python messages, gRPC stubs and type stubs from protos/.

Run as ``python tools/genprotos.py`` (``make protos``). The output goes to
gen/ and is never edited by hand.

protovalidate's rules (``buf/validate/validate.proto``) come from the
installed ``protovalidate`` package, which ships the file's descriptor but
not its source: we lift the descriptor out of the package and hand it to
protoc as a descriptor set, so the schema is exactly the one the validator
at run time understands and nothing is fetched from the network.
"""

from __future__ import annotations

import ast
import os
import pathlib
import shutil
import sys

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


def _protoc(*args: str) -> None:
    well_known = str(pathlib.Path(grpc_tools.__file__).parent / "_proto")
    argv = ["protoc", f"-I{PROTOS}", f"-I{well_known}", f"--descriptor_set_in={VALIDATE_SET}"]
    if protoc.main([*argv, *args]) != 0:
        raise SystemExit(f"protoc failed: {' '.join(args)}")


def main() -> None:
    # protoc-gen-mypy lives beside the interpreter in the virtual environment.
    os.environ["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    write_validate_set()
    for generated in ("govhall", "buf"):
        shutil.rmtree(GEN / generated, ignore_errors=True)
    GEN.mkdir(exist_ok=True)
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
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
