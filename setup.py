"""Build hook: compile the gRPC/protobuf stubs into every non-editable build.

The `titan.gateway.v1` package is generated from protos/titan/gateway/v1/*.proto and is
never committed. `make gen` writes it to the repository root for the editable dev
install; this hook writes it into the build directory of `pip install .`, `pip wheel .`
and `python -m build` (also when the wheel is built from the sdist, which ships protos/).
All project metadata lives in pyproject.toml; `grpcio-tools` is a build requirement there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTO_ROOT = ROOT / "protos"
PROTO_DIR = PROTO_ROOT / "titan" / "gateway" / "v1"
GENERATED_PACKAGES = ("titan", "titan.gateway", "titan.gateway.v1")


class BuildPyWithStubs(build_py):
    """`build_py` that also runs grpc_tools.protoc into build_lib."""

    def run(self) -> None:
        super().run()
        # Editable installs import `titan` from the repository root, where `make gen`
        # puts it; generating into their throw-away build_lib would do nothing useful.
        if not self.editable_mode:
            self.generate_stubs()

    def generated_files(self) -> list[Path]:
        out = Path(self.build_lib)
        files = [out.joinpath(*pkg.split("."), "__init__.py") for pkg in GENERATED_PACKAGES]
        for proto in sorted(PROTO_DIR.glob("*.proto")):
            for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
                files.append(out / "titan" / "gateway" / "v1" / f"{proto.stem}{suffix}")
        files.append(out / "titan" / "gateway" / "v1" / "descriptor_set.binpb")
        return files

    def generate_stubs(self) -> None:
        protos = sorted(PROTO_DIR.glob("*.proto"))
        if not protos:
            raise SystemExit(f"no .proto files under {PROTO_DIR}: cannot generate `titan`")
        out = Path(self.build_lib)
        # A stale tree (an earlier build, or a `titan/` picked up from elsewhere)
        # must not leak modules for protos that no longer exist.
        shutil.rmtree(out / "titan", ignore_errors=True)
        (out / "titan" / "gateway" / "v1").mkdir(parents=True, exist_ok=True)
        # Same invocation as the Makefile's `gen` target, relative to protos/.
        cmd = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            # With the protos' comments, for server reflection (gateway/reflection.py).
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={out}/titan/gateway/v1/descriptor_set.binpb",
            *(str(p) for p in protos),
        ]
        self.announce("generating gRPC stubs: " + " ".join(cmd), level=2)
        try:
            subprocess.run(cmd, check=True)
        except subprocess.CalledProcessError as exc:
            raise SystemExit(
                f"grpc_tools.protoc failed (exit {exc.returncode}); is grpcio-tools installed "
                "in the build environment? (it is in [build-system] requires)"
            ) from exc
        for pkg in GENERATED_PACKAGES:
            init = out.joinpath(*pkg.split("."), "__init__.py")
            init.parent.mkdir(parents=True, exist_ok=True)
            init.touch()
        missing = [str(f) for f in self.generated_files() if not f.is_file()]
        if missing:
            raise SystemExit(f"grpc_tools.protoc did not produce: {', '.join(missing)}")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:  # type: ignore[override]
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return outputs + [str(f) for f in self.generated_files()]


setup(cmdclass={"build_py": BuildPyWithStubs})
