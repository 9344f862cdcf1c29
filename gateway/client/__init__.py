"""The Python client of the gateway: `AsyncGatewayClient` for asyncio code,
`GatewayClient` for plain scripts, with the same methods and arguments.

    from gateway.client import GatewayClient, ClientError
    from titan.gateway.v1 import image_service_pb2 as pb, tasks_pb2 as tasks

    request = pb.GenerateImagesRequest(text_to_image=tasks.TextToImageTask(text="a red fox"))
    with GatewayClient("127.0.0.1:50051", api_key="tgw_…") as gw:
        result = gw.generate_images(request)

Requests and responses are the protobuf messages of `titan.gateway.v1`.
Every failed call raises one exception type, so callers need not import grpc:

    ClientError                code, message, unreachable
      .violations              google.rpc.BadRequest field violations
      .error_info              google.rpc.ErrorInfo (reason, domain, metadata)
      .quota_violations        google.rpc.QuotaFailure
      .retry_delay             google.rpc.RetryInfo, as a timedelta
      .precondition_violations google.rpc.PreconditionFailure

The gateway's own command line (`python -m gateway …`) is built on
`AsyncGatewayClient`.
"""

from gateway.client._async import AsyncGatewayClient
from gateway.client._calls import GenerateResult
from gateway.client._channel import CHANNEL_OPTIONS, DEFAULT_TARGET, TLS
from gateway.client._errors import (
    ClientError,
    ErrorInfo,
    FieldViolation,
    PreconditionViolation,
    QuotaViolation,
)
from gateway.client._sync import GatewayClient

__all__ = [
    "CHANNEL_OPTIONS",
    "DEFAULT_TARGET",
    "TLS",
    "AsyncGatewayClient",
    "ClientError",
    "ErrorInfo",
    "FieldViolation",
    "GatewayClient",
    "GenerateResult",
    "PreconditionViolation",
    "QuotaViolation",
]
