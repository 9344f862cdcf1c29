"""What the client commands print: RPC errors (once each, with a hint when
the gateway cannot be reached), `--json` lines, tables, money and times.

Money crosses the API as int micro-USD; people type and read USD.
`parse_usd` turns a typed amount into micro-USD exactly (or refuses it) and
`format_usd` prints micro-USD back, both via `policies.money`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.client import ClientError
from policies.money import format_usd, usd_to_micros

__all__ = [
    "format_usd",
    "json_line",
    "message_dict",
    "parse_usd",
    "print_json",
    "print_rpc_error",
    "print_table",
    "when",
]

INT64_MAX = 2**63 - 1


def print_rpc_error(err: ClientError, target: str | None = None) -> None:
    """One `error:` line on stderr, then each field violation once."""
    if target is not None and err.unreachable:
        print(
            f"error: cannot reach the gateway at {target} — is it running (make run)? "
            "Use --target HOST:PORT or TITAN_GW_TARGET to point elsewhere.",
            file=sys.stderr,
        )
        print(f"  ({err.code.name}: {err.message})", file=sys.stderr)
        return
    if err.violations:
        # The status message lists the same violations; say them once, below.
        joined = "; ".join(str(v) for v in err.violations)
        summary = err.message.replace(joined, "").rstrip(" :;") or "invalid request"
        print(f"error: {err.code.name}: {summary}:", file=sys.stderr)
        for violation in err.violations:
            print(f"  {violation}", file=sys.stderr)
        return
    print(f"error: {err.code.name}: {err.message}", file=sys.stderr)


def message_dict(message: Message) -> dict[str, Any]:
    """The message in the proto3 JSON mapping (lowerCamelCase names, enums by
    name, int64 as strings), with every field that has no presence, so a
    false `allowed` or a zero cost is there to read."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def json_line(value: Message | dict[str, Any]) -> str:
    """A message (or a message's dict) as one line of JSON."""
    data = message_dict(value) if isinstance(value, Message) else value
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def print_json(value: Message | dict[str, Any]) -> None:
    """One JSON object on one line of stdout."""
    print(json_line(value), flush=True)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> None:
    """Columns padded to their widest cell; trailing blanks trimmed."""
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(indent + "  ".join(cells).rstrip())


def when(stamp: Timestamp) -> str:
    """A timestamp as `2026-11-30T10:36:18Z`; `-` when unset."""
    if not (stamp.seconds or stamp.nanos):
        return "-"
    return stamp.ToDatetime().replace(microsecond=0).isoformat() + "Z"


def parse_usd(text: str) -> int:
    """Micro-USD for an amount of USD typed on the command line ("12.50",
    "$0.08", "100"): exact, or an ArgumentTypeError saying why not."""
    cleaned = text.strip().removeprefix("$")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of USD, e.g. 12.50") from None
    if not amount.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of USD")
    value: int | float
    if amount == amount.to_integral_value():
        value = int(amount)
    else:
        value = float(amount)
        if Decimal(str(value)) != amount:  # the float would not be what was typed
            raise argparse.ArgumentTypeError(
                f"{text} is not an exact amount; write at most 15 significant digits"
            )
    try:
        micros = usd_to_micros(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if micros > INT64_MAX:
        raise argparse.ArgumentTypeError(f"{text} USD is more than the API can carry")
    return micros
