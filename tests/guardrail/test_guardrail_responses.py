"""How GuardrailChecker reads responses and errors it cannot get from the emulator:
Bedrock's aggregate assessments, masking-only interventions, error codes."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from botocore.exceptions import ClientError

from gateway.errors import BackendRejected, BackendUnavailable, GatewayError
from gateway.guardrail import GuardrailChecker, GuardrailVerdict
from policies import GuardrailRef

GR = GuardrailRef(id="gr-9", version="2")
TEXTS = {"prompt": "a quiet harbour", "negative": "no badword here", "extra": "also fine"}


class FakeClient:
    """Answers apply_guardrail with a canned response or error; records the call."""

    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    async def apply_guardrail(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def check(answer: dict[str, Any] | Exception) -> GuardrailVerdict:
    return await GuardrailChecker(FakeClient(answer)).check(GR, TEXTS, timeout=5)


def intervened(*assessments: dict[str, Any], reason: str = "Guardrail blocked.") -> dict[str, Any]:
    return {
        "action": "GUARDRAIL_INTERVENED",
        "actionReason": reason,
        "assessments": list(assessments),
    }


def words(*matches: str, action: str = "BLOCKED") -> dict[str, Any]:
    return {
        "wordPolicy": {
            "customWords": [{"match": m, "action": action, "detected": True} for m in matches]
        }
    }


async def test_one_call_with_every_text_as_a_block() -> None:
    client = FakeClient({"action": "NONE", "assessments": []})
    await GuardrailChecker(client).check(GR, TEXTS, timeout=5)
    assert client.calls == [
        {
            "guardrailIdentifier": "gr-9",
            "guardrailVersion": "2",
            "source": "INPUT",
            "content": [{"text": {"text": t}} for t in TEXTS.values()],
        }
    ]


async def test_an_aggregate_assessment_is_attributed_by_its_match() -> None:
    verdict = await check(intervened(words("BadWord")))
    assert verdict == GuardrailVerdict(blocked=True, field="negative", reason="Guardrail blocked.")


async def test_a_reason_repeating_the_match_is_dropped() -> None:
    verdict = await check(intervened(words("badword"), reason="matched BADWORD"))
    assert verdict == GuardrailVerdict(blocked=True, field="negative", reason="")


async def test_a_per_block_content_filter_names_its_block() -> None:
    hate = {
        "contentPolicy": {"filters": [{"type": "HATE", "confidence": "HIGH", "action": "BLOCKED"}]}
    }
    verdict = await check(intervened({}, {}, hate))
    assert (verdict.blocked, verdict.field) == (True, "extra")


async def test_an_intervention_without_detail_blocks_the_first_field() -> None:
    verdict = await check({"action": "GUARDRAIL_INTERVENED", "assessments": []})
    assert verdict == GuardrailVerdict(blocked=True, field="prompt", reason="")


async def test_masking_only_does_not_block() -> None:
    pii = {
        "sensitiveInformationPolicy": {
            "piiEntities": [{"match": "x", "type": "NAME", "action": "ANONYMIZED"}]
        }
    }
    assert await check(intervened(pii)) == GuardrailVerdict(blocked=False)


async def test_detect_mode_findings_do_not_block() -> None:
    verdict = await check({"action": "NONE", "assessments": [words("badword", action="NONE")]})
    assert verdict == GuardrailVerdict(blocked=False)


async def test_an_unknown_action_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="unknown action"):
        await check({"action": "SOMETHING_NEW"})


def client_error(code: str, status: int) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": f"{code} message"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "ApplyGuardrail")


@pytest.mark.parametrize(
    ("code", "status", "error", "grpc_code"),
    [
        ("ResourceNotFoundException", 404, BackendRejected, grpc.StatusCode.FAILED_PRECONDITION),
        ("AccessDeniedException", 403, BackendRejected, grpc.StatusCode.FAILED_PRECONDITION),
        ("ValidationException", 400, BackendRejected, grpc.StatusCode.INVALID_ARGUMENT),
        ("ServiceQuotaExceededException", 400, BackendRejected, grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("ThrottlingException", 429, BackendUnavailable, grpc.StatusCode.UNAVAILABLE),
        ("InternalServerException", 500, BackendUnavailable, grpc.StatusCode.UNAVAILABLE),
        ("ServiceUnavailableException", 503, BackendUnavailable, grpc.StatusCode.UNAVAILABLE),
        ("SomethingOdd", 502, BackendUnavailable, grpc.StatusCode.UNAVAILABLE),
        ("SomethingOdd", 418, BackendUnavailable, grpc.StatusCode.UNAVAILABLE),
    ],
)
async def test_errors_map_onto_the_gateway_tree(
    code: str, status: int, error: type[GatewayError], grpc_code: grpc.StatusCode
) -> None:
    raised = client_error(code, status)
    with pytest.raises(error) as caught:
        await check(raised)
    assert caught.value.code == grpc_code
    assert caught.value.__cause__ is raised
    assert "guardrail gr-9 version 2" in caught.value.message
