"""One run, start to end: the stand-in chosen, then the cells, TTFI and
profile against one gateway, the worker-process rows against gateways of
their own, and the many-streams row against a fresh one (memory the cells
freed would hide the streams' own), then the machine."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench.overhead.callers import http_session
from bench.overhead.cells import cell_dict, cells, standin_choice, ttfi
from bench.overhead.floor import floor_cells
from bench.overhead.processes import start_standin
from bench.overhead.profile import profile
from bench.overhead.rig import Bench, with_gateway
from bench.overhead.streams import stream_rows
from bench.overhead.workers import worker_cells, worker_streams

RESULTS = Path(__file__).resolve().parents[1] / "results"


async def run(options: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as name:
        tmp = Path(name)
        choice = await standin_choice(tmp, min(options.seconds, 2.0))
        standin = await start_standin(tmp)
        try:
            async with http_session() as session:
                result = await with_gateway(tmp, standin, session, options, rows)
                result["cells"] += [
                    cell_dict(c) for c in await worker_cells(tmp, standin, session, options)
                ]
                result["cells"] += [
                    cell_dict(c) for c in await floor_cells(tmp, standin, session, options)
                ]
                if options.streams:
                    result |= await with_gateway(tmp, standin, session, options, stream_rows)
                    two = await worker_streams(tmp, standin, session, options)
                    if two is not None:
                        result["streams_2_workers"] = two
        finally:
            await standin.stop()
    result["standin_choice"] = [cell_dict(c) for c in choice]
    result["machine"] = machine()
    result["settings"] = dict(vars(options))
    result["run_s"] = time.perf_counter() - started
    return result


async def rows(bench: Bench) -> dict[str, Any]:
    """The cells, TTFI and (with --profile) the py-spy summaries."""
    result: dict[str, Any] = {"cells": [cell_dict(c) for c in await cells(bench)]}
    result["ttfi"] = await ttfi(bench, bench.options.seconds, 0.1)
    if bench.options.profile:
        result["profile"] = await profile(bench, RESULTS if bench.options.keep_profiles else None)
    return result


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_avg_at_end": os.getloadavg(),
    }
