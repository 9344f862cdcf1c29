"""The shipped artifacts: a wheel built from a clean copy of the tree (no `make gen`,
no `titan/` at its root) and a wheel built from the sdist both carry the generated
stubs and the package data, and the wheel, installed into a fresh venv, starts.

Offline on purpose. The builds are isolated, as `pip install .` does it, but pip may
use only the machine's local indexes (the file:// ones in its configuration, never a
remote index); without a local index they fall back to --no-build-isolation with
this venv's setuptools and grpcio-tools. The fresh venv gets the wheel plus exactly
the distributions its metadata requires, transitively, linked from this venv (the
versions `make install` resolved): nothing else, so an undeclared import fails here.
pip installs the wheel with --no-index and without --no-deps, and `pip check`
passes, so those requirements are what the wheel declares.
"""

from __future__ import annotations

import asyncio
import importlib.metadata as md
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.auth import DEV_KEY, bearer

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
DIST = "titan-image-gateway"
STUBS = [
    f"titan/gateway/v1/{name}{suffix}"
    for name in ("image_service", "tasks", "admin_service", "usage_service")
    for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
] + ["titan/__init__.py", "titan/gateway/__init__.py", "titan/gateway/v1/__init__.py"]
PACKAGE_DATA = [
    "gateway/registry/models.yaml",
    "gateway/ledger/migrations/sqlite/001_init.sql",
    "gateway/ledger/migrations/postgres/001_init.sql",
    "policies/examples/dev.yaml",
]


