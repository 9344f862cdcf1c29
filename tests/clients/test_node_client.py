"""The Node client in `clients/node`, written from `protos/` alone, against a
real `python -m gateway serve` on a free loopback port (tests/replicas/harness).

`e2e.mjs` runs its checks over grpc-js and over Connect-ES: a two-image
stream (Accepted, PNG bytes, Completed.cost_micros = the images' sum), the
usage delta, a google.rpc.BadRequest decoded from grpc-status-details-bin, and
a bad key. This test only starts the gateway and the script, bounded, and
reads its exit status and summary.

The script needs `npm ci` and the generated code (`make node-client`). Without
them the test skips, unless TITAN_REQUIRE_NODE_CLIENT=1 (CI) makes that a
failure: a CI that silently skipped would prove nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.auth import DEV_KEY
from tests.replicas.harness import REPO_ROOT, replicas

NODE_CLIENT = REPO_ROOT / "clients" / "node"
E2E_TIMEOUT_S = 45.0  # two clients x five checks; about 2 s on an idle machine
SUMMARY = "e2e: 10 passed, 0 failed (grpc-js, connect)"


def _node_or_skip() -> str:
    """The `node` executable, once the client is installed and generated."""
    node = shutil.which("node")
    missing = [
        what
        for what, there in (
            ("node on PATH", node is not None),
            ("clients/node/node_modules (npm ci)", (NODE_CLIENT / "node_modules").is_dir()),
            ("clients/node/gen (npm run generate)", (NODE_CLIENT / "gen").is_dir()),
        )
        if not there
    ]
    if missing:
        reason = f"Node client not set up, run `make node-client`; missing: {', '.join(missing)}"
        if os.environ.get("TITAN_REQUIRE_NODE_CLIENT") == "1":
            pytest.fail(f"TITAN_REQUIRE_NODE_CLIENT=1: {reason}")
        pytest.skip(reason)
    assert node is not None
    return node


async def _run_e2e(node: str, target: str) -> tuple[int, str]:
    """Exit status and output (stdout, then stderr) of `node e2e.mjs`, bounded."""
    process = await asyncio.create_subprocess_exec(
        node, "e2e.mjs", "--target", target, "--key", DEV_KEY,
        cwd=NODE_CLIENT, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), E2E_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"node e2e.mjs did not finish within {E2E_TIMEOUT_S:g}s")
    assert process.returncode is not None
    return process.returncode, (stdout + stderr).decode(errors="replace")


async def test_node_client_passes_every_check_over_grpc_js_and_connect(tmp_path: Path) -> None:
    node = _node_or_skip()
    async with replicas(1, {}, workdir=tmp_path) as gateway:
        code, output = await _run_e2e(node, gateway[0])
        logs = gateway.logs()
    assert code == 0, f"node e2e.mjs exited {code}:\n{output}\n{logs}"
    assert SUMMARY in output, output
    assert "FAIL" not in output, output
