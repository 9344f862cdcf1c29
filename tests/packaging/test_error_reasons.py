"""Every google.rpc.ErrorInfo reason the gateway can send is documented in the
protos, with its status code and metadata keys, and nothing else is: the
listed set is the contract clients match on, so it must not drift.

The reasons are read from the source (every `ErrorInfo(reason=...)`, and every
`PolicyDenied(...)`, whose reason is its second argument); the metadata keys
and codes from the errors themselves, built the way the gateway builds them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from gateway.admission import _budget_refused
from gateway.errors import (
    ERROR_DOMAIN,
    ContentBlocked,
    GatewayError,
    ModelRetired,
    PolicyDenied,
    ReservationExpired,
    TaskNotSupported,
)
from gateway.ledger import BudgetExhausted
from gateway.ledger.base import Period

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "gateway"
PROTOS = ROOT / "protos" / "titan" / "gateway" / "v1"
# The emulator plays Bedrock, and the client reads statuses: neither sends one.
NOT_SENDERS = ("emulator", "client")
ENTRY = re.compile(r"^([A-Z][A-Z_]+) \(([A-Z_]+)\)\. Metadata keys: ([a-z_, ]+)\.")


@dataclass(frozen=True)
class Documented:
    """One reason as the protos list it."""

    code: str
    metadata: frozenset[str]


def sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(SOURCE.rglob("*.py")):
        if path.relative_to(SOURCE).parts[0] not in NOT_SENDERS:
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _constant(node: ast.expr | None, where: str) -> str:
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        raise AssertionError(f"{where}: a reason or metadata key must be a string literal")
    return node.value


def emitted_reasons() -> dict[str, list[str]]:
    """Reason -> the places that send it."""
    found: dict[str, list[str]] = {}
    for path, tree in sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            keywords = {k.arg: k.value for k in node.keywords}
            if _name(node) == "ErrorInfo" and "reason" in keywords:
                reason = keywords["reason"]
                if ast.unparse(reason) == "self.reason" and path.name == "errors.py":
                    continue  # PolicyDenied's: read at its call sites below
                found.setdefault(_constant(reason, where), []).append(where)
            elif _name(node) == "PolicyDenied":
                given = node.args[1] if len(node.args) > 1 else keywords.get("reason")
                found.setdefault(_constant(given, where), []).append(where)
    return found


def documented_reasons() -> dict[str, Documented]:
    """The entries of every "ErrorInfo reasons." list in the protos' comments."""
    documented: dict[str, Documented] = {}
    for proto in sorted(PROTOS.glob("*.proto")):
        for entry in _reason_entries(proto.read_text(encoding="utf-8")):
            match = ENTRY.match(entry)
            assert match, f"{proto.name}: not a reason entry: {entry!r}"
            reason, code, keys = match.groups()
            assert reason not in documented, f"{reason} is documented twice"
            metadata = frozenset() if keys == "none" else frozenset(keys.split(", "))
            documented[reason] = Documented(code, metadata)
    return documented


def _reason_entries(text: str) -> list[str]:
    """Each "- REASON ..." item of the list, its continuation lines joined."""
    entries: list[str] = []
    inside = False
    for line in text.splitlines():
        comment = line.strip().removeprefix("//")
        if comment.startswith(" ErrorInfo reasons."):
            inside = True
        elif not inside:
            continue
        elif comment.startswith(" - "):
            entries.append(comment[3:])
        elif comment.startswith("   ") and entries:
            entries[-1] += " " + comment.strip()
        elif not comment.strip() or not line.strip().startswith("//"):
            inside = False  # the list ends with its paragraph
    return entries


def _budget_sample() -> GatewayError:
    return _budget_refused(BudgetExhausted("t", Period.DAY, 10, 0, None))


# One error per reason, built the way the gateway builds it.
SAMPLES: dict[str, GatewayError] = {
    "POLICY_DENIED": PolicyDenied("denied", "POLICY_DENIED", {"rule": "r"}),
    "MODERATION_BLOCKED": PolicyDenied(
        "blocked", "MODERATION_BLOCKED", {"category": "c", "field": "f"}
    ),
    "CONTENT_FILTERED": ContentBlocked("filtered"),
    "TASK_NOT_SUPPORTED": TaskNotSupported("m", "TEXT_IMAGE", ["n"]),
    "MODEL_RETIRED": ModelRetired("m", "2025-01-01", "n"),
    "BUDGET_EXHAUSTED": _budget_sample(),
    "RESERVATION_LOST": ReservationExpired("lost"),
}


def error_info(error: GatewayError) -> error_details_pb2.ErrorInfo:
    for packed in error.details():
        info = error_details_pb2.ErrorInfo()
        if packed.Unpack(info):
            return info
    raise AssertionError(f"{type(error).__name__} sends no ErrorInfo")


def test_the_scan_finds_the_reasons_known_to_be_sent() -> None:
    # A scan that silently found nothing would make the next test vacuous.
    assert {"POLICY_DENIED", "BUDGET_EXHAUSTED", "RESERVATION_LOST"} <= set(emitted_reasons())


def test_every_reason_sent_is_documented_and_every_documented_one_is_sent() -> None:
    emitted, documented = emitted_reasons(), documented_reasons()
    undocumented = {r: emitted[r] for r in sorted(set(emitted) - set(documented))}
    assert not undocumented, f"sent but not listed under 'ErrorInfo reasons.': {undocumented}"
    assert set(documented) <= set(emitted), (
        f"listed but never sent: {set(documented) - set(emitted)}"
    )


def test_every_reason_has_a_sample() -> None:
    assert set(SAMPLES) == set(emitted_reasons())


@pytest.mark.parametrize("reason", sorted(SAMPLES))
def test_code_and_metadata_keys_are_as_documented(reason: str) -> None:
    error, documented = SAMPLES[reason], documented_reasons()[reason]
    info = error_info(error)
    assert (info.reason, info.domain) == (reason, ERROR_DOMAIN)
    assert error.code == getattr(grpc.StatusCode, documented.code)
    assert set(info.metadata) == documented.metadata


def test_policy_denied_call_sites_send_the_documented_metadata_keys() -> None:
    # The samples above build PolicyDenied by hand; its real callers pass a
    # dict literal, read here.
    documented = documented_reasons()
    for path, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node) == "PolicyDenied":
                reason = _constant(node.args[1], f"{path}:{node.lineno}")
                metadata = node.args[2]
                assert isinstance(metadata, ast.Dict), f"{path}:{node.lineno}: not a dict literal"
                keys = {_constant(k, f"{path}:{node.lineno}") for k in metadata.keys if k}
                assert keys == documented[reason].metadata, f"{path}:{node.lineno}"
