"""`python -m bench [NAME ...]`: run the benchmarks (all by default), each
printing a table against a baseline measured in the same run."""

from __future__ import annotations

import argparse
import importlib

BENCHES = ("streaming", "policy", "ledger")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHES, []], default=list(BENCHES))
    parser.add_argument("--seconds", type=float, default=3.0, help="time per cell")
    args = parser.parse_args()
    for name in args.names or BENCHES:
        print(f"\n## {name}\n")
        importlib.import_module(f"bench.{name}").run_bench(args.seconds)


if __name__ == "__main__":
    main()
