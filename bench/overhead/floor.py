"""The floor rows: what a Python gRPC gateway on aiobotocore costs before it
does any of the gateway's own work. Three bare servers (`bench.floor`) answer
GenerateImages with the same three events the gateway sends: with no backend
call (gRPC streaming alone), with one plain aiohttp POST to the stand-in, and
with aiobotocore's signed `invoke_model`. Measured like the gateway's cells
(same caller, image and concurrency, CPU from /proc), so

    gateway CPU = gRPC floor + HTTP call + aiobotocore's own work
                  + the gateway's own (auth, policy, ledger, telemetry, ...)

and each term is one row's difference from the row before it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import aiohttp
import grpc

from bench.overhead.callers import CHANNEL_OPTIONS, gateway_caller, stub
from bench.overhead.cells import Cell, run_cell
from bench.overhead.processes import Process, gateway_env, spawn
from bench.overhead.rig import configure_standin

BACKENDS = {
    "none": "floor: gRPC only",
    "http": "floor: + aiohttp call",
    "sdk": "floor: + aiobotocore call",
}
LEVELS = {"small": (1, 10), "large": (1, 10)}


def floor_routes() -> list[str]:
    return list(BACKENDS.values())


async def floor_cells(
    tmp: Path, standin: Process, session: aiohttp.ClientSession, options: argparse.Namespace
) -> list[Cell]:
    cells = []
    for image, levels in LEVELS.items():
        await configure_standin(session, standin, image=image, delay_s=0)
        for backend, route in BACKENDS.items():
            server = await _start(tmp, standin, backend)
            try:
                async with grpc.aio.insecure_channel(
                    server.address, options=CHANNEL_OPTIONS
                ) as channel:
                    one = gateway_caller(stub(channel), "off")
                    for conc in levels:
                        cell = await run_cell(
                            image, route, conc, options.seconds, one, server, standin
                        )
                        cells.append(cell)
                        print(f"  {image} {route} c={conc}: {cell.rate:.0f} req/s",
                              file=sys.stderr)  # fmt: skip
            finally:
                await server.stop()
    return cells


async def _start(tmp: Path, standin: Process, backend: str) -> Process:
    args = [sys.executable, "-m", "bench.floor", "--standin", standin.address]
    args += ["--backend", backend]
    env = gateway_env(tmp, standin.address)  # the gateway's: dummy AWS keys, no IMDS
    return await spawn(args, env, tmp / f"floor-{backend}.out", "floor listening")
