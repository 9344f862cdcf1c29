"""The floor under the gateway: a bare grpc.aio server that answers
GenerateImages with the same three events (accepted, the image, completed)
and nothing else, so the overhead bench can tell what the gateway's own work
costs from what the framework and the Bedrock client cost anyway.

`python -m bench.floor --standin HOST:PORT --backend none|http|sdk` prints
``floor listening on 127.0.0.1:PORT`` when ready. Its backend is one of

* ``none``: no backend call, the image is the stand-in's PNG fetched once at
  start (what grpc.aio costs to stream ~21 KB or ~1.39 MB to a caller);
* ``http``: one aiohttp POST to the stand-in per request, the JSON and
  base64 decoded with the gateway's own decoder (a backend call without an
  SDK: no signing, no retries, no error model);
* ``sdk``: aiobotocore's `invoke_model` against the stand-in, signed, with
  the gateway's client settings (what any Python gateway on aiobotocore
  pays per call).

No authentication, policy, ledger, telemetry or provenance: those are the
gateway's, and the difference is theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import grpc
from aiobotocore.config import AioConfig

from gateway.backends.aws import open_client
from gateway.dialects.base import decode_b64, json_object
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc

MODEL_ID = "amazon.titan-image-generator-v2:0"
BODY = json.dumps(
    {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a red fox in snow"},
        "imageGenerationConfig": {"numberOfImages": 1, "width": 1024, "height": 1024},
    }
).encode()

Fetch = Callable[[], Awaitable[bytes]]


def image_of(payload: bytes) -> bytes:
    """The first image of a Titan answer, decoded as the gateway decodes it."""
    return decode_b64(json_object(payload)["images"][0])


class FloorService(image_service_pb2_grpc.ImageServiceServicer):
    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch

    async def GenerateImages(
        self, request: pb.GenerateImagesRequest, context: Any
    ) -> AsyncIterator[pb.GenerateImagesResponse]:
        yield pb.GenerateImagesResponse(accepted=pb.Accepted(model_id=MODEL_ID))
        data = await self._fetch()
        yield pb.GenerateImagesResponse(image=pb.Image(index=0, data=data, mime_type="image/png"))
        yield pb.GenerateImagesResponse(completed=pb.Completed(images_delivered=1))


async def serve(standin: str, backend: str) -> None:
    url = f"http://{standin}/model/{MODEL_ID}/invoke"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def over_http() -> bytes:
            async with session.post(url, data=BODY) as answer:
                return image_of(await answer.read())

        fixed = await over_http()

        async def no_call() -> bytes:
            return fixed

        fetch: Fetch = no_call if backend == "none" else over_http
        stack = None
        if backend == "sdk":
            config = AioConfig(max_pool_connections=512, retries={"total_max_attempts": 1})
            client, stack = await open_client(
                "bedrock-runtime", region="us-east-1", endpoint_url=f"http://{standin}",
                config=config,
            )  # fmt: skip

            async def over_sdk() -> bytes:
                response = await client.invoke_model(
                    modelId=MODEL_ID, body=BODY, contentType="application/json",
                    accept="application/json",
                )  # fmt: skip
                async with response["body"] as stream:
                    return image_of(await stream.read())

            fetch = over_sdk
        server = grpc.aio.server(options=[("grpc.max_send_message_length", 64 << 20)])
        add = image_service_pb2_grpc.add_ImageServiceServicer_to_server
        add(FloorService(fetch), server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(f"floor listening on 127.0.0.1:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await server.stop(0)
        if stack is not None:
            await stack.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--standin", required=True, help="HOST:PORT of bench.standin")
    parser.add_argument("--backend", choices=["none", "http", "sdk"], default="none")
    options = parser.parse_args()
    asyncio.run(serve(options.standin, options.backend))


if __name__ == "__main__":
    main()
