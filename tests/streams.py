"""Reading a GenerateImages stream the way a client would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from titan.gateway.v1 import image_service_pb2 as pb

M = TypeVar("M", bound=Message)


@dataclass
class StreamResult:
    """Every event of one stream, in arrival order."""

    events: list[pb.GenerateImagesResponse] = field(default_factory=list)

    @property
    def accepted(self) -> pb.Accepted:
        assert self.events[0].WhichOneof("event") == "accepted"
        return self.events[0].accepted

    @property
    def images(self) -> dict[int, pb.Image]:
        return {e.image.index: e.image for e in self.events if e.WhichOneof("event") == "image"}

    @property
    def failures(self) -> dict[int, pb.ImageFailed]:
        return {
            e.image_failed.index: e.image_failed
            for e in self.events
            if e.WhichOneof("event") == "image_failed"
        }

    @property
    def order(self) -> list[int]:
        """Image indexes in the order their image/image_failed events arrived."""
        out = []
        for e in self.events:
            kind = e.WhichOneof("event")
            if kind == "image":
                out.append(e.image.index)
            elif kind == "image_failed":
                out.append(e.image_failed.index)
        return out

    @property
    def completed(self) -> pb.Completed:
        assert self.events[-1].WhichOneof("event") == "completed"
        return self.events[-1].completed


async def collect(call: grpc.aio.UnaryStreamCall) -> StreamResult:  # type: ignore[type-arg]
    result = StreamResult()
    async for event in call:
        result.events.append(event)
    return result


def find_detail(err: grpc.aio.AioRpcError, kind: type[M]) -> M | None:
    """The first google.rpc detail of type `kind` in a failed call's status."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    for packed in status.details if status else []:
        message = kind()
        if packed.Unpack(message):
            return message
    return None


def detail(err: grpc.aio.AioRpcError, kind: type[M]) -> M:
    """Like `find_detail`, but the detail must be there."""
    found = find_detail(err, kind)
    assert found is not None, f"no {kind.__name__} in the status"
    return found


def bad_request_fields(err: grpc.aio.AioRpcError) -> dict[str, str]:
    """field -> description from the status's google.rpc.BadRequest."""
    bad = detail(err, error_details_pb2.BadRequest)
    return {v.field: v.description for v in bad.field_violations}


def error_reason(err: grpc.aio.AioRpcError) -> str | None:
    """The google.rpc.ErrorInfo reason of a failed call, if any."""
    info = find_detail(err, error_details_pb2.ErrorInfo)
    return info.reason if info else None
