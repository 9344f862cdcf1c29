"""Authentication comes before decoding: a caller without a valid key is
refused without its request body ever being parsed, and a known caller's
undecodable body is INVALID_ARGUMENT naming the message type, never UNKNOWN
with an exception class name.

Raw calls send arbitrary bytes: no request serializer, so grpc puts them on
the wire as they are."""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from gateway.auth import AuthInterceptor
from gateway.server import RunningGateway
from tests.auth import DEV_ADMIN_KEY, DEV_KEY, bearer
from tests.conftest import CHANNEL_OPTIONS, GatewayFactory
from tests.streams import collect
from titan.gateway.v1 import admin_service_pb2 as admin_pb
from titan.gateway.v1 import admin_service_pb2_grpc, image_service_pb2_grpc, usage_service_pb2_grpc
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks
from titan.gateway.v1 import usage_service_pb2 as usage_pb

GENERATE = "/titan.gateway.v1.ImageService/GenerateImages"
ESTIMATE = "/titan.gateway.v1.ImageService/EstimateCost"
GET_USAGE = "/titan.gateway.v1.UsageService/GetUsage"
POLICY_STATUS = "/titan.gateway.v1.AdminService/GetPolicyStatus"
STREAMING = {GENERATE}
GARBAGE = b"\xff\xff\xff\xff\x0f"  # a varint that never ends: no parser accepts it

Status = tuple[grpc.StatusCode, str]


def invalid_body(type_name: str) -> str:
    return f"the request body is not a valid {type_name} message"


def metadata(key: str | None) -> tuple[tuple[str, str], ...]:
    return () if key is None else (("authorization", f"Bearer {key}"),)


@pytest.fixture
async def raw(gateway: RunningGateway) -> AsyncIterator[grpc.aio.Channel]:
    """A channel that sends no key of its own."""
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as ch:
        yield ch


async def call_raw(channel: grpc.aio.Channel, method: str, body: bytes, key: str | None) -> Status:
    """Send `body` as the request of `method`; the status the call ends with."""
    try:
        if method in STREAMING:
            async for _ in channel.unary_stream(method)(body, metadata=metadata(key), timeout=30):
                pass
        else:
            await channel.unary_unary(method)(body, metadata=metadata(key), timeout=30)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def text_request(text: str = "a red fox", seed: int = 7) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text=text, negative_text="blurry"),
        config=tasks.ImageGenerationConfig(number_of_images=1, width=512, height=512, seed=seed),
    )


def counting(monkeypatch: pytest.MonkeyPatch, message: Any) -> list[int]:
    """Route `message.FromString` (the gateway's request deserializer, taken when
    it starts) through a wrapper; the returned list grows by one per call."""
    calls: list[int] = []
    original: Callable[[bytes], Any] = message.FromString

    def from_string(raw: bytes) -> Any:
        calls.append(len(raw))
        return original(raw)

    monkeypatch.setattr(message, "FromString", from_string)
    return calls


# (a) ------------------------------------------------------------------------


