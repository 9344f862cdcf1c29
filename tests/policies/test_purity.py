"""The policy package is pure: besides what tests/test_policies_interface.py
forbids, no telemetry, no clock, no randomness, no files, no network."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import policies

IMPURE = ("opentelemetry", "random", "secrets", "time", "os", "socket", "subprocess", "pathlib")
PACKAGE = Path(policies.__file__).parent


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_impure_imports(path: Path) -> None:
    assert [n for n in _imports(path) if n.split(".")[0] in IMPURE] == []


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_clock_reads(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for call in ("datetime.now(", "datetime.utcnow(", "date.today(", "open("):
        assert call not in text, f"{path.name} calls {call}"
