"""`--profile`: py-spy attached to the gateway during the small and large
c=10 cells with provenance off, and its stacks summed up — by thread, by
package and function on top of the stack, and by the gateway's own
functions anywhere in the stack."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.overhead.callers import PLAIN
from bench.overhead.cells import IMAGES, run_cell
from bench.overhead.figures import today
from bench.overhead.rig import Bench

# The frames every stack starts with: not where the time goes.
_WRAPPERS = ("gateway/__main__.py", "gateway/cli/", "gateway/startup.py")


async def profile(bench: Bench, keep_in: Path | None) -> dict[str, Any]:
    """py-spy on the gateway during small and large c=10, provenance off;
    the raw stacks are copied into `keep_in` when it is given."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        return {"error": "py-spy is not installed (.venv/bin/pip install py-spy)"}
    seconds = max(5.0, bench.options.seconds * 2)
    return {image: await _profile(bench, spy, image, seconds, keep_in) for image in IMAGES}


async def _profile(
    bench: Bench, spy: str, image: str, seconds: float, keep_in: Path | None
) -> dict[str, Any]:
    await bench.configure(image=image, delay_s=0)
    raw = bench.tmp / f"profile-{image}.txt"
    args = [spy, "record", "--pid", str(bench.gateway.pid), "--duration", str(int(seconds) + 1)]
    args += ["--rate", "250", "--nonblocking", "--threads", "--format", "raw", "-o", str(raw)]
    spy_run = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    await asyncio.sleep(1.0)  # py-spy attaches
    one = bench.caller(PLAIN)
    cell = await run_cell(image, PLAIN, 10, seconds, one, bench.gateway, bench.standin)
    output, _ = await spy_run.communicate()
    if not raw.exists():
        return {"error": output.decode(errors="replace")[-600:]}
    if keep_in is not None:
        _keep(raw, keep_in / f"profile-{today()}-{image}-c10.txt")
    return summarize_profile(raw.read_text()) | {"req_s": cell.rate}


def _keep(raw: Path, copy: Path) -> None:
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(raw, copy)


def summarize_profile(raw: str, top: int = 15) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks -> % of busy samples per thread, per
    package and per function on top of the stack (self), and the gateway's
    own functions anywhere in the stack (inclusive). Time in C code (grpc's
    Cython core, zlib, SQLite) counts against the Python frame that called it."""
    threads: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        total += count
        threads[frames[0].partition(": ")[2] or frames[0]] += count
        leaf = frames[-1] if len(frames) > 1 else "(idle) (?)"
        packages[_package(leaf)] += count
        own[_function(leaf)] += count
        for name in {_function(f) for f in frames[1:] if _ours(f)}:
            inclusive[name] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, 100 * n / max(1, total)) for name, n in counter.most_common(top)]

    return {"samples": total, "threads": share(threads), "packages": share(packages),
            "self": share(own), "inclusive_gateway": share(inclusive)}  # fmt: skip


def _function(frame: str) -> str:
    """ "decode (json/decoder.py:337)" -> "decode (json/decoder.py)"."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rstrip(')').rpartition(':')[0] or where.rstrip(')')})"


def _package(frame: str) -> str:
    """ "decode (json/decoder.py:337)" -> "json"; "<frozen runpy>" -> "runpy"."""
    where = frame.partition(" (")[2].rstrip(")").lstrip("<").removeprefix("frozen ")
    return where.split("/")[0].split(":")[0].removesuffix(".py").rstrip(">") or "?"


def _ours(frame: str) -> bool:
    where = frame.partition(" (")[2]
    return where.startswith(("gateway/", "policies/")) and not where.startswith(_WRAPPERS)
