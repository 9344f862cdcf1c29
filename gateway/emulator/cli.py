"""Command line for running the emulator on its own (demos, manual testing, benchmarks)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from pydantic import ValidationError

from gateway.emulator.app import Emulator
from gateway.emulator.config import EmulatorConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway emulator",
        description="Local emulator of Amazon Bedrock image models (bedrock-runtime InvokeModel).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=8900, help="port to bind (0 = any free port)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated latency per call")
    parser.add_argument("--images-per-minute", type=int, default=None, help="throttling quota")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="fraction of calls to fail")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault decisions")
    parser.add_argument(
        "--input-block-term", action="append", default=[], help="term blocked on input (repeat)"
    )
    parser.add_argument(
        "--output-block-term", action="append", default=[], help="term blocked on output (repeat)"
    )
    parser.add_argument(
        "--input-image-block-term",
        action="append",
        default=[],
        help="Stability: prompt term reported as a flagged input image (repeat)",
    )
    parser.add_argument(
        "--inference-error-term",
        action="append",
        default=[],
        help="Stability: prompt term answered with an inference error (repeat)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        latency_ms=args.latency_ms,
        images_per_minute=args.images_per_minute,
        fault_rate=args.fault_rate,
        fault_seed=args.fault_seed,
        input_block_terms=tuple(args.input_block_term),
        output_block_terms=tuple(args.output_block_term),
        input_image_block_terms=tuple(args.input_image_block_term),
        inference_error_terms=tuple(args.inference_error_term),
    )


async def serve(config: EmulatorConfig, host: str, port: int) -> None:
    """Run until SIGINT or SIGTERM, then stop cleanly."""
    emulator = Emulator(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        url = await emulator.start(host, port)
        print(url, flush=True)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValidationError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve(config, args.host, args.port))
    except OSError as exc:
        print(f"emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