def run(
    cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, (
        f"{shlex.join(cmd)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus anything that would point Python or the gateway here."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "TITAN_GW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, **extra}


def copy_source_tree(dest: Path) -> Path:
    """What a clone of this work tree holds: tracked and untracked, not ignored files
    (so no `titan/`, `build/`, `.venv`)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=False,
    )  # fmt: skip
    if listed.returncode == 0:
        for rel in filter(None, listed.stdout.decode().split("\0")):
            src = ROOT / rel
            if src.is_file():  # deleted but still tracked files are skipped
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
    else:  # not a git checkout
        ignore = shutil.ignore_patterns(
            ".git", ".venv", ".tools", "titan", "build", "dist", "gen", "*.egg-info",
            "__pycache__", ".*_cache", ".hypothesis", "var", "out",
        )  # fmt: skip
        shutil.copytree(ROOT, dest, ignore=ignore, dirs_exist_ok=True)
    assert not (dest / "titan").exists()
    return dest


def local_pip_env() -> dict[str, str] | None:
    """pip's configuration narrowed to its local (file://) indexes and find-links,
    or None when the machine has no local index."""
    out = run([sys.executable, "-m", "pip", "config", "list"]).stdout
    indexes: list[str] = []
    links: list[str] = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        values = value.strip().strip("'\"").split()
        local = [v for v in values if v.startswith("file://") or v.startswith("/")]
        if key.endswith("index-url"):
            indexes += [v for v in local if v not in indexes]
        elif key.endswith("find-links"):
            links += [v for v in local if v not in links]
    if not indexes:
        return None
    env = clean_env(PIP_INDEX_URL=indexes[0], PIP_EXTRA_INDEX_URL=" ".join(indexes[1:]))
    env.pop("PIP_FIND_LINKS", None)
    if links:
        env["PIP_FIND_LINKS"] = " ".join(links)
    return env


def wheel_requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(name).decode())
    return meta.get_all("Requires-Dist") or []


def dependency_closure(requirements: list[str]) -> list[md.Distribution]:
    """The installed distributions (of this venv) that `requirements` need, transitively."""
    found: dict[str, md.Distribution] = {}
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        dist = md.distribution(req.name)
        assert req.specifier.contains(dist.version, prereleases=True), (req, dist.version)
        first = name not in found
        found[name] = dist
        # The base requirements once, then those of each extra asked for.
        for wanted in ([""] if first else []) + sorted(req.extras):
            todo += [(Requirement(r), wanted) for r in dist.requires or []]
    return list(found.values())


def link_distributions(dists: list[md.Distribution], site: Path) -> None:
    """Install `dists` into `site` by linking the files their RECORD lists."""
    for dist in dists:
        files = dist.files
        assert files, f"{dist.metadata['Name']} has no RECORD to install from"
        for rel in files:
            if rel.parts[0] == ".." or rel.suffix == ".pyc":
                continue  # console scripts of the dependency; bytecode
            target = site / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(Path(str(dist.locate_file(rel))).resolve())


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("packaging")
    src = copy_source_tree(tmp / "src")
    env = local_pip_env()
    isolation = [] if env is not None else ["--no-build-isolation"]
    env = env if env is not None else clean_env()
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation]

    run([*pip_wheel, "-w", str(tmp / "tree"), str(src)], env=env)
    sdist_dir = tmp / "sdist"
    build_sdist = f"from setuptools import build_meta; build_meta.build_sdist({str(sdist_dir)!r})"
    run([sys.executable, "-c", build_sdist], cwd=src, env=clean_env())
    (sdist,) = sdist_dir.glob("*.tar.gz")
    run([*pip_wheel, "-w", str(tmp / "from-sdist"), str(sdist)], env=env)
    (tree_wheel,) = (tmp / "tree").glob("*.whl")
    (sdist_wheel,) = (tmp / "from-sdist").glob("*.whl")
    return {"wheel": tree_wheel, "sdist": sdist, "sdist_wheel": sdist_wheel, "tmp": tmp}


def test_wheel_carries_stubs_and_package_data(artifacts: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(artifacts["wheel"]).namelist())
    missing = [n for n in STUBS + PACKAGE_DATA if n not in names]
    assert not missing, missing
    assert "gateway/__main__.py" in names
    # `titan` is exactly what protoc made of protos/titan/gateway/v1, nothing stale.
    protos = sorted((ROOT / "protos/titan/gateway/v1").glob("*.proto"))
    expected = {
        f"titan/gateway/v1/{p.stem}{suffix}"
        for p in protos
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
    } | {n for n in STUBS if n.endswith("__init__.py")}
    # The descriptor set keeps the protos' comments for server reflection.
    expected.add("titan/gateway/v1/descriptor_set.binpb")
    assert {n for n in names if n.startswith("titan/")} == expected


def test_sdist_carries_protos_and_builds_the_same_wheel(artifacts: dict[str, Path]) -> None:
    with tarfile.open(artifacts["sdist"]) as tf:
        members = {m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name}
    for proto in (ROOT / "protos").rglob("*.proto"):
        assert str(proto.relative_to(ROOT)) in members
    assert {"setup.py", "pyproject.toml", "MANIFEST.in", *PACKAGE_DATA} <= members
    assert not any(m.startswith("titan/") for m in members), "stubs belong to the build"
    tree = set(zipfile.ZipFile(artifacts["wheel"]).namelist())
    from_sdist = set(zipfile.ZipFile(artifacts["sdist_wheel"]).namelist())
    assert from_sdist == tree


async def test_installed_wheel_serves_and_stops_on_sigterm(
    artifacts: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(
        run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
        .stdout.strip()
    )  # fmt: skip
    wheel = artifacts["wheel"]
    link_distributions(dependency_closure(wheel_requirements(wheel)), site)
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    # --no-index and with dependencies: every requirement must already be there.
    run([*pip, "install", "--no-index", str(wheel)], env=clean_env())
    run([*pip, "check"], env=clean_env())

    # The code that runs is the wheel's, not this checkout's.
    where = run(
        [str(python), "-c", "import gateway, titan.gateway.v1.image_service_pb2 as m;"
         "print(gateway.__file__); print(m.__file__)"],
        cwd=tmp_path, env=clean_env(),
    ).stdout.split()  # fmt: skip
    assert all(Path(w).is_relative_to(site) for w in where), where

    data = tmp_path / "data"
    env = clean_env(TITAN_GW_LISTEN="127.0.0.1:0", TITAN_GW_DATA_DIR=str(data))
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            str(venv / "bin" / "titan-gateway"), "serve",
            stdout=asyncio.subprocess.PIPE, stderr=err, env=env, cwd=tmp_path,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        match = re.search(rb"Titan Image Gateway listening on (127\.0\.0\.1:\d+)", line)
        if match is None:
            proc.kill()
            await proc.wait()
            log = stderr.read_text(errors="replace")[-4000:]
            pytest.fail(f"no listening line: {line!r}\n{log}")
        address = match.group(1).decode()
        async with grpc.aio.insecure_channel(address, interceptors=bearer(DEV_KEY)) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
