"""Generate the Python code of the wire contract.

Usage: python tools/genproto.py [OUTPUT_ROOT]

Writes gatekeeper/api/v1/gatekeeper_pb2{.py,.pyi,_grpc.py,_grpc.pyi} below OUTPUT_ROOT
(default: the repository root) with the pinned grpcio-tools and mypy-protobuf.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTO = "gatekeeper/api/v1/gatekeeper.proto"


def generate(out_root: Path) -> list[Path]:
    """Run protoc and return the generated files."""
    include = Path(grpc_tools.__file__).parent / "_proto"
    plugins = str(Path(sys.executable).parent)
    out_root.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{ROOT / 'protos'}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={shutil.which('protoc-gen-mypy', path=plugins)}",
        f"--plugin=protoc-gen-mypy_grpc={shutil.which('protoc-gen-mypy_grpc', path=plugins)}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        str(ROOT / "protos" / PROTO),
    ]
    subprocess.run(cmd, check=True)
    stem = out_root / "gatekeeper" / "api" / "v1" / "gatekeeper_pb2"
    return [Path(f"{stem}{suffix}") for suffix in (".py", ".pyi", "_grpc.py", "_grpc.pyi")]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    for path in generate(target):
        print(path.relative_to(target))
