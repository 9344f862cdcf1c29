"""The Docker build context (.dockerignore applied) builds the wheel the
image is made of: the Dockerfile's `pip wheel --no-deps .`, run here offline
on a copy of exactly the files `docker build .` would send."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import PurePosixPath

import pytest

from tests.deploy.support import REPO, build_context, dockerignored, runtime_stage

STUBS = "titan/gateway/v1/image_service_pb2_grpc.py"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    context = tmp_path_factory.mktemp("context")
    for relative in build_context():
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    out = tmp_path_factory.mktemp("wheels")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    # --no-build-isolation: setuptools and grpcio-tools (the build requirements)
    # come from this venv, so no index is needed.
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--wheel-dir", str(out), str(context)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (built,) = out.glob("*.whl")
    return zipfile.ZipFile(built)


def test_the_context_leaves_the_checkout_out() -> None:
    for path in ("titan/gateway/v1/image_service_pb2.py", ".venv/bin/python", ".git/HEAD",
                 "tests/conftest.py", "gen/go/x.go", "gateway/__pycache__/server.cpython-311.pyc",
                 "Dockerfile", "deploy/kubernetes/deployment.yaml"):  # fmt: skip
        assert dockerignored(PurePosixPath(path)), path
    sent = {str(p) for p in build_context()}
    for path in ("pyproject.toml", "setup.py", "README.md", "gateway/server.py",
                 "policies/loader.py", "protos/titan/gateway/v1/image_service.proto"):  # fmt: skip
        assert path in sent, path


def test_the_wheel_built_from_the_context_carries_the_stubs(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert STUBS in names
    assert "gateway/server.py" in names
    assert "gateway/registry/models.yaml" in names
    assert any(n.startswith("gateway/ledger/migrations/") for n in names)
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = wheel.read(entry_points).decode()
    entry = runtime_stage().last("ENTRYPOINT").exec_form()[0]
    assert f"{entry} = gateway.__main__:main" in scripts
