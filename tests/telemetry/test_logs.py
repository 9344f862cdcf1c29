"""JSON log lines, joined to the current span."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace

from gateway.telemetry import JsonLogFormatter, configure_logging
from gateway.telemetry.sdk import Telemetry


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("tests.telemetry.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_inside_a_span_carries_its_ids(
    in_memory: Telemetry, log: tuple[logging.Logger, io.StringIO]
) -> None:
    logger, stream = log
    with in_memory.tracer.start_as_current_span("Generate") as span:
        logger.info("settled %d images", 3, extra={"tenant": "acme"})
    context = span.get_span_context()

    [line] = _lines(stream)
    assert line["message"] == "settled 3 images"
    assert line["level"] == "INFO"
    assert line["logger"] == "tests.telemetry.json"
    assert line["trace_id"] == trace.format_trace_id(context.trace_id)
    assert line["span_id"] == trace.format_span_id(context.span_id)
    assert line["tenant"] == "acme"
    assert line["time"].endswith("+00:00")


def test_a_line_outside_a_span_has_no_ids_and_keeps_the_traceback(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = log
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("unexpected")

    [line] = _lines(stream)
    assert "trace_id" not in line
    assert "span_id" not in line
    assert "RuntimeError: boom" in line["exception"]


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_replaces_only_its_own_handler(root_logger: logging.Logger) -> None:
    before = list(root_logger.handlers)

    configure_logging("info", json_logs=False)
    configure_logging("debug", json_logs=True)

    added = [h for h in root_logger.handlers if h not in before]
    assert len(added) == 1
    assert isinstance(added[0].formatter, JsonLogFormatter)
    assert root_logger.level == logging.DEBUG
