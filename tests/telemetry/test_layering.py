"""STYLE rule 9: the gateway uses the OpenTelemetry API; one module installs the SDK."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

GATEWAY = Path(__file__).parents[2] / "gateway"
SDK_MODULE = GATEWAY / "telemetry" / "sdk.py"
SDK_PACKAGES = ("opentelemetry.sdk", "opentelemetry.exporter", "prometheus_client")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_sdk_module_imports_the_sdk_or_exporters() -> None:
    offenders = {
        str(path.relative_to(GATEWAY.parent)): sorted(
            name for name in _imports(path) if name.startswith(SDK_PACKAGES)
        )
        for path in GATEWAY.rglob("*.py")
        if path != SDK_MODULE
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_importing_the_telemetry_package_does_not_load_the_sdk() -> None:
    probe = "import sys, gateway.telemetry; print('opentelemetry.sdk' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=GATEWAY.parent,
        timeout=30,
    )
    assert result.stdout.strip() == "False"
