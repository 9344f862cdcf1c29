"""The Grafana dashboard queries only series that /metrics really exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.telemetry.sdk import Telemetry
from tests.telemetry.support import record_one_of_each, scrape

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "titan-gateway.json"

_PROMQL_WORDS = frozenset(
    {
        *("sum", "min", "max", "avg", "count", "rate", "increase", "histogram_quantile"),
        *("sort_desc", "label_values", "by", "without", "on", "ignoring", "group_left"),
        *("group_right", "and", "or", "unless", "bool", "offset"),
    }
)
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MATCHERS = re.compile(r"\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*(\w+)\s*,\s*(\w+)\s*\)")


def _expressions(node: Any) -> Iterator[str]:
    """Every PromQL string in the dashboard: target `expr`s and variable queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            else:
                yield from _expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _expressions(item)


def _metrics_and_labels(expr: str) -> tuple[set[str], set[str]]:
    labels = {label for group in _MATCHERS.findall(expr) for label in _MATCHER_LABEL.findall(group)}
    for group in _GROUPING.findall(expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    metrics = set()
    for metric, label in _LABEL_VALUES.findall(expr):
        metrics.add(metric)
        labels.add(label)
    bare = _LABEL_VALUES.sub(" ", expr)
    for pattern in (r'"[^"]*"', _MATCHERS.pattern, r"\[[^\]]*\]", _GROUPING.pattern):
        bare = re.sub(pattern, " ", bare)
    metrics |= set(_IDENTIFIER.findall(bare)) - _PROMQL_WORDS
    return metrics, labels


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_every_query_uses_exported_metrics_and_their_labels(
    prometheus: Telemetry, dashboard: dict[str, Any]
) -> None:
    assert prometheus.prometheus_port
    record_one_of_each(prometheus.instruments)
    labels_by_metric: dict[str, set[str]] = {}
    for name, sample_labels, _ in scrape(prometheus.prometheus_port):
        labels_by_metric.setdefault(name, set()).update(sample_labels)

    expressions = list(_expressions(dashboard))
    assert len(expressions) >= 8
    for expr in expressions:
        metrics, labels = _metrics_and_labels(expr)
        assert metrics, expr
        for metric in metrics:
            assert metric in labels_by_metric, f"{metric} is not on /metrics: {expr}"
            missing = labels - labels_by_metric[metric]
            assert not missing, f"{metric} has no label {missing}: {expr}"


def test_the_asked_for_panels_are_there(dashboard: dict[str, Any]) -> None:
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {
        "Spend rate per tenant",
        "Images per model",
        "p95 request latency",
        "p95 time to first image",
        "Refusals by quota",
        "Moderation blocks",
        "Budget remaining per tenant",
    } <= titles


def test_every_panel_reads_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    queries = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in queries)
    assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in queries for t in p["targets"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
