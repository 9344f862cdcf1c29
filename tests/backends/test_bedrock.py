"""BedrockBackend against a scripted Bedrock server: retries, backoff, error
mapping, deadlines, cancellation, the wire body and credentials."""

from __future__ import annotations

import asyncio
import base64
import random
import socket

import grpc
import pytest

from gateway.backends.bedrock import BedrockBackend, BedrockConfig, backoff_delay
from gateway.dialects import GeneratedImage, build_body
from gateway.domain import EraseObject, ImageJob, Inpainting
from gateway.errors import (
    BackendError,
    BackendRejected,
    BackendThrottled,
    BackendTimeout,
    BackendUnavailable,
    ContentBlocked,
    GatewayError,
    ImageFiltered,
)
from tests.backends.conftest import MakeBackend
from tests.backends.support import (
    NOVA,
    PNG,
    PNG_B64,
    Reply,
    ScriptedBedrock,
    error_reply,
    input_image,
    make_job,
    png_bytes,
    registered,
)

THROTTLED = error_reply(429, "ThrottlingException", "Too many requests, please wait.")
CONTENT_FILTER = (
    "This request has been blocked by our content filters. "
    "Please adjust your text prompt to submit a new request."
)
OUTPUT_FILTER = "All of the generated images have been blocked by our content filters."
ERASE = "stability.stable-image-erase-object-v1:0"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class MaxRandom(random.Random):
    """Full jitter always picks the ceiling: the longest possible backoff."""

    def uniform(self, a: float, b: float) -> float:
        return b