async def test_no_key_is_refused_before_the_body_is_parsed(
    make_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_calls = counting(monkeypatch, pb.GenerateImagesRequest)
    estimate_calls = counting(monkeypatch, pb.EstimateCostRequest)
    gateway = await make_gateway()
    big = random.Random(1).randbytes(5 * 1024 * 1024)
    valid = text_request().SerializeToString()
    async with grpc.aio.insecure_channel(gateway.address, options=CHANNEL_OPTIONS) as ch:
        for key in (None, "tgw_not_a_key"):
            for method in (GENERATE, ESTIMATE):
                for body in (GARBAGE, big, valid):
                    code, details = await call_raw(ch, method, body, key)
                    assert code == grpc.StatusCode.UNAUTHENTICATED, (key, method, details)
        assert (generate_calls, estimate_calls) == ([], [])
        # The wrappers are on the decoding path: a known caller's body goes through them.
        valid_estimate = pb.EstimateCostRequest(request=text_request()).SerializeToString()
        assert (await call_raw(ch, ESTIMATE, valid_estimate, DEV_KEY))[0] == grpc.StatusCode.OK
    assert len(estimate_calls) == 1


# (b) ------------------------------------------------------------------------

TRUNCATED = text_request().SerializeToString()[:-3]


@pytest.mark.parametrize(
    ("method", "key", "type_name"),
    [
        (GENERATE, DEV_KEY, "titan.gateway.v1.GenerateImagesRequest"),
        (ESTIMATE, DEV_KEY, "titan.gateway.v1.EstimateCostRequest"),
        (GET_USAGE, DEV_KEY, "titan.gateway.v1.GetUsageRequest"),
        (POLICY_STATUS, DEV_ADMIN_KEY, "titan.gateway.v1.GetPolicyStatusRequest"),
    ],
)
@pytest.mark.parametrize("body", [GARBAGE, TRUNCATED], ids=["garbage", "truncated"])
async def test_an_undecodable_body_with_a_key_is_invalid_argument(
    raw: grpc.aio.Channel, method: str, key: str, type_name: str, body: bytes
) -> None:
    code, details = await call_raw(raw, method, body, key)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == invalid_body(type_name)
    for internal in ("Exception", "Error", "<class", "Traceback", "protobuf"):
        assert internal not in details


# (c) ------------------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# The wire type each field of GenerateImagesRequest is written with.
_WIRE_TYPES = {
    field.number: (2 if field.type in (field.TYPE_MESSAGE, field.TYPE_STRING) else 0)
    for field in pb.GenerateImagesRequest.DESCRIPTOR.fields
}


def wrong_wire_type(rng: random.Random) -> bytes:
    """A known field under another wire type (including the invalid 6 and 7)."""
    number = rng.choice(sorted(_WIRE_TYPES))
    wire = rng.choice([w for w in range(8) if w != _WIRE_TYPES[number]])
    payload = {
        0: lambda: varint(rng.getrandbits(40)),
        1: lambda: rng.randbytes(rng.choice([8, 3])),
        2: lambda: varint(rng.randint(0, 64)) + rng.randbytes(rng.randint(0, 16)),
        5: lambda: rng.randbytes(rng.choice([4, 2])),
    }.get(wire, lambda: rng.randbytes(rng.randint(0, 8)))()
    return varint(number << 3 | wire) + payload


def out_of_limits(rng: random.Random) -> bytes:
    """A well-formed request that breaks a model limit (decodes; validation refuses it)."""
    config = tasks.ImageGenerationConfig(
        number_of_images=rng.randint(6, 50), width=rng.randint(1, 255), height=512
    )
    text = "".join(rng.choices("abc xyz", k=rng.randint(513, 900)))
    request = pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text=text), config=config
    )
    return request.SerializeToString()


def fuzzed_bodies(seed: int, count: int) -> list[bytes]:
    """Random bytes, truncated valid requests, wrong wire types and requests
    out of limits, in turn."""
    rng = random.Random(seed)
    valid = text_request("a fox in snow, studio light").SerializeToString()
    bodies = []
    for i in range(count):
        if i % 4 == 0:
            body = rng.randbytes(rng.randint(1, 200))
        elif i % 4 == 1:
            body = valid[: rng.randrange(1, len(valid))]
        elif i % 4 == 2:
            body = wrong_wire_type(rng) + valid[: rng.randrange(0, len(valid))]
        else:
            body = out_of_limits(rng)
        bodies.append(body)
    return bodies


def route(i: int, body: bytes) -> tuple[str, bytes, Any]:
    """Each kind of body to GenerateImages as it is, and to EstimateCost nested
    as its `request` field, in turn."""
    if i // 4 % 2 == 0:
        return GENERATE, body, pb.GenerateImagesRequest
    return ESTIMATE, b"\x0a" + varint(len(body)) + body, pb.EstimateCostRequest


