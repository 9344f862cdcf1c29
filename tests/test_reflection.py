"""Server reflection as a client without the generated stubs sees it.

The client here speaks `grpc.reflection.v1` from its own copy of the protocol
(compiled from the text below, not from grpcio-reflection's v1alpha module):
it lists the services, fetches the file declaring GenerateImagesRequest,
builds messages from it in a pool of its own and calls EstimateCost through a
generic `unary_unary`. v1alpha still answers, and the protos' comments arrive
when the gateway has a FileDescriptorSet that matches its stubs.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha

from gateway import server as gateway_server
from gateway.reflection import V1, V1ALPHA, ReflectionServicer
from tests.auth import DEV_KEY, bearer
from tests.conftest import TITAN_V2

REPO = Path(__file__).resolve().parents[1]
PROTO_ROOT = REPO / "protos"
PROTOS = "titan/gateway/v1/*.proto"  # what `make gen` compiles
REQUEST_TYPE = "titan.gateway.v1.GenerateImagesRequest"
IMAGE_SERVICE = "titan.gateway.v1.ImageService"
V1_PACKAGE = "grpc.reflection.v1"
EXPECTED_SERVICES = {
    IMAGE_SERVICE,
    "titan.gateway.v1.UsageService",
    "titan.gateway.v1.AdminService",
    "grpc.health.v1.Health",
    V1,
    V1ALPHA,
}

# grpc/reflection/v1/reflection.proto (grpc/grpc-proto), messages and fields only.
V1_PROTO = """
syntax = "proto3";
package grpc.reflection.v1;
service ServerReflection {
  rpc ServerReflectionInfo(stream ServerReflectionRequest)
      returns (stream ServerReflectionResponse);
}
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    ExtensionRequest file_containing_extension = 5;
    string all_extension_numbers_of_type = 6;
    string list_services = 7;
  }
}
message ExtensionRequest {
  string containing_type = 1;
  int32 extension_number = 2;
}
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ExtensionNumberResponse all_extension_numbers_response = 5;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ExtensionNumberResponse {
  string base_type_name = 1;
  repeated int32 extension_number = 2;
}
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ServiceResponse { string name = 1; }
message ErrorResponse {
  int32 error_code = 1;
  string error_message = 2;
}
"""


def _protoc(args: list[str]) -> None:
    """grpc_tools' protoc, with the well-known types on the path (as
    ``python -m grpc_tools.protoc``, which the Makefile runs, has them)."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    assert protoc.main(["protoc", f"-I{well_known}", *args]) == 0, args


def _descriptor_set(path: Path) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


@pytest.fixture(scope="module")
def v1_protocol(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Message classes of reflection v1, compiled from `V1_PROTO` into a pool
    of their own."""
    root = tmp_path_factory.mktemp("v1")
    (root / "grpc/reflection/v1").mkdir(parents=True)
    (root / "grpc/reflection/v1/reflection.proto").write_text(V1_PROTO, encoding="utf-8")
    out = root / "v1.binpb"
    _protoc([f"-I{root}", f"--descriptor_set_out={out}", "grpc/reflection/v1/reflection.proto"])
    pool = descriptor_pool.DescriptorPool()
    (file,) = _descriptor_set(out).file
    pool.Add(file)

    def cls(name: str) -> Any:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{V1_PACKAGE}.{name}"))

    return SimpleNamespace(
        pool=pool,
        file=file,
        Request=cls("ServerReflectionRequest"),
        Response=cls("ServerReflectionResponse"),
    )


@pytest.fixture(scope="module")
def descriptor_set(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What the build writes next to the stubs: the gateway's protos with
    their imports and source info (comments)."""
    out = tmp_path_factory.mktemp("set") / "descriptor_set.binpb"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.glob(PROTOS))
    _protoc(
        [
            f"-I{PROTO_ROOT}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *protos,
        ]
    )
    return out.read_bytes()


async def ask(channel: grpc.aio.Channel, protocol: SimpleNamespace, **request: Any) -> Any:
    """One request on a v1 ServerReflectionInfo stream, and its one answer."""
    call = channel.stream_stream(
        f"/{V1}/ServerReflectionInfo",
        request_serializer=protocol.Request.SerializeToString,
        response_deserializer=protocol.Response.FromString,
    )
    replies = [reply async for reply in call(iter([protocol.Request(**request)]))]
    assert len(replies) == 1
    return replies[0]


def pool_of(files: Iterable[bytes]) -> descriptor_pool.DescriptorPool:
    """A fresh pool holding `files` (serialized, any order): what a client
    without the generated stubs builds from reflection."""
    pending = {p.name: p for p in map(descriptor_pb2.FileDescriptorProto.FromString, files)}
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()
    while pending:
        ready = [p for p in pending.values() if set(p.dependency) <= added]
        assert ready, f"unresolvable imports among {sorted(pending)}"
        for proto in ready:
            pool.Add(proto)
            added.add(proto.name)
            del pending[proto.name]
    return pool


async def test_v1_lists_every_service(channel, v1_protocol) -> None:
    reply = await ask(channel, v1_protocol, list_services="")
    assert {s.name for s in reply.list_services_response.service} == EXPECTED_SERVICES


async def test_v1alpha_still_answers_the_same(channel) -> None:
    stub = channel.stream_stream(
        f"/{V1ALPHA}/ServerReflectionInfo",
        request_serializer=v1alpha.ServerReflectionRequest.SerializeToString,
        response_deserializer=v1alpha.ServerReflectionResponse.FromString,
    )
    replies = [r async for r in stub(iter([v1alpha.ServerReflectionRequest(list_services="")]))]
    assert {s.name for s in replies[0].list_services_response.service} == EXPECTED_SERVICES


