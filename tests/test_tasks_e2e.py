"""Every Titan task end to end: gRPC client → gateway → real aiobotocore
client → emulator over HTTP, checking what a user would look at."""

from __future__ import annotations

import random

from PIL import Image, ImageChops, ImageFilter

from tests.imagekit import box_mask, decode, disc_on_white, encode, outline, photo
from tests.streams import collect
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks


def config(n: int = 1, size: int = 512, seed: int = 7) -> tasks.ImageGenerationConfig:
    return tasks.ImageGenerationConfig(number_of_images=n, width=size, height=size, seed=seed)


async def test_text_to_image_streams_distinct_pngs_of_the_requested_size(stub) -> None:
    request = pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox in snow, studio light"),
        config=config(n=3),
    )
    result = await collect(stub.GenerateImages(request))

    assert result.accepted.image_count == 3
    assert result.accepted.model_id == "amazon.titan-image-generator-v2:0"
    assert sorted(result.images) == [0, 1, 2]
    assert result.completed.images_delivered == 3
    for index, image in result.images.items():
        assert image.mime_type == "image/png"
        assert image.seed == 7 + index
        assert (image.width, image.height) == (512, 512)
        assert decode(image.data).size == (512, 512)
    assert len({img.data for img in result.images.values()}) == 3


async def test_same_prompt_and_seed_give_the_same_image(stub) -> None:
    request = pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a lighthouse at dusk"), config=config()
    )
    first = (await collect(stub.GenerateImages(request))).images[0]
    second = (await collect(stub.GenerateImages(request))).images[0]
    # The same picture; each delivered image carries its own watermark id, so
    # the pixels differ by the watermark alone (and the bytes by the manifest).
    assert first.watermark_id != second.watermark_id
    a, b = decode(first.data).convert("RGB"), decode(second.data).convert("RGB")
    assert _changed(a, b, tolerance=2 * WM) == 0  # two marks: up to twice the amplitude


async def test_conditioned_generation_follows_the_reference_edges(stub) -> None:
    reference = outline(512)
    request = pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(
            text="a framed painting",
            conditioning=tasks.ImageConditioning(
                condition_image=encode(reference),
                control_mode=tasks.CONTROL_MODE_CANNY_EDGE,
                control_strength=1.0,
            ),
        ),
        config=config(),
    )
    result = await collect(stub.GenerateImages(request))
    out = decode(result.images[0].data).convert("L")

    ref_edges = _edge_pixels(reference.convert("L"))
    out_edges = _edge_pixels(out)
    overlap = len(ref_edges & out_edges) / len(ref_edges)
    chance = len(out_edges) / (512 * 512)
    assert overlap > 0.5
    assert overlap > 3 * chance


async def test_inpainting_changes_only_the_masked_region(stub) -> None:
    source = photo(512, 512)
    box = (128, 128, 383, 383)
    request = pb.GenerateImagesRequest(
        inpainting=tasks.InpaintingTask(
            image=encode(source),
            mask_image=encode(box_mask((512, 512), box)),
            text="a glass of water",
        ),
        config=tasks.ImageGenerationConfig(number_of_images=2, seed=3),
    )
    result = await collect(stub.GenerateImages(request))

    assert result.accepted.task_type == tasks.TASK_TYPE_INPAINTING
    for image in result.images.values():
        out = decode(image.data).convert("RGB")
        assert out.size == source.size
        diff = _beyond_watermark(out, source)
        outside = diff.copy()
        outside.paste((0, 0, 0), box=(box[0], box[1], box[2] + 1, box[3] + 1))
        assert outside.getbbox() is None, "pixels outside the mask changed"
        assert diff.crop((box[0], box[1], box[2] + 1, box[3] + 1)).getbbox() is not None


async def test_inpainting_with_a_mask_prompt_keeps_most_pixels(stub) -> None:
    source = photo(512, 512)
    request = pb.GenerateImagesRequest(
        inpainting=tasks.InpaintingTask(image=encode(source), mask_prompt="the cup"),
    )
    result = await collect(stub.GenerateImages(request))
    out = decode(result.images[0].data).convert("RGB")
    changed = _changed_fraction(out, source)
    assert 0.02 < changed < 0.6


async def test_outpainting_precise_keeps_the_masked_region(stub) -> None:
    source = photo(512, 512)
    keep = (160, 160, 351, 351)
    request = pb.GenerateImagesRequest(
        outpainting=tasks.OutpaintingTask(
            image=encode(source),
            mask_image=encode(box_mask((512, 512), keep)),
            text="a wide mountain valley",
            mode=tasks.OUTPAINTING_MODE_PRECISE,
        ),
    )
    result = await collect(stub.GenerateImages(request))
    out = decode(result.images[0].data).convert("RGB")

    region = (keep[0], keep[1], keep[2] + 1, keep[3] + 1)
    assert _beyond_watermark(out.crop(region), source.crop(region)).getbbox() is None
    assert _changed_fraction(out, source) > 0.5


async def test_variation_returns_images_of_the_configured_size(stub) -> None:
    request = pb.GenerateImagesRequest(
        image_variation=tasks.ImageVariationTask(
            images=[encode(photo(512, 512)), encode(disc_on_white(512), "JPEG")],
            similarity_strength=0.9,
        ),
        config=tasks.ImageGenerationConfig(number_of_images=2, width=768, height=768),
    )
    result = await collect(stub.GenerateImages(request))
    assert sorted(result.images) == [0, 1]
    for image in result.images.values():
        assert decode(image.data).size == (768, 768)


async def test_background_removal_makes_the_background_transparent(stub) -> None:
    request = pb.GenerateImagesRequest(
        background_removal=tasks.BackgroundRemovalTask(image=encode(disc_on_white(512)))
    )
    result = await collect(stub.GenerateImages(request))

    assert result.accepted.image_count == 1
    out = decode(result.images[0].data)
    assert out.mode == "RGBA"
    assert out.size == (512, 512)
    alpha = out.getchannel("A")
    for corner in ((0, 0), (511, 0), (0, 511), (511, 511)):
        assert alpha.getpixel(corner) == 0
    assert alpha.getpixel((256, 256)) == 255


async def test_colour_guided_output_uses_the_palette(stub) -> None:
    palette = ["#FF0000", "#00AA00", "#1030F0"]
    request = pb.GenerateImagesRequest(
        color_guided_generation=tasks.ColorGuidedGenerationTask(
            text="abstract poster", colors=palette
        ),
        config=config(),
    )
    result = await collect(stub.GenerateImages(request))
    out = decode(result.images[0].data).convert("RGB")
    present = [rgb for _, rgb in out.getcolors(maxcolors=512 * 512) or []]
    for hex_colour in palette:
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        near = [c for c in present if max(abs(a - b) for a, b in zip(c, rgb, strict=True)) <= WM]
        assert near, f"{hex_colour} missing from the output"


async def test_nova_canvas_is_selectable_by_model_id(stub) -> None:
    request = pb.GenerateImagesRequest(
        model_id="amazon.nova-canvas-v1:0",
        text_to_image=tasks.TextToImageTask(text="x" * 900),
        config=tasks.ImageGenerationConfig(width=640, height=384),
    )
    result = await collect(stub.GenerateImages(request))
    assert result.images[0].model_id == "amazon.nova-canvas-v1:0"
    assert decode(result.images[0].data).size == (640, 384)


def _edge_pixels(gray) -> set[tuple[int, int]]:
    edges = gray.filter(ImageFilter.FIND_EDGES).point(lambda v: 255 if v > 64 else 0)
    w, h = edges.size
    data = edges.tobytes()
    return {
        (i % w, i // w)
        for i, v in enumerate(data)
        if v and 4 < i % w < w - 4 and 4 < i // w < h - 4
    }


# Every delivered image is watermarked: the same value (at most ±5 grey
# levels, gateway/provenance/watermark.py) added to R, G and B. A pixel counts
# as changed by the task only beyond that.
WM = 6


def _beyond_watermark(a, b, tolerance: int = WM):
    """Per channel, 255 where a and b differ by more than the watermark can."""
    return ImageChops.difference(a, b).point(lambda v: 255 if v > tolerance else 0)


def _changed(a, b, tolerance: int = WM) -> int:
    beyond = _beyond_watermark(a, b, tolerance)
    return beyond.convert("L").point(lambda v: 255 if v else 0).histogram()[255]


def _changed_fraction(a, b) -> float:
    return _changed(a, b) / (a.size[0] * a.size[1])


async def test_a_multi_megabyte_input_goes_through(stub) -> None:
    # Random noise does not compress: a ~3 MB PNG, ~4 MB once base64-encoded.
    noise = Image.frombytes("RGB", (1024, 1024), random.Random(5).randbytes(1024 * 1024 * 3))
    data = encode(noise)
    assert len(data) > 2_000_000
    request = pb.GenerateImagesRequest(background_removal=tasks.BackgroundRemovalTask(image=data))
    result = await collect(stub.GenerateImages(request))
    assert decode(result.images[0].data).size == (1024, 1024)