async def test_throttled_twice_then_image(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    server.answer(THROTTLED, THROTTLED, Reply())
    backend = await make_backend()

    assert await backend.generate_one(job, 0, timeout=5) == GeneratedImage(PNG)
    assert (len(server.seen), backend.retries, backend.throttles) == (3, 2, 2)


async def test_always_throttled_gives_up_after_max_attempts(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    server.answer(THROTTLED)
    backend = await make_backend(max_attempts=3)

    with pytest.raises(BackendThrottled, match="Too many requests") as caught:
        await backend.generate_one(job, 0, timeout=5)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert (len(server.seen), backend.retries, backend.throttles) == (3, 2, 3)


async def test_max_attempts_one_means_no_retry(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    server.answer(THROTTLED, Reply())
    backend = await make_backend(max_attempts=1)

    with pytest.raises(BackendThrottled):
        await backend.generate_one(job, 0, timeout=5)
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    "failure",
    [
        error_reply(500, "InternalServerException", "internal"),
        error_reply(503, "ServiceUnavailableException", "unavailable"),
        error_reply(502, None, "bad gateway"),
        error_reply(429, "ModelNotReadyException", "model is loading"),
    ],
    ids=["500", "503", "502-untyped", "model-not-ready"],
)
async def test_transient_failure_is_retried(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob, failure: Reply
) -> None:
    server.answer(failure, Reply())
    backend = await make_backend()

    assert await backend.generate_one(job, 0, timeout=5) == GeneratedImage(PNG)
    assert (len(server.seen), backend.retries, backend.throttles) == (2, 1, 0)


async def test_persistent_5xx_becomes_unavailable(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    server.answer(error_reply(500, "InternalServerException", "the service broke"))
    backend = await make_backend(max_attempts=2)

    with pytest.raises(BackendUnavailable, match="the service broke"):
        await backend.generate_one(job, 0, timeout=5)
    assert len(server.seen) == 2


NOT_RETRIED = [
    pytest.param(
        error_reply(400, "ValidationException", "Malformed input request: #/textToImageParams"),
        BackendRejected,
        grpc.StatusCode.INVALID_ARGUMENT,
        "Malformed input request",
        id="validation",
    ),
    pytest.param(
        error_reply(400, "ValidationException", CONTENT_FILTER),
        ContentBlocked,
        grpc.StatusCode.PERMISSION_DENIED,
        "blocked by our content filters",
        id="content-filter",
    ),
    pytest.param(
        error_reply(403, "AccessDeniedException", "not authorized"),
        BackendRejected,
        grpc.StatusCode.PERMISSION_DENIED,
        "may not invoke model amazon.titan-image-generator-v2:0",
        id="access-denied",
    ),
    pytest.param(
        error_reply(404, "ResourceNotFoundException", "no such model"),
        BackendRejected,
        grpc.StatusCode.FAILED_PRECONDITION,
        "not available in this region/account",
        id="not-found",
    ),
    pytest.param(
        error_reply(400, "ServiceQuotaExceededException", "quota exceeded"),
        BackendRejected,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "quota exceeded",
        id="quota",
    ),
    pytest.param(
        error_reply(408, "ModelTimeoutException", "model took too long"),
        BackendTimeout,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "model took too long",
        id="model-timeout",
    ),
    pytest.param(
        error_reply(424, "ModelErrorException", "model crashed"),
        BackendUnavailable,
        grpc.StatusCode.UNAVAILABLE,
        "model crashed",
        id="model-error",
    ),
    pytest.param(
        error_reply(400, "BrandNewException:http://internal.amazon.com/", "surprise"),
        BackendUnavailable,
        grpc.StatusCode.UNAVAILABLE,
        "BrandNewException: surprise",
        id="unknown-code",
    ),
]


@pytest.mark.parametrize(("reply", "error", "code", "message"), NOT_RETRIED)
async def test_error_is_mapped_without_retry(
    server: ScriptedBedrock,
    make_backend: MakeBackend,
    job: ImageJob,
    reply: Reply,
    error: type[GatewayError],
    code: grpc.StatusCode,
    message: str,
) -> None:
    server.answer(reply, Reply())
    backend = await make_backend()

    with pytest.raises(error, match=message) as caught:
        await backend.generate_one(job, 0, timeout=5)
    assert caught.value.code == code
    assert len(server.seen) == 1
    assert backend.retries == 0


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ({"images": [], "error": OUTPUT_FILTER}, ImageFiltered, OUTPUT_FILTER),
        ({"images": []}, BackendUnavailable, "backend returned no image"),
        ({}, BackendUnavailable, "backend returned no image"),
        ({"images": ["***not base64***"]}, BackendUnavailable, "malformed body"),
        (["not", "an", "object"], BackendUnavailable, "malformed body"),
    ],
    ids=["output-filter", "empty-images", "no-images-field", "bad-base64", "not-an-object"],
)
async def test_200_without_a_usable_image(
    server: ScriptedBedrock,
    make_backend: MakeBackend,
    job: ImageJob,
    body: object,
    error: type[BackendError],
    message: str,
) -> None:
    server.answer(Reply(body=body))
    backend = await make_backend()

    with pytest.raises(error) as caught:
        await backend.generate_one(job, 0, timeout=5)
    assert message in caught.value.message
    assert len(server.seen) == 1


async def test_partial_filter_with_an_image_returns_it(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    some_filtered = "Some of the generated images have been blocked by our content filters."
    server.answer(Reply(body={"images": [PNG_B64], "error": some_filtered}))
    backend = await make_backend()

    assert await backend.generate_one(job, 0, timeout=5) == GeneratedImage(PNG)


async def test_request_on_the_wire(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    backend = await make_backend()

    await backend.generate_one(job, 2, timeout=5)

    (seen,) = server.seen
    assert seen.model_id == "amazon.titan-image-generator-v2:0"
    assert seen.body == build_body(job, 2)
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Accept"] == "application/json"


STABILITY_OK = {"seeds": [7], "finish_reasons": [None], "images": [PNG_B64]}


async def test_image_service_is_invoked_through_its_us_profile(
    server: ScriptedBedrock, make_backend: MakeBackend
) -> None:
    """The registry's invoke id goes on the wire; the Stability answer is parsed."""
    job = make_job(EraseObject(input_image()), model=registered(ERASE), cfg_scale=None)
    server.answer(Reply(body=STABILITY_OK))
    backend = await make_backend()

    assert await backend.generate_one(job, 1, timeout=5) == GeneratedImage(PNG)

    (seen,) = server.seen
    assert seen.model_id == f"us.{ERASE}"
    assert seen.body == build_body(job, 1)
    assert build_body(job, 1)["seed"] == 43


async def test_stability_prompt_filter_is_content_blocked_without_retry(
    server: ScriptedBedrock, make_backend: MakeBackend
) -> None:
    job = make_job(model=registered("stability.sd3-5-large-v1:0"), cfg_scale=None)
    server.answer(Reply(body={"finish_reasons": ["Filter reason: prompt"]}), Reply())
    backend = await make_backend()

    with pytest.raises(ContentBlocked, match="Filter reason: prompt") as caught:
        await backend.generate_one(job, 0, timeout=5)
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert (len(server.seen), backend.retries) == (1, 0)


async def test_returned_mask_comes_back_with_the_image(
    server: ScriptedBedrock, make_backend: MakeBackend
) -> None:
    mask = png_bytes(color="black")
    task = Inpainting(input_image(), mask_prompt="the sky", return_mask=True)
    job = make_job(task, model=NOVA, send_size=False)
    server.answer(Reply(body={"images": [PNG_B64], "maskImage": b64(mask)}))
    backend = await make_backend()

    assert await backend.generate_one(job, 0, timeout=5) == GeneratedImage(PNG, mask)
    assert server.seen[0].body["inPaintingParams"]["returnMask"] is True  # type: ignore[index]


async def test_slow_model_times_out_promptly(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    server.answer(Reply(hold=True))
    backend = await make_backend()
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(BackendTimeout, match=r"within 0\.2s"):
        await backend.generate_one(job, 0, timeout=0.2)
    assert loop.time() - started < 1.0


async def test_backoff_never_sleeps_past_the_deadline(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    """A backoff that would outlive the deadline gives up with the Bedrock error at once."""
    server.answer(THROTTLED, Reply())
    backend = await make_backend(rng=MaxRandom(), backoff_base=10.0, backoff_max=10.0)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(BackendThrottled):
        await backend.generate_one(job, 0, timeout=2.0)
    assert loop.time() - started < 1.0
    assert (len(server.seen), backend.retries) == (1, 0)


async def test_cancel_while_the_model_works(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    server.answer(Reply(hold=True))
    backend = await make_backend()
    call = asyncio.create_task(backend.generate_one(job, 0, timeout=30))
    await asyncio.wait_for(server.arrived.wait(), 5)

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert (len(server.seen), backend.retries) == (1, 0)


async def test_cancel_during_backoff_is_not_retried(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    server.answer(THROTTLED, Reply())
    backend = await make_backend(rng=MaxRandom(), backoff_base=20.0, backoff_max=20.0)
    call = asyncio.create_task(backend.generate_one(job, 0, timeout=60))
    for _ in range(500):  # wait until the 429 is in and the backoff sleep started
        if backend.throttles:
            break
        await asyncio.sleep(0.01)

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert (len(server.seen), backend.retries, backend.throttles) == (1, 0, 1)


async def test_concurrent_calls_share_one_client(
    server: ScriptedBedrock, make_backend: MakeBackend, job: ImageJob
) -> None:
    backend = await make_backend(max_connections=4)

    images = await asyncio.gather(*(backend.generate_one(job, i, timeout=5) for i in range(12)))

    assert images == [GeneratedImage(PNG)] * 12
    seeds = sorted(seen.body["imageGenerationConfig"]["seed"] for seen in server.seen)  # type: ignore[index]
    assert seeds == [42 + i for i in range(12)]


async def test_connection_refused_is_retried_then_unavailable(job: ImageJob) -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = BedrockConfig(
        endpoint_url=f"http://127.0.0.1:{port}", max_attempts=3, backoff_base=0.001
    )
    async with BedrockBackend(config) as backend:
        with pytest.raises(BackendUnavailable, match="cannot reach Bedrock"):
            await backend.generate_one(job, 0, timeout=5)
        assert backend.retries == 2


async def test_emulator_credentials_only_when_the_chain_has_none(
    server: ScriptedBedrock,
    make_backend: MakeBackend,
    job: ImageJob,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fallback = await make_backend()
    await fallback.generate_one(job, 0, timeout=5)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMTHECHAIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    from_chain = await make_backend()
    await from_chain.generate_one(job, 0, timeout=5)

    signed = [seen.headers["Authorization"] for seen in server.seen]
    assert "Credential=emulator/" in signed[0]
    assert "Credential=AKIDFROMTHECHAIN/" in signed[1]


async def test_no_dummy_credentials_for_real_aws(job: ImageJob) -> None:
    """Without an endpoint_url, missing credentials fail before anything is sent."""
    async with BedrockBackend(BedrockConfig()) as backend:
        with pytest.raises(BackendRejected, match="no AWS credentials") as caught:
            await backend.generate_one(job, 0, timeout=5)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_generate_before_start_is_a_programming_error(job: ImageJob) -> None:
    backend = BedrockBackend(BedrockConfig())
    with pytest.raises(RuntimeError, match="start"):
        await backend.generate_one(job, 0, timeout=1)
    await backend.close()  # closing a backend that never started is harmless


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 0.2), (2, 0.4), (3, 0.8), (5, 3.2), (6, 5.0), (30, 5.0)],
)
def test_backoff_is_exponential_with_full_jitter(attempt: int, ceiling: float) -> None:
    config = BedrockConfig()
    assert backoff_delay(attempt, config, MaxRandom()) == pytest.approx(ceiling)
    rng = random.Random(attempt)
    assert all(0.0 <= backoff_delay(attempt, config, rng) <= ceiling for _ in range(100))
