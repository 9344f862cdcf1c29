"""Structured logs: one JSON object per line, joined to the current trace.

Uses the OpenTelemetry API only, to read the current span. The formatter runs
in the thread that logs (a plain `StreamHandler`), which is what makes the
current span the right one; behind a `QueueHandler` it would not be.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final

from opentelemetry import trace

# Attributes every LogRecord has; anything else came in through `extra=`.
_RECORD_FIELDS: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}

_HANDLER_MARK: Final = "_titan_gateway_handler"
_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLogFormatter(logging.Formatter):
    """time, level, logger, message, the current span's ``trace_id`` and
    ``span_id`` (hex) when there is one, ``exception`` when there is one, and
    whatever the caller passed in ``extra=``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_trace_fields())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in entry:
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str, json_logs: bool) -> None:
    """Send the root logger to stderr at `level` (``"INFO"``, ``"debug"`` …),
    as JSON lines or as plain text. Calling it again replaces the handler it
    installed before and leaves other handlers alone."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter() if json_logs else logging.Formatter(_TEXT_FORMAT))
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper())


def _trace_fields() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }
