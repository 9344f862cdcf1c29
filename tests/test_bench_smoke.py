"""`make bench` keeps working: the benches that need nothing but this
process run end to end at a tiny time per cell (a renamed attribute once
broke `python -m bench streaming` for a whole round without any test noticing)."""

from __future__ import annotations

import importlib
import subprocess
import sys

from bench.__main__ import BENCHES


def test_every_bench_has_an_entry_point() -> None:
    for name in BENCHES:
        assert callable(importlib.import_module(f"bench.{name}").run_bench), name


def test_the_streaming_and_policy_benches_run_and_print_their_tables() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "streaming", "policy", "--seconds", "0.2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "## streaming" in result.stdout
    assert "| gateway, telemetry on " in result.stdout
    assert "## policy" in result.stdout
