"""`python -m gateway policy …` as ops use it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from policies import hash_key, load_policy

EXAMPLES = sorted(Path("policies/examples").glob("*.yaml"))
BROKEN = sorted(Path("tests/policies/broken").glob("*.yaml"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "policy", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_every_shipped_example_passes_check() -> None:
    assert EXAMPLES
    result = run("check", *map(str, EXAMPLES))
    assert result.returncode == 0, result.stderr
    for path in EXAMPLES:
        assert f"{path}: ok" in result.stdout


def test_check_lists_every_broken_file_with_its_field_and_line() -> None:
    result = run("check", *map(str, BROKEN))
    assert result.returncode == 1
    for path in BROKEN:
        assert f"{path}:" in result.stderr, f"nothing reported for {path}"
    expected = (
        "tests/policies/broken/undeclared-cel-name.yaml:rules[2].when: "
        "undeclared reference to 'request.widht' (line 14)"
    )
    assert expected in result.stderr


def test_explain_shows_the_rules_rewrites_and_price(tmp_path: Path) -> None:
    request = {
        "modelId": "amazon.nova-canvas-v1:0",
        "textToImage": {"text": "a lighthouse"},
        "config": {
            "numberOfImages": 5,
            "width": 1408,
            "height": 1408,
            "quality": "QUALITY_PREMIUM",
        },
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    policy = Path("policies/examples/saas-tiers.yaml")
    free = next(t for t in load_policy(policy.read_text()).tenants.values() if t.tier == "free")
    result = run("explain", str(policy), "--tenant", free.id, "--request", str(path))
    assert result.returncode == 0, result.stderr
    assert "quality" in result.stdout
    assert "$" in result.stdout


def test_explain_refuses_an_unknown_tenant(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"textToImage": {"text": "a"}}), encoding="utf-8")
    result = run(
        "explain", "policies/examples/minimal.yaml", "--tenant", "nobody", "--request", str(path)
    )
    assert result.returncode == 1
    assert "no tenant 'nobody'" in result.stderr


def test_hash_key_prints_a_new_key_and_its_hash_line() -> None:
    result = run("hash-key")
    assert result.returncode == 0
    key = result.stdout.split()[1]
    assert key.startswith("tgw_")
    assert len(key) > 40
    assert f'"{hash_key(key)}"' in result.stdout
    assert run("hash-key").stdout.split()[1] != key


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_load_in_process(path: Path) -> None:
    assert load_policy(path.read_text(encoding="utf-8"), source=str(path)).tenants


def test_the_readme_explain_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """The request JSON and the output in README's `policy explain` example."""
    readme = Path("README.md").read_text(encoding="utf-8")
    section = readme[readme.index("`policy explain` dry-runs a request") :]
    request = section.split("<<'JSON'\n", 1)[1].split("\nJSON\n", 1)[0]
    shown = section.split("```\n\n```\n", 1)[1].split("```", 1)[0]  # the block after the command
    path = tmp_path / "request.json"
    path.write_text(request, encoding="utf-8")
    result = run("explain", "policies/examples/agency.yaml", "--tenant", "acme", "--request",
                 str(path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown
