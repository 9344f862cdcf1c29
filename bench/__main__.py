"""`python -m bench [NAME ...]`: run the benchmarks (all by default), each
printing a table against a baseline measured in the same run."""

from __future__ import annotations

import argparse
import importlib

BENCHES = ("streaming", "policy", "ledger", "faults", "provenance", "watermarks", "overhead")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # No `choices`: with nargs="*" argparse checks the default list against
    # them and refuses it (Python 3.11); names are checked below instead.
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHES))
    parser.add_argument("--seconds", type=float, default=3.0, help="time per cell")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    for name in args.names or BENCHES:
        print(f"\n## {name}\n")
        importlib.import_module(f"bench.{name}").run_bench(args.seconds)


if __name__ == "__main__":
    main()
