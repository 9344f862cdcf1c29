"""Helpers shared by the emulator tests: calling InvokeModel and building images."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from PIL import Image, ImageDraw

TITAN_V1 = "amazon.titan-image-generator-v1"
TITAN_V2 = "amazon.titan-image-generator-v2:0"
NOVA = "amazon.nova-canvas-v1:0"


async def invoke(client: Any, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """InvokeModel exactly as the gateway calls it; returns the decoded JSON body."""
    response = await client.invoke_model(
        modelId=model_id,
        body=json.dumps(body),
        contentType="application/json",
        accept="application/json",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["contentType"] == "application/json"
    payload: dict[str, Any] = json.loads(await response["body"].read())
    return payload


async def invoke_error(client: Any, model_id: str, body: dict[str, Any], code: str) -> str:
    """Invoke expecting botocore to raise the modelled exception `code`; return its message."""
    with pytest.raises(getattr(client.exceptions, code)) as info:
        await invoke(client, model_id, body)
    error = info.value.response["Error"]
    assert error["Code"] == code
    assert info.value.response["ResponseMetadata"]["RequestId"]
    message: str = error["Message"]
    return message


def decode_png(data: str) -> Image.Image:
    raw = base64.b64decode(data)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(raw))
    image.load()
    return image


def to_b64(image: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode()


def scene(size: tuple[int, int] = (512, 512)) -> Image.Image:
    """A deterministic busy RGB input image."""
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    w, h = size
    for i in range(0, w, 16):
        draw.line((i, 0, w - i, h), fill=(i % 256, (3 * i) % 256, 255 - i % 256), width=3)
    draw.ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=(200, 40, 40))
    return image


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """White mask with a black box (black = the masked region)."""
    mask = Image.new("RGB", size, (255, 255, 255))
    ImageDraw.Draw(mask).rectangle(box, fill=(0, 0, 0))
    return mask
