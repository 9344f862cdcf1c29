"""Server reflection: `grpc.reflection.v1` and `grpc.reflection.v1alpha`, with
the protos' comments when the build shipped them.

grpcio-reflection serves only v1alpha (grpc/grpc#38576), and serves each file
as its `DescriptorPool` holds it, which never has `source_code_info`: the
generated ``_pb2`` modules strip it, and the (upb) pool drops it even from a
FileDescriptorSet built with ``--include_source_info``. So this servicer:

- answers both protocols. They are the same messages, field for field, under
  two package names, so one servicer speaking v1alpha's generated messages
  serves both wire formats; clients asking reflection to describe itself get
  a v1 file descriptor derived from the v1alpha one.
- finds every symbol in the default pool (what the servicers really run),
  and sends each file as it appears in the FileDescriptorSet given to it (the
  build writes ``titan/gateway/v1/descriptor_set.binpb`` with
  ``protoc --include_imports --include_source_info``), comments included,
  provided that file matches the running stubs; otherwise, and for the files
  the set does not hold (health, reflection), as the pool has it.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Final

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection_pb2 as pb
from grpc_reflection.v1alpha import reflection_pb2_grpc

log = logging.getLogger(__name__)

V1ALPHA: Final = "grpc.reflection.v1alpha.ServerReflection"
V1: Final = "grpc.reflection.v1.ServerReflection"
#: The FileDescriptorSet with comments, next to the generated stubs.
DESCRIPTOR_SET_PACKAGE: Final = "titan.gateway.v1"
DESCRIPTOR_SET_NAME: Final = "descriptor_set.binpb"

_METHOD: Final = "ServerReflectionInfo"
_V1_FILE: Final = "grpc/reflection/v1/reflection.proto"


def shipped_descriptor_set() -> bytes | None:
    """The FileDescriptorSet the build wrote next to the stubs, if it did."""
    try:
        resource = importlib.resources.files(DESCRIPTOR_SET_PACKAGE) / DESCRIPTOR_SET_NAME
        return resource.read_bytes() if resource.is_file() else None
    except (ModuleNotFoundError, OSError):
        return None


def enable_reflection(
    server: grpc.aio.Server, service_names: Iterable[str], descriptor_set: bytes | None = None
) -> ReflectionServicer:
    """Serve reflection v1 and v1alpha on `server`, listing `service_names`
    and both reflection services; `descriptor_set` supplies the comments."""
    servicer = ReflectionServicer((*service_names, V1, V1ALPHA), descriptor_set)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)  # v1alpha
    v1 = grpc.method_handlers_generic_handler(
        V1,
        {
            _METHOD: grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=pb.ServerReflectionRequest.FromString,
                response_serializer=pb.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))
    return servicer


class ReflectionServicer:
    """The ServerReflectionInfo stream of both protocol versions."""

    def __init__(self, service_names: Iterable[str], descriptor_set: bytes | None = None) -> None:
        self._service_names = tuple(sorted(set(service_names)))
        self._pool = descriptor_pool.Default()
        # The derived v1 reflection file lives in a pool of its own: adding it
        # to the default one could clash with a future grpcio-reflection v1.
        self._own_pool = descriptor_pool.DescriptorPool()
        self._own_pool.Add(_v1_reflection_file())
        self._with_comments = _matching_files(descriptor_set, self._pool) if descriptor_set else {}

    @property
    def files_with_comments(self) -> frozenset[str]:
        """The files served with their source info (comments)."""
        return frozenset(self._with_comments)

    async def ServerReflectionInfo(
        self, requests: AsyncIterator[pb.ServerReflectionRequest], context: Any
    ) -> AsyncIterator[pb.ServerReflectionResponse]:
        async for request in requests:
            yield self.answer(request)

    def answer(self, request: pb.ServerReflectionRequest) -> pb.ServerReflectionResponse:
        """The response to one request of the stream."""
        kind = request.WhichOneof("message_request")
        try:
            if kind == "list_services":
                services = [pb.ServiceResponse(name=name) for name in self._service_names]
                return pb.ServerReflectionResponse(
                    original_request=request,
                    list_services_response=pb.ListServiceResponse(service=services),
                )
            if kind == "all_extension_numbers_of_type":
                return self._extension_numbers(request)
            if kind == "file_by_filename":
                return self._files(request, self._file("FindFileByName", request.file_by_filename))
            if kind == "file_containing_symbol":
                symbol = request.file_containing_symbol
                return self._files(request, self._file("FindFileContainingSymbol", symbol))
            if kind == "file_containing_extension":
                return self._files(request, self._file_of_extension(request))
        except KeyError:
            return _error(request, grpc.StatusCode.NOT_FOUND)
        return _error(request, grpc.StatusCode.INVALID_ARGUMENT)

    def _file(self, lookup: str, key: str) -> FileDescriptor:
        """`pool.<lookup>(key)` in the default pool, else in our own (v1 reflection)."""
        try:
            found: FileDescriptor = getattr(self._pool, lookup)(key)
        except KeyError:
            found = getattr(self._own_pool, lookup)(key)
        return found

    def _file_of_extension(self, request: pb.ServerReflectionRequest) -> FileDescriptor:
        wanted = request.file_containing_extension
        message = self._pool.FindMessageTypeByName(wanted.containing_type)
        extension = self._pool.FindExtensionByNumber(message, wanted.extension_number)
        return self._file("FindFileContainingSymbol", extension.full_name)

    def _extension_numbers(
        self, request: pb.ServerReflectionRequest
    ) -> pb.ServerReflectionResponse:
        message = self._pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
        numbers = sorted(e.number for e in self._pool.FindAllExtensions(message))
        return pb.ServerReflectionResponse(
            original_request=request,
            all_extension_numbers_response=pb.ExtensionNumberResponse(
                base_type_name=message.full_name, extension_number=numbers
            ),
        )

    def _files(
        self, request: pb.ServerReflectionRequest, file: FileDescriptor
    ) -> pb.ServerReflectionResponse:
        """`file` and everything it imports, transitively, `file` first."""
        files: dict[str, FileDescriptor] = {}
        pending = [file]
        while pending:
            current = pending.pop()
            if current.name not in files:
                files[current.name] = current
                pending.extend(current.dependencies)
        serialized = [self._serialized(f) for f in files.values()]
        return pb.ServerReflectionResponse(
            original_request=request,
            file_descriptor_response=pb.FileDescriptorResponse(file_descriptor_proto=serialized),
        )

    def _serialized(self, file: FileDescriptor) -> bytes:
        if file.name in self._with_comments:
            return self._with_comments[file.name]
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        return proto.SerializeToString()


def _error(
    request: pb.ServerReflectionRequest, code: grpc.StatusCode
) -> pb.ServerReflectionResponse:
    return pb.ServerReflectionResponse(
        original_request=request,
        error_response=pb.ErrorResponse(error_code=code.value[0], error_message=code.value[1]),
    )


def _matching_files(
    descriptor_set: bytes, pool: descriptor_pool.DescriptorPool
) -> Mapping[str, bytes]:
    """The set's files that describe exactly what `pool` holds, serialized.

    A set older or newer than the stubs (protos edited without `make gen`)
    would describe fields the server does not have: such a file is served
    from the pool instead, without comments, and logged.
    """
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file
    matching: dict[str, bytes] = {}
    for proto in files:
        try:
            running = pool.FindFileByName(proto.name)
        except KeyError:  # not imported by the server: nobody can ask for it
            continue
        served = descriptor_pb2.FileDescriptorProto()
        running.CopyToProto(served)
        if _comparable(served) == _comparable(proto):
            matching[proto.name] = proto.SerializeToString()
        else:
            log.warning(
                "reflection: %s in the descriptor set differs from the running stubs "
                "(regenerate with `make gen`); serving it without comments",
                proto.name,
            )
    return matching


def _comparable(proto: descriptor_pb2.FileDescriptorProto) -> bytes:
    """`proto` without what the Python stubs never keep: source info and
    json_name (protoc's Python generator strips both)."""
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(proto)
    copy.ClearField("source_code_info")
    fields = [*copy.extension]
    messages = [*copy.message_type]
    while messages:
        message = messages.pop()
        fields.extend((*message.field, *message.extension))
        messages.extend(message.nested_type)
    for field in fields:
        field.ClearField("json_name")
    return copy.SerializeToString(deterministic=True)


def _v1_reflection_file() -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1/reflection.proto, from the v1alpha file: the same
    messages and field numbers, the v1 package and options."""
    proto = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(proto)
    old, new = f".{proto.package}.", ".grpc.reflection.v1."
    proto.name, proto.package = _V1_FILE, "grpc.reflection.v1"
    proto.options.ClearField("deprecated")
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old) :]
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old) :]
            method.output_type = new + method.output_type[len(old) :]
    return proto
