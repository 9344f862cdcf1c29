"""The emulator's ApplyGuardrail on the wire: shapes, validation and errors."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gateway.emulator import Emulator
from gateway.emulator.guardrail import BLOCKED_MESSAGE
from tests.guardrail.conftest import BLOCKED_WORD

ZERO_USAGE = {
    "topicPolicyUnits": 0,
    "contentPolicyUnits": 0,
    "wordPolicyUnits": 0,
    "sensitiveInformationPolicyUnits": 0,
    "sensitiveInformationPolicyFreeUnits": 0,
    "contextualGroundingPolicyUnits": 0,
    "contentPolicyImageUnits": 0,
    "automatedReasoningPolicyUnits": 0,
    "automatedReasoningPolicies": 0,
}


def text_block(text: str) -> dict[str, Any]:
    return {"text": {"text": text}}


async def apply(client: Any, guardrail: str, *texts: str, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = await client.apply_guardrail(
        guardrailIdentifier=guardrail,
        guardrailVersion="1",
        source="INPUT",
        content=[text_block(t) for t in texts],
        **extra,
    )
    response.pop("ResponseMetadata")
    return response


async def test_no_match_through_botocore(client: Any) -> None:
    assert await apply(client, "gr-1", "hello") == {
        "action": "NONE",
        "outputs": [],
        "assessments": [{}],
        "usage": ZERO_USAGE,
    }


async def test_a_match_through_botocore(client: Any) -> None:
    got = await apply(client, "gr-1", "fine", f"A {BLOCKED_WORD.title()}!", outputScope="FULL")
    blocked = {"match": BLOCKED_WORD, "action": "BLOCKED", "detected": True}
    assert got == {
        "action": "GUARDRAIL_INTERVENED",
        "actionReason": "Guardrail blocked.",
        "outputs": [{"text": BLOCKED_MESSAGE}],
        "assessments": [{}, {"wordPolicy": {"customWords": [blocked]}}],
        "usage": ZERO_USAGE,
    }


async def test_unknown_guardrail_through_botocore(client: Any, emulator: Emulator) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        await apply(client, "gr-nope", "hello")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "gr-nope" in caught.value.response["Error"]["Message"]
    assert emulator.stats.status_counts[404] == 1


async def post(emulator: Emulator, path: str, body: Any) -> tuple[int, str, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(emulator.url + path, json=body) as response,
    ):
        return response.status, response.headers.get("x-amzn-ErrorType", ""), await response.json()


APPLY = "/guardrail/gr-1/version/1/apply"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"content": [text_block("x")]}, "source is required"),
        ({"source": "SIDEWAYS", "content": [text_block("x")]}, "source must be one of"),
        ({"source": "INPUT"}, "content is required"),
        ({"source": "INPUT", "content": []}, "non-empty list"),
        ({"source": "INPUT", "content": [{}]}, "exactly one of"),
        ({"source": "INPUT", "content": [{"text": {"text": 3}}]}, "content[0].text.text"),
        ({"source": "INPUT", "content": [text_block("x"), {"video": {}}]}, "got 'video'"),
        (
            {"source": "INPUT", "content": [{"text": {"text": "x", "qualifiers": ["nope"]}}]},
            "qualifiers",
        ),
        ({"source": "INPUT", "content": [{"image": {"format": "gif"}}]}, "png or jpeg"),
        ({"source": "INPUT", "content": [text_block("x")], "outputScope": "ALL"}, "outputScope"),
    ],
)
async def test_invalid_bodies_are_validation_errors(
    emulator: Emulator, body: dict[str, Any], needle: str
) -> None:
    status, error_type, payload = await post(emulator, APPLY, body)
    assert (status, error_type) == (400, "ValidationException")
    assert needle in payload["message"]
    assert emulator.stats.guardrail_calls == 1


async def test_unknown_guardrail_on_the_wire(emulator: Emulator) -> None:
    body = {"source": "INPUT", "content": [text_block("x")]}
    status, error_type, payload = await post(emulator, "/guardrail/gr-2/version/1/apply", body)
    assert (status, error_type) == (404, "ResourceNotFoundException")
    assert set(payload) == {"message"}


async def test_a_bad_version_is_a_validation_error(emulator: Emulator) -> None:
    body = {"source": "INPUT", "content": [text_block("x")]}
    status, error_type, _ = await post(emulator, "/guardrail/gr-1/version/v2/apply", body)
    assert (status, error_type) == (400, "ValidationException")


async def test_an_image_block_is_accepted_and_never_matches(emulator: Emulator) -> None:
    image = {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
    body = {"source": "OUTPUT", "content": [image, text_block(BLOCKED_WORD)]}
    status, _, payload = await post(emulator, APPLY, body)
    assert status == 200
    assert payload["action"] == "GUARDRAIL_INTERVENED"
    assert payload["assessments"][0] == {}


async def test_reset_forgets_guardrail_calls(client: Any, emulator: Emulator) -> None:
    await apply(client, "gr-1", "hello")
    emulator.stats.reset()
    assert (emulator.stats.guardrail_calls, emulator.stats.guardrail_received) == (0, [])