def parses(message: Any, body: bytes) -> bool:
    try:
        message.FromString(body)
    except Exception:
        return False
    return True


async def test_fuzzed_bodies_get_well_defined_statuses_and_the_server_keeps_serving(
    raw: grpc.aio.Channel, stub: image_service_pb2_grpc.ImageServiceStub
) -> None:
    calls = [route(i, body) for i, body in enumerate(fuzzed_bodies(seed=20240607, count=300))]
    undecodable = [not parses(message, body) for _, body, message in calls]
    assert 150 < sum(undecodable) < 250  # the mix exercises both paths

    async def statuses(key: str | None) -> list[Status]:
        out: list[Status] = []
        for start in range(0, len(calls), 50):
            batch = calls[start : start + 50]
            out += await asyncio.gather(*(call_raw(raw, m, body, key) for m, body, _ in batch))
        return out

    anonymous = await statuses(None)
    assert {code for code, _ in anonymous} == {grpc.StatusCode.UNAUTHENTICATED}

    keyed = await statuses(DEV_KEY)
    never = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAUTHENTICATED}
    for (method, _, message), bad, (code, details) in zip(calls, undecodable, keyed, strict=True):
        assert code not in never, (method, code, details)
        if bad:
            type_name = message.DESCRIPTOR.full_name
            assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, invalid_body(type_name))

    result = await collect(stub.GenerateImages(text_request()))
    assert len(result.images) == 1
    assert result.completed.images_delivered == 1


# (d) ------------------------------------------------------------------------


async def test_valid_requests_still_work(
    gateway: RunningGateway, stub: image_service_pb2_grpc.ImageServiceStub
) -> None:
    estimate = await stub.EstimateCost(pb.EstimateCostRequest(request=text_request()))
    assert (estimate.image_count, estimate.width, estimate.height) == (1, 512, 512)

    result = await collect(stub.GenerateImages(text_request(seed=11)))
    assert result.accepted.tenant_id == "dev"
    assert [image.seed for image in result.images.values()] == [11]
    assert result.completed.images_delivered == 1

    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(DEV_KEY)) as ch:
        usage = await usage_service_pb2_grpc.UsageServiceStub(ch).GetUsage(
            usage_pb.GetUsageRequest()
        )
    assert usage.tenant_id == "dev"
    assert usage.window_images == 1

    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(DEV_ADMIN_KEY)) as ch:
        status = await admin_service_pb2_grpc.AdminServiceStub(ch).GetPolicyStatus(
            admin_pb.GetPolicyStatusRequest()
        )
        assert status.status.tenant_count == 1
        admin_on_tenant_rpc = image_service_pb2_grpc.ImageServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await admin_on_tenant_rpc.EstimateCost(pb.EstimateCostRequest(request=text_request()))
        with pytest.raises(grpc.aio.AioRpcError) as streaming:
            await collect(admin_on_tenant_rpc.GenerateImages(text_request()))
    for caught in (unary, streaming):
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "needs a tenant API key" in (caught.value.details() or "")


