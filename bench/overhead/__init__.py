"""Overhead benchmark: what the gateway itself costs per image, as ratios
against calling the backend directly, measured in the same run.

Three processes on loopback: the stand-in backend (`bench.standin`, answers
every InvokeModel at once with a prebuilt 21 KB or 1.39 MB PNG), the real
gateway (`python -m gateway serve`, backend=bedrock pointed at the stand-in,
telemetry on, SQLite ledger) and this one, the caller. Each process's CPU is
read from /proc, so the gateway's CPU per request is its own.

Rows, each cell bounded in time and in requests:
- image x route x concurrency (1/10/64, and 512 for the small image): req/s,
  p50/p99 latency until the caller holds the image bytes, added p50 against
  `direct` (the caller POSTs to the stand-in and decodes JSON and base64
  itself, as a client of Bedrock does), CPU per request of the gateway and
  the stand-in. Two gateway routes: a tenant with provenance off, and one
  with the default (required: every image watermarked and C2PA-signed).
- the same gateway route with worker processes (`workers.py`): the 21 KB
  image at c=10 and c=64 against `workers: 2` and `workers: 1`, both with a
  Redis limiter (the local Redis, a prefix of the run's own) and requests
  spread over 32 connections; CPU is the parent's plus its workers'.
- time to the first image of a 5-image request against a 1-image request.
- many streams: N streams at once against a stand-in that waits before each
  answer: time until all are admitted (their `accepted` event), how many
  were dropped, the gateway's memory per stream, and the p99 latency of a
  health Check meanwhile (the event loop's lag, seen from outside).

`python -m bench.overhead [--quick] [--streams 10000] [--profile]` prints the
tables, writes bench/results/overhead-<date>.json and .png (added p50 vs
concurrency). `--profile` attaches py-spy to the gateway for two cells.

The modules, each importing only those above it: `figures` (quantiles,
formatting), `processes` (the stand-in and gateway processes, /proc),
`callers` (one request per route), `rig` (processes + clients of a run),
`cells` (the measured cells, TTFI), `workers` (the worker-process rows),
`streams`, `profile` (py-spy),
`targets` (issue 12's limits), `plot` (the PNG), `report` (tables, JSON),
`run` (one run, start to end); the command line is here.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.overhead.report import print_all, write
from bench.overhead.run import RESULTS, run

__all__ = ["bench_main", "parse_args", "run_bench"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per cell")
    parser.add_argument("--quick", action="store_true", help="1 s cells, 500 streams, no c=512")
    parser.add_argument("--streams", type=int, default=2000, help="many-streams row (0: skip)")
    parser.add_argument("--stream-delay", type=float, default=30.0, help="stand-in wait, s")
    parser.add_argument("--admit-timeout", type=float, default=60.0, help="longest wait, s")
    parser.add_argument("--max-concurrency", type=int, default=512)
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway at c=10")
    parser.add_argument(
        "--keep-profiles", action="store_true", help="copy py-spy stacks to results/"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; no JSON or PNG")
    options = parser.parse_args(argv)
    if options.quick:
        options.seconds, options.streams, options.max_concurrency = (
            1.0,
            min(options.streams, 500),
            64,
        )
    return options


def bench_main(options: argparse.Namespace) -> None:
    result = asyncio.run(run(options))
    print_all(result)
    if not options.no_write:
        json_path, png_path = write(result, RESULTS)
        print(f"\nwrote {json_path} and {png_path} ({result['run_s']:.0f} s in all)")


def run_bench(seconds: float) -> None:
    """`python -m bench overhead`: the default rows with `seconds` per cell."""
    bench_main(parse_args(["--seconds", str(seconds)]))
