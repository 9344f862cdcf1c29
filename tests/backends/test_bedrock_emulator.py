"""BedrockBackend against the real Bedrock emulator over HTTP: the same client
code path the gateway uses, with the emulator's validation and behaviours."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from gateway.backends.bedrock import BedrockBackend, BedrockConfig
from gateway.domain import EraseObject, ImageJob, InputImage, TextToImage
from gateway.emulator import Emulator, EmulatorConfig
from gateway.errors import BackendRejected, BackendUnavailable, ContentBlocked, ImageFiltered
from tests.backends.support import NOVA, input_image, make_job, registered

EMULATOR = EmulatorConfig(
    input_block_terms=("forbidden-input",),
    output_block_terms=("forbidden-output",),
    fault_seeds=frozenset({1000}),
)


@pytest.fixture
async def backend() -> AsyncIterator[BedrockBackend]:
    emulator = Emulator(EMULATOR)
    url = await emulator.start()
    config = BedrockConfig(endpoint_url=url, max_attempts=2, backoff_base=0.001)
    async with BedrockBackend(config, rng=random.Random(0)) as started:
        yield started
    await emulator.stop()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    "job",
    [make_job(), make_job(model=NOVA, width=640, height=384, cfg_scale=6.5)],
    ids=["titan-v2", "nova-canvas"],
)
async def test_text_to_image_returns_a_png(backend: BedrockBackend, job: ImageJob) -> None:
    generated = await backend.generate_one(job, 0, timeout=10)

    image = decode(generated.data)
    assert generated.mask is None
    assert image.format == "PNG"
    assert image.size == (job.config.width, job.config.height)


async def test_input_filter_is_content_blocked(backend: BedrockBackend) -> None:
    with pytest.raises(ContentBlocked, match="blocked by our content filters"):
        await backend.generate_one(make_job(TextToImage("a forbidden-input fox")), 0, timeout=10)


async def test_output_filter_is_image_filtered(backend: BedrockBackend) -> None:
    with pytest.raises(ImageFiltered, match="blocked by our content filters"):
        await backend.generate_one(make_job(TextToImage("a forbidden-output fox")), 0, timeout=10)


async def test_emulator_validation_is_rejected(backend: BedrockBackend) -> None:
    with pytest.raises(BackendRejected) as caught:
        await backend.generate_one(make_job(TextToImage("x" * 600)), 0, timeout=10)
    assert "maxLength" in caught.value.message


async def test_persistent_500_is_retried_then_unavailable(backend: BedrockBackend) -> None:
    with pytest.raises(BackendUnavailable):
        await backend.generate_one(make_job(seed=1000), 0, timeout=10)
    assert backend.retries == 1


async def test_image_service_goes_through_its_us_profile(backend: BedrockBackend) -> None:
    """A Stability Image Service is invoked with its `us.` profile id and its
    {seeds, finish_reasons, images} answer is read by the stability dialect."""
    sent: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(params["modelId"])

    backend.client.meta.events.register("provide-client-params.bedrock-runtime.InvokeModel", record)
    model = registered("stability.stable-image-erase-object-v1:0")
    job = make_job(EraseObject(input_image(size=96)), model=model, cfg_scale=None)

    generated = await backend.generate_one(job, 0, timeout=10)

    assert sent == ["us.stability.stable-image-erase-object-v1:0"]
    image = decode(generated.data)
    assert (image.format, image.size) == ("PNG", (96, 96))


async def test_a_request_body_over_one_mib_is_sent_whole_without_a_warning(
    backend: BedrockBackend,
) -> None:
    """Bodies up to 1 MiB go to aiohttp as bytes; a larger one (an edit of a
    photo-like input) as a file object, which aiohttp streams without the
    warning it gives for large raw bytes (warnings fail the suite)."""
    noise = random.Random(3).randbytes(700 * 700 * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (700, 700), noise).save(out, format="PNG")
    photo = InputImage(out.getvalue(), "PNG", 700, 700)
    assert len(photo.data) * 4 // 3 > 1 << 20  # base64 in the JSON body
    model = registered("stability.stable-image-erase-object-v1:0")
    job = make_job(EraseObject(photo), model=model, cfg_scale=None)

    generated = await backend.generate_one(job, 0, timeout=30)

    assert decode(generated.data).size == (700, 700)
