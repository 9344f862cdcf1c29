"""The ImageService servicer: validate, fan out, stream events."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import NoReturn

import grpc

from gateway.convert import QUALITY_TO_PROTO, TASK_TYPE_TO_PROTO, failure_reason, image_facts
from gateway.domain import ImageJob
from gateway.errors import GatewayError, to_rpc_status
from gateway.fanout import FanOut, ImageLost, ImageReady
from gateway.models import ModelRegistry
from gateway.validation import decode_request
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc

log = logging.getLogger(__name__)


class ImageService(image_service_pb2_grpc.ImageServiceServicer):
    """Serves GenerateImages and EstimateCost."""

    def __init__(self, registry: ModelRegistry, fanout: FanOut, default_timeout: float) -> None:
        self._registry = registry
        self._fanout = fanout
        self._default_timeout = default_timeout

    async def GenerateImages(
        self, request: pb.GenerateImagesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GenerateImagesResponse]:
        job = await self._decode(request, context)
        request_id = str(uuid.uuid4())
        yield pb.GenerateImagesResponse(accepted=_accepted(job, request_id))
        delivered: list[int] = []
        lost: list[ImageLost] = []
        try:
            async for outcome in self._fanout.run(job, self._deadline(context)):
                if isinstance(outcome, ImageReady):
                    delivered.append(outcome.index)
                    yield pb.GenerateImagesResponse(image=_image(job, outcome))
                else:
                    lost.append(outcome)
                    yield pb.GenerateImagesResponse(image_failed=_image_failed(outcome))
        except GatewayError as exc:
            await _abort(context, exc)
        except Exception:  # a bug, not bad input: INTERNAL with a logged traceback
            log.exception("request %s failed unexpectedly", request_id)
            await _abort(context, GatewayError(f"internal error (request {request_id})"))
        if not delivered and lost and all(x.error.retryable for x in lost):
            # Nothing arrived and waiting may help: say so with the status, so
            # the caller's retry policy applies (UNAVAILABLE / DEADLINE_EXCEEDED).
            await _abort(context, lost[0].error)
        completed = pb.Completed(images_delivered=len(delivered), images_failed=len(lost))
        yield pb.GenerateImagesResponse(completed=completed)

    async def EstimateCost(
        self, request: pb.EstimateCostRequest, context: grpc.aio.ServicerContext
    ) -> pb.EstimateCostResponse:
        job = await self._decode(request.request, context)
        return pb.EstimateCostResponse(
            model_id=job.model.model_id,
            task_type=TASK_TYPE_TO_PROTO[job.task_type],
            image_count=job.config.count,
            width=job.config.width,
            height=job.config.height,
            quality=QUALITY_TO_PROTO[job.config.quality],
        )

    async def _decode(
        self, request: pb.GenerateImagesRequest, context: grpc.aio.ServicerContext
    ) -> ImageJob:
        try:
            return decode_request(request, self._registry)
        except GatewayError as exc:
            await _abort(context, exc)

    def _deadline(self, context: grpc.aio.ServicerContext) -> float:
        """The caller's deadline as a monotonic instant (or the default timeout)."""
        remaining: float | None = context.time_remaining()
        if remaining is None:
            remaining = self._default_timeout
        return time.monotonic() + min(remaining, self._default_timeout)


async def _abort(context: grpc.aio.ServicerContext, error: GatewayError) -> NoReturn:
    log.info("request refused: %s %s", error.code.name, error.message)
    await context.abort_with_status(to_rpc_status(error))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def _accepted(job: ImageJob, request_id: str) -> pb.Accepted:
    return pb.Accepted(
        request_id=request_id,
        client_request_id=job.client_request_id,
        model_id=job.model.model_id,
        task_type=TASK_TYPE_TO_PROTO[job.task_type],
        image_count=job.config.count,
        width=job.config.width,
        height=job.config.height,
        quality=QUALITY_TO_PROTO[job.config.quality],
        seed=job.config.seed,
    )


def _image(job: ImageJob, ready: ImageReady) -> pb.Image:
    mime, width, height = image_facts(ready.data)
    return pb.Image(
        index=ready.index,
        data=ready.data,
        mime_type=mime,
        seed=ready.seed,
        width=width,
        height=height,
        model_id=job.model.model_id,
    )


def _image_failed(lost: ImageLost) -> pb.ImageFailed:
    return pb.ImageFailed(
        index=lost.index,
        seed=lost.seed,
        reason=failure_reason(lost.error),
        message=lost.error.message,
    )
