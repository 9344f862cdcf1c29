"""GuardrailChecker through the real aiobotocore client against the emulator."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from botocore.exceptions import ClientError

from gateway.backends.bedrock import BedrockBackend, BedrockConfig
from gateway.emulator import Emulator
from gateway.errors import BackendRejected, BackendTimeout, BackendUnavailable
from gateway.guardrail import GuardrailChecker, GuardrailVerdict
from policies import GuardrailRef
from tests.guardrail.conftest import BLOCKED_WORD, bedrock_client

GR1 = GuardrailRef(id="gr-1", version="1")
PROMPTS = {"text_to_image.text": "a calm lake at dawn", "text_to_image.negative_text": "blurry"}


async def test_clean_texts_pass(checker: GuardrailChecker, emulator: Emulator) -> None:
    verdict = await checker.check(GR1, PROMPTS, timeout=5)
    assert verdict == GuardrailVerdict(blocked=False)
    assert emulator.stats.guardrail_calls == 1


async def test_a_blocked_word_in_the_second_field_names_that_field(
    checker: GuardrailChecker,
) -> None:
    texts = {**PROMPTS, "text_to_image.negative_text": f"nothing {BLOCKED_WORD.upper()}-ish"}
    verdict = await checker.check(GR1, texts, timeout=5)
    assert verdict.blocked
    assert verdict.field == "text_to_image.negative_text"
    assert verdict.reason == "Guardrail blocked."
    assert BLOCKED_WORD not in verdict.reason.lower()


async def test_a_blocked_word_in_both_fields_names_the_first(checker: GuardrailChecker) -> None:
    texts = {"a": f"one {BLOCKED_WORD}", "b": f"two {BLOCKED_WORD}"}
    verdict = await checker.check(GR1, texts, timeout=5)
    assert (verdict.blocked, verdict.field) == (True, "a")


async def test_an_unknown_guardrail_is_failed_precondition(checker: GuardrailChecker) -> None:
    with pytest.raises(BackendRejected) as caught:
        await checker.check(GuardrailRef(id="gr-missing", version="7"), PROMPTS, timeout=5)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.message == "guardrail gr-missing version 7 not found"
    assert isinstance(caught.value.__cause__, ClientError)
    assert not caught.value.per_image
    assert not caught.value.retryable


async def test_the_emulator_saw_the_exact_request(
    checker: GuardrailChecker, emulator: Emulator
) -> None:
    await checker.check(GuardrailRef(id="gr-1", version="DRAFT"), PROMPTS, timeout=5)
    assert emulator.stats.guardrail_received == [
        (
            "gr-1",
            "DRAFT",
            {
                "source": "INPUT",
                "content": [
                    {"text": {"text": "a calm lake at dawn"}},
                    {"text": {"text": "blurry"}},
                ],
            },
        )
    ]
    assert emulator.stats.received == []  # no InvokeModel
    assert (emulator.stats.calls, emulator.stats.status_counts[200]) == (1, 1)


async def test_empty_texts_make_no_call(checker: GuardrailChecker, emulator: Emulator) -> None:
    verdict = await checker.check(GR1, {"a": "", "b": f"x {BLOCKED_WORD}"}, timeout=5)
    assert (verdict.blocked, verdict.field) == (True, "b")
    assert emulator.stats.guardrail_received[0][2]["content"] == [
        {"text": {"text": f"x {BLOCKED_WORD}"}}
    ]
    assert await checker.check(GR1, {"a": ""}, timeout=5) == GuardrailVerdict(blocked=False)
    assert emulator.stats.guardrail_calls == 1


async def test_a_slow_guardrail_is_a_timeout(checker: GuardrailChecker, emulator: Emulator) -> None:
    emulator.hold()
    with pytest.raises(BackendTimeout) as caught:
        await checker.check(GR1, PROMPTS, timeout=0.2)
    assert "guardrail gr-1 version 1" in caught.value.message
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_cancellation_propagates(checker: GuardrailChecker, emulator: Emulator) -> None:
    emulator.hold()
    task = asyncio.create_task(checker.check(GR1, PROMPTS, timeout=5))
    assert await emulator.wait_in_flight(1, timeout=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_unreachable_endpoint_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    async with bedrock_client(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(BackendUnavailable) as caught:
            await GuardrailChecker(client).check(GR1, PROMPTS, timeout=5)
    assert "cannot reach Bedrock" in caught.value.message


async def test_the_backends_shared_client_works(emulator: Emulator) -> None:
    backend = BedrockBackend(BedrockConfig(endpoint_url=emulator.url))
    assert backend.client is None
    with pytest.raises(ValueError, match="started"):
        GuardrailChecker(backend.client)
    async with backend:
        checker = GuardrailChecker(backend.client)
        verdict = await checker.check(GR1, {"prompt": BLOCKED_WORD}, timeout=5)
    assert (verdict.blocked, verdict.field) == (True, "prompt")
