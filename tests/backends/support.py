"""Helpers for the backend tests: image jobs, PNGs, and `ScriptedBedrock`.

`ScriptedBedrock` is a tiny aiohttp server on 127.0.0.1 that answers
`POST /model/{id}/invoke` with a scripted list of replies in botocore's
rest-json shape (status, `x-amzn-ErrorType`, `x-amzn-RequestId`, body
`{"message": ...}`); the last reply repeats. It records every request.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from PIL import Image

from gateway.domain import ImageConfig, ImageJob, InputImage, Task, TextToImage
from gateway.enums import Quality
from gateway.registry import ModelSpec, load_registry


def registered(model_id: str) -> ModelSpec:
    """A model of the shipped registry."""
    model = load_registry().get(model_id)
    assert model is not None, f"{model_id} is not in the shipped registry"
    return model


TITAN_V2 = registered("amazon.titan-image-generator-v2:0")
NOVA = registered("amazon.nova-canvas-v1:0")


def png_bytes(width: int = 8, height: int = 8, color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


PNG = png_bytes()
PNG_B64 = base64.b64encode(PNG).decode("ascii")


def input_image(color: str = "blue", size: int = 64) -> InputImage:
    return InputImage(png_bytes(size, size, color), "PNG", size, size)


BASE_CONFIG = ImageConfig(
    count=1, width=512, height=512, cfg_scale=8.0, seed=42, quality=Quality.STANDARD
)


def make_job(task: Task | None = None, *, model: ModelSpec = TITAN_V2, **config: Any) -> ImageJob:
    """A job for `task` (default: text-to-image "a red fox") with config overrides."""
    return ImageJob(task or TextToImage("a red fox"), replace(BASE_CONFIG, **config), model)


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `hold` waits until the server stops (a slow model)."""

    status: int = 200
    body: object = field(default_factory=lambda: {"images": [PNG_B64]})
    error_type: str | None = None
    hold: bool = False


def error_reply(status: int, error_type: str | None, message: str) -> Reply:
    return Reply(status=status, body={"message": message}, error_type=error_type)


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    model_id: str
    headers: dict[str, str]
    body: object


class ScriptedBedrock:
    def __init__(self) -> None:
        self.script: list[Reply] = [Reply()]
        self.seen: list[Seen] = []
        self.arrived = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def answer(self, *replies: Reply) -> None:
        """Reply with these in order; the last one repeats."""
        self.script = list(replies)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/model/{model_id}/invoke", self._invoke)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _invoke(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.seen.append(Seen(request.match_info["model_id"], dict(request.headers), body))
        self.arrived.set()
        reply = self.script[min(len(self.seen), len(self.script)) - 1]
        if reply.hold:
            await self._release.wait()
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if reply.error_type:
            headers["x-amzn-ErrorType"] = reply.error_type
        return web.json_response(reply.body, status=reply.status, headers=headers)
