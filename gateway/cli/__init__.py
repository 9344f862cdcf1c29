"""Command line: `serve`, `emulator`, and client commands for every task.

python -m gateway serve [--config FILE]
python -m gateway emulator [--port 8900 …]
python -m gateway generate "a red fox in snow, studio light" -n 4 --out out/
python -m gateway inpaint --image in.png --mask-prompt "the cup" "a glass of water"
python -m gateway upscale --mode fast --image small.png --format webp
python -m gateway models
python -m gateway estimate generate "a red fox" -n 4
python -m gateway usage
python -m gateway detect picture.jpg
python -m gateway admin budget top-up dev day 25
python -m gateway --help
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from google.protobuf import json_format

from gateway.cli import client, tasks
from gateway.cli.admin import add_admin_command
from gateway.cli.client import add_client_commands, run_client_command
from gateway.cli.ops import add_estimate_command, add_usage_command
from gateway.cli.policy import add_policy_command, run_policy_command
from gateway.cli.provenance import add_detect_command
from gateway.cli.tasks import add_models_command, add_task_commands, run_models_command

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "emulator":
        from gateway.emulator.cli import main as emulator_main

        return emulator_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "serve":
        return _serve(args)
    if args.command == "policy":
        return _policy(args)
    if args.command == "models":
        return run_models_command(args)
    if hasattr(args, "run"):
        code: int = args.run(args)
        return code
    return run_client_command(args)


def _policy(args: argparse.Namespace) -> int:
    """`policy …`; a --request file that cannot be read or is not a
    GenerateImagesRequest in JSON is one `error:` line, exit 2."""
    try:
        return run_policy_command(args)
    except json_format.ParseError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "not JSON"
        message = f"{args.request} is not a GenerateImagesRequest in JSON: {reason}"
        print(f"error: {message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, help="YAML settings file (env TITAN_GW_CONFIG)")
    serve.add_argument("--log-level", default="INFO")
    serve.add_argument(
        "--verbose", action="store_true", help="also print spans and metrics to the console"
    )
    sub.add_parser("emulator", help="run the Bedrock emulator standalone", add_help=False)
    add_client_commands(sub)
    add_task_commands(sub)
    add_models_command(sub)
    add_estimate_command(sub, [*client.COMMANDS, *tasks.COMMANDS])
    add_usage_command(sub)
    add_detect_command(sub)
    add_admin_command(sub)
    add_policy_command(sub)
    return parser


def _serve(args: argparse.Namespace) -> int:
    """Serve; a configuration problem is one `error:` line each on stderr, exit 2."""
    import os

    from gateway.startup import run

    config = args.config or (Path(p) if (p := os.environ.get("TITAN_GW_CONFIG")) else None)
    return run(config, log_level=args.log_level, verbose=args.verbose)
