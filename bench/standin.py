"""A stand-in for Bedrock's InvokeModel that costs almost nothing, so a
benchmark measures the gateway and not the backend (the emulator spends
~47 ms of CPU drawing each image, which hides the gateway).

`python -m bench.standin [--port 0] [--impl raw|aiohttp]` prints
``stand-in listening on 127.0.0.1:PORT`` when ready, then answers every
``POST /model/{id}/invoke`` with a prebuilt answer in the model's dialect
(Titan/Nova: ``{"images": [b64], "error": null}``; Stability:
``{"seeds": [..], "finish_reasons": [null], "images": [b64]}``) holding one
of two prebuilt 1024x1024 PNGs: ``small`` (~21 KB, flat colour bands) or
``large`` (~1.39 MB, a gradient with photo-like noise). The request body is
read and ignored.

``POST /_standin`` with ``{"image": "small"|"large", "delay_s": 0.0}`` picks
the image and a delay before each answer; it holds until changed again.

It runs in its own process, so its CPU is not counted as the caller's or
the gateway's. Two servers answer the same bytes: ``raw``, a bare asyncio
protocol (HTTP/1.1 keep-alive, Content-Length bodies only), and ``aiohttp``;
the raw one spends about a quarter of aiohttp's CPU per answer (0.015
against 0.055 ms; bench/overhead prints both), so it is the default.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web
from PIL import Image

SIDE = 1024
REQUEST_ID = "00000000-0000-4000-8000-000000000000"
HEAD_END = b"\r\n\r\n"
CONTROL_PATH = "/_standin"


def small_png() -> bytes:
    """~21 KB: a smooth gradient quantized to a few flat colours."""
    return _png(np.floor(_gradient() / 50) * 50)


def large_png() -> bytes:
    """~1.39 MB: the same gradient with Gaussian noise, as a photo compresses."""
    noise = np.random.default_rng(7).normal(0, 1.8, (SIDE, SIDE, 3)).astype(np.float32)
    return _png(_gradient() + noise)


def _gradient() -> np.ndarray:
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    wave = 25 * np.sin(x[..., None] * 9 + y[..., None] * 5)
    colours: np.ndarray = np.stack([200 * x + 30, 160 * y + 40, 120 * (1 - x * y) + 60], axis=-1)
    pixels: np.ndarray = colours + wave
    return pixels


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(out, "PNG")
    return out.getvalue()


def answer_body(model_id: str, png: bytes) -> bytes:
    """The 200 body Bedrock returns for one image of `model_id`."""
    encoded = base64.b64encode(png).decode()
    if model_id.startswith(("stability.", "us.stability.")):
        body: dict[str, object] = {"seeds": [1], "finish_reasons": [None], "images": [encoded]}
    else:
        body = {"images": [encoded], "error": None}
    return json.dumps(body).encode()


def http_answer(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"x-amzn-RequestId: {REQUEST_ID}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Answers:
    """The prebuilt answers, per (dialect, image), and the current choice."""

    images: dict[str, bytes] = field(
        default_factory=lambda: {"small": small_png(), "large": large_png()}
    )
    image: str = "small"
    delay_s: float = 0.0
    _bodies: dict[tuple[bool, str], bytes] = field(default_factory=dict)
    _answers: dict[tuple[bool, str], bytes] = field(default_factory=dict)

    def body(self, model_id: str) -> bytes:
        """The JSON body for `model_id` (its dialect) and the current image."""
        key = ("stability." in model_id, self.image)
        if key not in self._bodies:
            self._bodies[key] = answer_body(model_id, self.images[self.image])
        return self._bodies[key]

    def response(self, model_id: str) -> bytes:
        """Status line, headers and body as one buffer."""
        key = ("stability." in model_id, self.image)
        if key not in self._answers:
            self._answers[key] = http_answer("200 OK", self.body(model_id))
        return self._answers[key]

    def configure(self, payload: bytes) -> None:
        """Apply a control request: ``{"image": ..., "delay_s": ...}``."""
        settings = json.loads(payload or b"{}")
        image = settings.get("image", self.image)
        if image not in self.images:
            raise ValueError(f"unknown image {image!r}")
        self.image = image
        self.delay_s = float(settings.get("delay_s", self.delay_s))


# -- raw asyncio protocol -------------------------------------------------------


class RawHttp(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (no pipelining
    is needed: aiohttp's client sends the next request after the answer)."""

    def __init__(self, answers: Answers) -> None:
        self._answers = answers
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._waiting: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._serve()

    def _serve(self) -> None:
        while self._waiting is None and self._transport is not None:
            request = self._take_request()
            if request is None:
                return
            self._answer(*request)

    def _take_request(self) -> tuple[str, bytes] | None:
        end = self._buffer.find(HEAD_END)
        if end < 0:
            return None
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        start = end + len(HEAD_END)
        if len(self._buffer) < start + length:
            return None
        body = bytes(self._buffer[start : start + length])
        del self._buffer[: start + length]
        parts = head[0].split(" ")
        return (parts[1] if len(parts) > 1 else "/"), body

    def _answer(self, path: str, body: bytes) -> None:
        assert self._transport is not None
        if path == CONTROL_PATH:
            try:
                self._answers.configure(body)
            except ValueError as exc:
                self._transport.write(http_answer("400 Bad Request", str(exc).encode()))
                return
            self._transport.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            return
        parts = path.split("/")  # "", "model", id, "invoke"
        if len(parts) != 4 or parts[1] != "model" or parts[3] != "invoke":
            self._transport.write(http_answer("404 Not Found", b'{"message": "not found"}'))
            return
        answer = self._answers.response(parts[2].replace("%3A", ":"))
        if self._answers.delay_s <= 0:
            self._transport.write(answer)
            return
        loop = asyncio.get_running_loop()
        self._waiting = loop.call_later(self._answers.delay_s, self._send_later, answer)

    def _send_later(self, answer: bytes) -> None:
        self._waiting = None
        if self._transport is not None:
            self._transport.write(answer)
            self._serve()


async def serve_raw(answers: Answers, host: str, port: int) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RawHttp(answers), host, port, backlog=4096)
    return server, server.sockets[0].getsockname()[1]


# -- aiohttp -------------------------------------------------------------------


def aiohttp_app(answers: Answers) -> web.Application:
    async def invoke(request: web.Request) -> web.Response:
        await request.read()
        if answers.delay_s > 0:
            await asyncio.sleep(answers.delay_s)
        return web.Response(
            body=answers.body(request.match_info["model"]),
            content_type="application/json",
            headers={"x-amzn-RequestId": REQUEST_ID},
        )

    async def control(request: web.Request) -> web.Response:
        try:
            answers.configure(await request.read())
        except ValueError as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/model/{model}/invoke", invoke)
    app.router.add_post(CONTROL_PATH, control)
    return app


async def serve_aiohttp(answers: Answers, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(aiohttp_app(answers), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    return runner, server.sockets[0].getsockname()[1]


async def main_async(host: str, port: int, impl: str) -> None:
    answers = Answers()
    if impl == "raw":
        _, bound = await serve_raw(answers, host, port)
    else:
        _, bound = await serve_aiohttp(answers, host, port)
    print(f"stand-in listening on {host}:{bound}", flush=True)
    await asyncio.Event().wait()  # until the process is terminated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--impl", choices=("raw", "aiohttp"), default="raw")
    args = parser.parse_args()
    asyncio.run(main_async(args.host, args.port, args.impl))


if __name__ == "__main__":
    main()
