"""Ending an RPC with a gateway error: the one place every servicer uses.

`abort` logs the refusal, marks it on the current span (`titan.refusal`: the
reason the API gives, see `refusal_reason`) and ends the call with the
error's status and google.rpc details. `answer` awaits a servicer's work
and turns the errors callers should see into statuses: the gateway's own, and
a ledger outage (the ledger knows nothing of gRPC) as UNAVAILABLE.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, NoReturn, TypeVar

from google.rpc import error_details_pb2
from opentelemetry import trace

from gateway.errors import GatewayError, StoreUnavailable, to_rpc_status
from gateway.ledger import LedgerUnavailable
from gateway.observe import REFUSAL

log = logging.getLogger(__name__)
T = TypeVar("T")


def refusal_reason(error: GatewayError) -> str:
    """The reason a client reads from the status: the google.rpc.ErrorInfo
    reason when the error carries one (POLICY_DENIED, MODERATION_BLOCKED,
    BUDGET_EXHAUSTED, CONTENT_FILTERED, TASK_NOT_SUPPORTED, MODEL_RETIRED,
    RESERVATION_LOST), else the status name (INVALID_ARGUMENT,
    RESOURCE_EXHAUSTED …). Read from the details sent, so it cannot drift."""
    for detail in error.details():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.reason:
                return str(info.reason)
    return str(error.code.name)


def as_gateway_error(exc: GatewayError | LedgerUnavailable) -> GatewayError:
    if isinstance(exc, LedgerUnavailable):
        return StoreUnavailable(f"the usage ledger is unavailable: {exc}")
    return exc


async def abort(context: Any, error: GatewayError) -> NoReturn:
    """End the RPC with `error`'s status (and its google.rpc details)."""
    log.info("request refused: %s %s", error.code.name, error.message)
    span = trace.get_current_span()
    span.set_attribute(REFUSAL, refusal_reason(error))
    span.add_event("refused", {"grpc.status": error.code.name, "message": error.message})
    await context.abort_with_status(to_rpc_status(error))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


async def answer(context: Any, work: Awaitable[T]) -> T:
    """Await `work`; end the RPC with the status of a gateway or ledger error."""
    try:
        return await work
    except (GatewayError, LedgerUnavailable) as exc:
        await abort(context, as_gateway_error(exc))
