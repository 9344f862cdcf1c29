"""The server as an operator and a client see it: health, reflection,
EstimateCost, and bad input answered with INVALID_ARGUMENT and field details."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.imagekit import box_mask, encode, photo
from tests.streams import bad_request_fields, collect
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks


async def test_health_reports_serving(channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "titan.gateway.v1.ImageService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_image_service(channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = set()
    async for reply in replies:
        names |= {s.name for s in reply.list_services_response.service}
    assert "titan.gateway.v1.ImageService" in names


async def test_estimate_cost_says_what_would_run_without_generating(gateway, stub) -> None:
    request = pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox"),
        config=tasks.ImageGenerationConfig(
            number_of_images=4, width=1152, height=768, quality=tasks.QUALITY_PREMIUM
        ),
    )
    reply = await stub.EstimateCost(pb.EstimateCostRequest(request=request))
    assert (reply.image_count, reply.width, reply.height) == (4, 1152, 768)
    assert reply.quality == tasks.QUALITY_PREMIUM
    assert reply.model_id == "amazon.titan-image-generator-v2:0"
    assert reply.task_type == tasks.TASK_TYPE_TEXT_TO_IMAGE
    assert gateway.emulator.stats.calls == 0


BAD_REQUESTS = {
    "prompt too long": (
        pb.GenerateImagesRequest(text_to_image=tasks.TextToImageTask(text="x" * 513)),
        "text_to_image.text",
    ),
    "size not a Titan size": (
        pb.GenerateImagesRequest(
            text_to_image=tasks.TextToImageTask(text="a fox"),
            config=tasks.ImageGenerationConfig(width=1000, height=1000),
        ),
        "config.width",
    ),
    "image bytes are not an image": (
        pb.GenerateImagesRequest(
            background_removal=tasks.BackgroundRemovalTask(image=b"GIF89a not really")
        ),
        "background_removal.image",
    ),
    "mask of the wrong size": (
        pb.GenerateImagesRequest(
            inpainting=tasks.InpaintingTask(
                image=encode(photo(512, 512)),
                mask_image=encode(box_mask((256, 256), (10, 10, 100, 100))),
            )
        ),
        "inpainting.mask_image",
    ),
    "colour not hex": (
        pb.GenerateImagesRequest(
            color_guided_generation=tasks.ColorGuidedGenerationTask(text="a", colors=["red"])
        ),
        "color_guided_generation.colors[0]",
    ),
    "similarity out of range": (
        pb.GenerateImagesRequest(
            image_variation=tasks.ImageVariationTask(
                images=[encode(photo(256, 256))], similarity_strength=0.1
            )
        ),
        "image_variation.similarity_strength",
    ),
    "unknown model": (
        pb.GenerateImagesRequest(
            model_id="stability.sd3", text_to_image=tasks.TextToImageTask(text="a fox")
        ),
        "model_id",
    ),
    "no task": (pb.GenerateImagesRequest(), "task"),
}


@pytest.mark.parametrize(("request_", "field"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_bad_input_is_invalid_argument_naming_the_field(
    gateway, stub, request_, field
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(stub.GenerateImages(request_))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = bad_request_fields(caught.value)
    assert field in fields, fields
    assert fields[field]
    assert gateway.emulator.stats.calls == 0
    # The server keeps serving.
    ok = pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="still here"),
        config=tasks.ImageGenerationConfig(width=512, height=512),
    )
    assert len((await collect(stub.GenerateImages(ok))).images) == 1


async def test_estimate_cost_rejects_bad_input_the_same_way(stub) -> None:
    bad, field = BAD_REQUESTS["prompt too long"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.EstimateCost(pb.EstimateCostRequest(request=bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_request_fields(caught.value)