async def test_a_client_without_stubs_calls_estimate_cost(gateway, v1_protocol) -> None:
    async with grpc.aio.insecure_channel(gateway.address) as anonymous:  # reflection is public
        reply = await ask(anonymous, v1_protocol, file_containing_symbol=REQUEST_TYPE)
    files = reply.file_descriptor_response.file_descriptor_proto
    pool = pool_of(files)
    service = pool.FindServiceByName(IMAGE_SERVICE)
    method = service.methods_by_name["EstimateCost"]
    request_class = message_factory.GetMessageClass(method.input_type)
    reply_class = message_factory.GetMessageClass(method.output_type)
    job = message_factory.GetMessageClass(pool.FindMessageTypeByName(REQUEST_TYPE))()
    job.text_to_image.text = "a red fox"
    job.config.number_of_images = 2
    job.config.width, job.config.height = 1024, 1024
    assert job.DESCRIPTOR.file.pool is pool  # not the generated stubs' classes

    async with grpc.aio.insecure_channel(gateway.address, interceptors=bearer(DEV_KEY)) as ch:
        estimate = ch.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=reply_class.FromString,
        )
        answer = await estimate(request_class(request=job))

    assert answer.DESCRIPTOR.file.pool is pool
    assert (answer.model_id, answer.image_count, answer.width) == (TITAN_V2, 2, 1024)
    assert answer.estimated_cost_micros == 2 * answer.price_per_image_micros > 0


async def test_v1_describes_itself_as_the_published_protocol(channel, v1_protocol) -> None:
    reply = await ask(channel, v1_protocol, file_containing_symbol=V1)
    (served,) = map(
        descriptor_pb2.FileDescriptorProto.FromString,
        reply.file_descriptor_response.file_descriptor_proto,
    )
    assert (served.name, served.package) == ("grpc/reflection/v1/reflection.proto", V1_PACKAGE)

    def shape(file: descriptor_pb2.FileDescriptorProto) -> object:
        messages = {
            m.name: {(f.name, f.number, f.type, f.type_name, f.label) for f in m.field}
            for m in file.message_type
        }
        methods = {(m.name, m.input_type, m.output_type) for s in file.service for m in s.method}
        return messages, methods

    assert shape(served) == shape(v1_protocol.file)


async def test_an_unknown_symbol_is_not_found(channel, v1_protocol) -> None:
    reply = await ask(channel, v1_protocol, file_containing_symbol="titan.gateway.v1.Nope")
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def _comment_of(file: descriptor_pb2.FileDescriptorProto, message: str) -> str:
    index = [m.name for m in file.message_type].index(message)
    path = [descriptor_pb2.FileDescriptorProto.MESSAGE_TYPE_FIELD_NUMBER, index]
    comments = [
        loc.leading_comments for loc in file.source_code_info.location if list(loc.path) == path
    ]
    return comments[0] if comments else ""


async def test_comments_are_served_when_the_build_shipped_them(
    make_gateway, v1_protocol, descriptor_set, monkeypatch
) -> None:
    if (
        "titan/gateway/v1/image_service.proto"
        not in ReflectionServicer((), descriptor_set).files_with_comments
    ):
        pytest.skip("protos/ changed since the stubs were generated (make gen)")
    monkeypatch.setattr(gateway_server, "shipped_descriptor_set", lambda: descriptor_set)
    gw = await make_gateway()
    async with grpc.aio.insecure_channel(gw.address) as channel:
        reply = await ask(channel, v1_protocol, file_containing_symbol=REQUEST_TYPE)
    files = {
        f.name: f
        for f in map(
            descriptor_pb2.FileDescriptorProto.FromString,
            reply.file_descriptor_response.file_descriptor_proto,
        )
    }
    comment = _comment_of(files["titan/gateway/v1/image_service.proto"], "GenerateImagesRequest")
    assert "one image job" in comment
    assert files["titan/gateway/v1/tasks.proto"].source_code_info.location
    pool_of(f.SerializeToString() for f in files.values())  # still a valid set of files


def test_a_file_that_no_longer_matches_the_stubs_is_served_without_comments(
    descriptor_set,
) -> None:
    stale = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    (image_service,) = [f for f in stale.file if f.name.endswith("image_service.proto")]
    image_service.message_type[0].field[0].name = "renamed_since"
    servicer = ReflectionServicer((), stale.SerializeToString())

    assert "titan/gateway/v1/image_service.proto" not in servicer.files_with_comments
    reply = servicer.answer(v1alpha.ServerReflectionRequest(file_containing_symbol=REQUEST_TYPE))
    served = {
        f.name: f
        for f in map(
            descriptor_pb2.FileDescriptorProto.FromString,
            reply.file_descriptor_response.file_descriptor_proto,
        )
    }
    assert not served["titan/gateway/v1/image_service.proto"].source_code_info.location
    assert served["titan/gateway/v1/image_service.proto"].message_type[0].field[0].name != (
        "renamed_since"
    )


def test_without_a_descriptor_set_files_come_from_the_stubs() -> None:
    servicer = ReflectionServicer(())
    reply = servicer.answer(v1alpha.ServerReflectionRequest(file_by_filename="nope.proto"))
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    reply = servicer.answer(v1alpha.ServerReflectionRequest(file_containing_symbol=REQUEST_TYPE))
    names = {
        descriptor_pb2.FileDescriptorProto.FromString(f).name
        for f in reply.file_descriptor_response.file_descriptor_proto
    }
    assert "titan/gateway/v1/image_service.proto" in names
    assert servicer.files_with_comments == frozenset()