async def test_a_tenant_key_on_the_admin_service_is_still_permission_denied(
    stub: image_service_pb2_grpc.ImageServiceStub, gateway: RunningGateway
) -> None:
    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(DEV_KEY)) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await admin_service_pb2_grpc.AdminServiceStub(ch).GetPolicyStatus(
                admin_pb.GetPolicyStatusRequest()
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def guard(gateway: RunningGateway, original: Any, key: str | None) -> Any:
    """The handler the interceptor makes of `original` for a call with `key`."""

    async def continuation(details: Any) -> Any:
        return original

    details = SimpleNamespace(method=GENERATE, invocation_metadata=metadata(key))
    return await AuthInterceptor(gateway.policies).intercept_service(continuation, details)


class AbortingContext:
    """Just enough of a grpc.aio context: `abort` records and raises."""

    def __init__(self) -> None:
        self.aborted: Status | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


@pytest.mark.parametrize("key", [None, "tgw_not_a_key"])
async def test_an_unknown_callers_handler_has_no_parser(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    """By construction: the handler grpc gets for an unknown caller drops the
    body, whatever it is, without parsing it."""
    original = grpc.unary_stream_rpc_method_handler(
        lambda request, context: None,
        request_deserializer=pb.GenerateImagesRequest.FromString,
        response_serializer=pb.GenerateImagesResponse.SerializeToString,
    )
    handler = await guard(gateway, original, key)
    calls = counting(monkeypatch, pb.GenerateImagesRequest)
    for body in (GARBAGE, text_request().SerializeToString()):
        assert handler.request_deserializer(body) == b""
    assert calls == []
    assert handler.response_serializer is original.response_serializer
    assert (handler.request_streaming, handler.response_streaming) == (False, True)


@pytest.mark.parametrize("key", [DEV_KEY, DEV_ADMIN_KEY])
async def test_a_known_callers_handler_parses_without_raising(
    gateway: RunningGateway, key: str
) -> None:
    original = grpc.unary_unary_rpc_method_handler(
        lambda request, context: None,
        request_deserializer=pb.EstimateCostRequest.FromString,
        response_serializer=pb.EstimateCostResponse.SerializeToString,
    )
    handler = await guard(gateway, original, key)
    request = pb.EstimateCostRequest(request=text_request())
    assert handler.request_deserializer(request.SerializeToString()) == request
    for body in (GARBAGE, request.SerializeToString()[:-2]):
        assert not isinstance(handler.request_deserializer(body), pb.EstimateCostRequest)
    assert handler.response_serializer is original.response_serializer
    assert (handler.request_streaming, handler.response_streaming) == (False, False)


@pytest.mark.parametrize(
    ("key", "method"),
    [(None, GENERATE), ("tgw_not_a_key", ESTIMATE), (DEV_KEY, GENERATE), (DEV_KEY, ESTIMATE)],
)
async def test_a_refused_body_is_not_kept_alive_by_the_aborted_call(
    raw: grpc.aio.Channel, key: str | None, method: str
) -> None:
    """grpc keeps an aborted call's exception, whose traceback holds the frames
    it went through: a body handed to a behaviour would stay in memory until the
    cyclic GC ran. Ten 4 MB refusals, the GC off, leave no body behind."""
    body = b"\xff" * (4 * 1024 * 1024)  # undecodable from its first byte
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        for _ in range(10):
            code, _ = await call_raw(raw, method, body, key)
            assert code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT)
        retained = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
        gc.enable()
    assert retained < 3 * 1024 * 1024, f"{retained / 2**20:.1f} MiB retained"


@pytest.mark.parametrize(
    ("key", "code"),
    [(None, grpc.StatusCode.UNAUTHENTICATED), (DEV_KEY, grpc.StatusCode.UNIMPLEMENTED)],
)
async def test_a_request_streaming_method_fails_closed(
    gateway: RunningGateway, key: str | None, code: grpc.StatusCode
) -> None:
    """None is served; one added later is refused until auth decodes its stream."""
    reached = []

    async def behaviour(requests: Any, context: Any) -> None:
        reached.append(requests)  # pragma: no cover

    original = grpc.stream_unary_rpc_method_handler(
        behaviour, request_deserializer=pb.GenerateImagesRequest.FromString
    )
    handler = await guard(gateway, original, key)
    assert handler.request_deserializer(GARBAGE) == b""
    assert (handler.request_streaming, handler.response_streaming) == (True, False)
    context = AbortingContext()
    with pytest.raises(grpc.aio.AbortError):
        await handler.stream_unary(iter([GARBAGE]), context)
    assert context.aborted is not None
    assert context.aborted[0] == code
    assert reached == []
