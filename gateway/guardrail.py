"""Amazon Bedrock Guardrails on prompts: one ApplyGuardrail call per request.

A policy may name a guardrail (`policies.GuardrailRef`); `GuardrailChecker`
sends every text of a request to it as its own content block (source INPUT)
through the gateway's shared aiobotocore ``bedrock-runtime`` client, and says
whether Bedrock intervened and on which text. Empty texts are not sent (there
is nothing to screen); with no text left, no call is made.

Bedrock does not document how ``assessments`` line up with content blocks.
When there is one assessment per block the blocked field is the first block
whose assessment holds a BLOCKED action; otherwise it is the first text
containing a ``match`` Bedrock reported as BLOCKED; failing that, the first
text. An intervention whose only actions are masking (ANONYMIZED) does not
block: the gateway cannot forward the masked text, and the operator chose
masking over blocking. An intervention with no detail at all blocks.

`GuardrailVerdict.reason` is Bedrock's ``actionReason`` ("" when absent, or
when it would repeat a matched term); the matched words themselves are never
carried. Errors are mapped here, once, onto `gateway.errors`, with no retry:

    ResourceNotFoundException (404)        BackendRejected(FAILED_PRECONDITION)
    AccessDeniedException (403)            BackendRejected(FAILED_PRECONDITION)
    ValidationException (400)              BackendRejected(INVALID_ARGUMENT)
    ServiceQuotaExceededException (400)    BackendRejected(RESOURCE_EXHAUSTED)
    no AWS credentials                     BackendRejected(FAILED_PRECONDITION)
    ThrottlingException / InternalServer /
      ServiceUnavailable / other 5xx /
      connection errors / unknown errors /
      an unreadable response               BackendUnavailable
    `timeout` seconds pass                 BackendTimeout

These are not per-image failures in spirit: raise them before the fan-out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from gateway.errors import BackendRejected, BackendTimeout, BackendUnavailable, GatewayError
from policies import GuardrailRef

__all__ = ["GuardrailChecker", "GuardrailVerdict"]

_INTERVENED = "GUARDRAIL_INTERVENED"
_BLOCKED = "BLOCKED"
_NO_ACTION = "NONE"
_UNAVAILABLE_CODES = frozenset(
    {"ThrottlingException", "InternalServerException", "ServiceUnavailableException"}
)
# botocore wraps aiohttp's errors in ConnectionError (connect, TLS, proxy) or
# HTTPClientError (disconnects, read timeouts); aiohttp's own can still escape.
_TRANSPORT_ERRORS = (
    BotoConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ResponseParserError,
    aiohttp.ClientError,
)


@dataclass(frozen=True)
class GuardrailVerdict:
    """What the guardrail said about a request's texts."""

    blocked: bool
    field: str | None = None  # which text was blocked (the key of `texts`)
    reason: str = ""  # actionReason from Bedrock, never the matched word


class GuardrailChecker:
    """ApplyGuardrail over the gateway's shared bedrock-runtime client."""

    def __init__(self, client: Any) -> None:
        """`client`: an open aiobotocore bedrock-runtime client (`BedrockBackend.client`)."""
        if client is None:
            raise ValueError("GuardrailChecker needs a started bedrock-runtime client")
        self._client = client  # aiobotocore is untyped

    # Like Backend.generate_one, takes the caller's remaining deadline as a number.
    async def check(
        self,
        guardrail: GuardrailRef,
        texts: Mapping[str, str],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> GuardrailVerdict:
        """Screen `texts` (field name -> text) with `guardrail` within `timeout` seconds."""
        fields = [(name, text) for name, text in texts.items() if text]
        if not fields:
            return GuardrailVerdict(blocked=False)
        label = f"guardrail {guardrail.id} version {guardrail.version}"
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.apply_guardrail(
                    guardrailIdentifier=guardrail.id,
                    guardrailVersion=guardrail.version,
                    source="INPUT",
                    content=[{"text": {"text": text}} for _, text in fields],
                )
        except TimeoutError as exc:
            raise BackendTimeout(f"{label} did not answer within {timeout:g}s") from exc
        except ClientError as exc:
            raise _map_client_error(exc, label) from exc
        except _TRANSPORT_ERRORS as exc:
            raise BackendUnavailable(f"cannot reach Bedrock for {label}: {exc}") from exc
        except NoCredentialsError as exc:
            message = "the gateway found no AWS credentials (standard AWS credential chain)"
            raise BackendRejected(message, grpc.StatusCode.FAILED_PRECONDITION) from exc
        return _verdict(response, fields, label)


def _verdict(
    response: Mapping[str, Any], fields: Sequence[tuple[str, str]], label: str
) -> GuardrailVerdict:
    action = response.get("action")
    if action == _NO_ACTION:
        return GuardrailVerdict(blocked=False)
    if action != _INTERVENED:
        raise BackendUnavailable(f"{label} answered an unknown action {action!r}")
    raw = response.get("assessments")
    assessments = [a for a in raw if isinstance(a, Mapping)] if isinstance(raw, list) else []
    actions = [entry for a in assessments for entry in _actions(a)]
    blocked = [entry for entry in actions if entry["action"] == _BLOCKED]
    if actions and not blocked:
        return GuardrailVerdict(blocked=False)  # masking only (ANONYMIZED)
    matches = [m for entry in blocked if isinstance(m := entry.get("match"), str) and m]
    reason = response.get("actionReason")
    reason = reason if isinstance(reason, str) else ""
    if any(m.casefold() in reason.casefold() for m in matches):
        reason = ""
    return GuardrailVerdict(
        blocked=True, field=_blocked_field(assessments, fields, matches), reason=reason
    )


def _blocked_field(
    assessments: Sequence[Mapping[str, Any]],
    fields: Sequence[tuple[str, str]],
    matches: Sequence[str],
) -> str:
    """The field that tripped the guardrail, as well as the response tells."""
    if len(assessments) == len(fields):
        for (name, _), assessment in zip(fields, assessments, strict=True):
            if any(entry["action"] == _BLOCKED for entry in _actions(assessment)):
                return name
    for name, text in fields:
        folded = text.casefold()
        if any(m.casefold() in folded for m in matches):
            return name
    return fields[0][0]


def _actions(value: Any) -> Iterator[Mapping[str, Any]]:
    """Every finding with an action other than NONE, at any depth of an assessment."""
    if isinstance(value, Mapping):
        action = value.get("action")
        if isinstance(action, str) and action != _NO_ACTION:
            yield value
        for child in value.values():
            yield from _actions(child)
    elif isinstance(value, list):
        for child in value:
            yield from _actions(child)


def _map_client_error(exc: ClientError, label: str) -> GatewayError:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    message = str(exc.response.get("Error", {}).get("Message", "")) or code
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    if code == "ResourceNotFoundException":
        return BackendRejected(f"{label} not found", grpc.StatusCode.FAILED_PRECONDITION)
    if code in _UNAVAILABLE_CODES or status >= 500:
        return BackendUnavailable(f"{label}: {code or status}: {message}")
    if code == "AccessDeniedException":
        text = f"the gateway's AWS identity may not apply {label}: {message}"
        return BackendRejected(text, grpc.StatusCode.FAILED_PRECONDITION)
    if code == "ValidationException":
        return BackendRejected(
            f"{label} refused the request: {message}", grpc.StatusCode.INVALID_ARGUMENT
        )
    if code == "ServiceQuotaExceededException":
        return BackendRejected(f"{label}: {message}", grpc.StatusCode.RESOURCE_EXHAUSTED)
    return BackendUnavailable(f"unexpected Bedrock error from {label}: {code or status}: {message}")
