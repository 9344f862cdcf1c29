"""The Bedrock backend: one image per InvokeModel call through aiobotocore.

The body and the reading of a 200 answer belong to the model's dialect
(`gateway.dialects`); this module sends the body to the model's invoke id
(an inference profile such as "us.stability..." where the registry names one)
and maps everything that goes wrong on the way.

botocore's own retries are off; this module retries throttling, 5xx and
connection failures itself, with exponential backoff and full jitter, inside
the caller's deadline. Every Bedrock and transport exception is mapped here,
once, onto `gateway.errors`:

    ThrottlingException (429)              retried -> BackendThrottled
    ModelNotReady / InternalServer /
      ServiceUnavailable / other 5xx /
      connection errors                    retried -> BackendUnavailable
    ValidationException (400)              ContentBlocked if the content filter
                                           refused the input, else
                                           BackendRejected(INVALID_ARGUMENT)
    AccessDeniedException (403)            BackendRejected(PERMISSION_DENIED)
    ResourceNotFoundException (404)        BackendRejected(FAILED_PRECONDITION)
    ServiceQuotaExceededException (400)    BackendRejected(RESOURCE_EXHAUSTED)
    ModelTimeoutException (408)            BackendTimeout
    ModelErrorException (424), unknown     BackendUnavailable
    200 answers                            read by the dialect: ImageFiltered
                                           (output filter), ContentBlocked (a
                                           Stability input filter),
                                           BackendUnavailable (no image)
    the caller's deadline passes           BackendTimeout
"""

from __future__ import annotations

import asyncio
import io
import random
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
import grpc
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from gateway.backends.aws import open_client
from gateway.dialects import GeneratedImage, encode_body, parse_response
from gateway.domain import ImageJob
from gateway.errors import (
    BackendError,
    BackendRejected,
    BackendThrottled,
    BackendTimeout,
    BackendUnavailable,
    ContentBlocked,
    GatewayError,
    ImageFiltered,
)
from gateway.observe import (
    GEN_AI_MODEL,
    GEN_AI_OPERATION,
    GEN_AI_OPERATION_GENERATE_CONTENT,
    GEN_AI_OUTPUT_TYPE,
    GEN_AI_PROVIDER_BEDROCK,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_SEED,
    Observer,
)

__all__ = ["BedrockBackend", "BedrockConfig", "backoff_delay"]

# Generation time is bounded by the caller's deadline (asyncio.timeout), not by
# botocore's 60 s default read timeout, which premium/large images can exceed.
_READ_TIMEOUT = 900.0
# aiohttp's TOO_LARGE_BYTES_BODY: above it a raw bytes body draws a warning.
_RAW_BODY_LIMIT = 1 << 20
_CONTENT_FILTER = "blocked by our content filters"
_THROTTLED = "ThrottlingException"
_RETRYABLE_CODES = frozenset(
    {_THROTTLED, "ModelNotReadyException", "InternalServerException", "ServiceUnavailableException"}
)
# Transport failures worth another attempt. botocore wraps aiohttp's errors in
# ConnectionError (connect, TLS, proxy) or HTTPClientError (disconnects, read
# timeouts, body streaming); aiohttp's own can still escape while reading.
_CONNECTION_ERRORS = (
    BotoConnectionError,
    HTTPClientError,
    IncompleteReadError,
    aiohttp.ClientError,
)


@dataclass(frozen=True)
class BedrockConfig:
    """Where and how the backend calls Bedrock."""

    region: str = "us-east-1"
    endpoint_url: str | None = None  # e.g. the emulator's URL
    max_connections: int = 64  # aiobotocore connection pool size
    max_attempts: int = 4  # total attempts per image (1 = no retry)
    backoff_base: float = 0.2  # seconds; exponential with full jitter
    backoff_max: float = 5.0
    connect_timeout: float = 5.0


class _Transient(Exception):
    """One failed attempt that may succeed if tried again; `error` is raised if not."""

    def __init__(self, error: BackendError, *, throttled: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.throttled = throttled


class BedrockBackend:
    """`gateway.backends.base.Backend` over one shared bedrock-runtime client."""

    def __init__(
        self,
        config: BedrockConfig,
        *,
        rng: random.Random | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._config = config
        self._rng = rng or random.Random()
        self._observer = observer or Observer.noop()
        self._stack: AsyncExitStack | None = None
        self._client: Any = None  # aiobotocore is untyped
        self.retries = 0  # attempts repeated after a transient failure
        self.throttles = 0  # ThrottlingException responses seen

    async def start(self) -> None:
        """Create the shared client; credentials come from the standard AWS chain."""
        if self._client is not None:
            return
        self._client, self._stack = await open_client(
            "bedrock-runtime",
            region=self._config.region,
            endpoint_url=self._config.endpoint_url,
            config=self._botocore_config(),
            dummy_key="emulator",
        )

    @property
    def client(self) -> Any:
        """The shared aiobotocore bedrock-runtime client; None before start() and after close()."""
        return self._client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> BedrockBackend:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # The Backend protocol takes the caller's remaining deadline as a number.
    async def generate_one(
        self,
        job: ImageJob,
        index: int,
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> GeneratedImage:
        """Image `index` of `job`, retried within `timeout` seconds; see the module docstring."""
        if self._client is None:
            raise RuntimeError("BedrockBackend.start() must be awaited before generate_one()")
        body = encode_body(job, index)
        deadline = asyncio.get_running_loop().time() + timeout
        model = job.model.model_id
        with self._observer.tracer.start_as_current_span(
            f"{GEN_AI_OPERATION_GENERATE_CONTENT} {model}",
            kind=SpanKind.CLIENT,
            attributes={
                GEN_AI_PROVIDER_NAME: GEN_AI_PROVIDER_BEDROCK,
                GEN_AI_OPERATION: GEN_AI_OPERATION_GENERATE_CONTENT,
                GEN_AI_MODEL: model,
                GEN_AI_OUTPUT_TYPE: "image",
                GEN_AI_REQUEST_SEED: job.seed_for(index),
                "titan.task_type": job.task_type.value,
                "titan.image_index": index,
            },
        ):
            began, outcome = time.perf_counter(), "failed"
            try:
                async with asyncio.timeout_at(deadline):
                    image = await self._invoke_with_retries(job, body, deadline)
                outcome = "ok"
                return image
            except TimeoutError as exc:
                message = f"Bedrock did not return image {index} within {timeout:g}s"
                raise BackendTimeout(message) from exc
            except ImageFiltered:
                outcome = "filtered"
                raise
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            finally:
                self._observer.instruments.backend_duration(
                    time.perf_counter() - began,
                    model,
                    outcome,  # type: ignore[arg-type]
                )

    async def _invoke_with_retries(
        self, job: ImageJob, body: bytes, deadline: float
    ) -> GeneratedImage:
        attempt = 1
        while True:
            try:
                return await self._invoke_once(job, body)
            except _Transient as transient:
                self.throttles += int(transient.throttled)
                self._count_failure(job.model.model_id, transient)
                delay = self._retry_delay(attempt, deadline)
                if delay is None:
                    raise transient.error from transient.__cause__
                trace.get_current_span().add_event(
                    "retry",
                    {"attempt": attempt, "delay_s": delay, "error": transient.error.message},
                )
            await asyncio.sleep(delay)
            self.retries += 1
            attempt += 1

    def _count_failure(self, model_id: str, transient: _Transient) -> None:
        instruments = self._observer.instruments
        if transient.throttled:
            instruments.backend_throttle(model_id)
        instruments.backend_retry(model_id, "throttled" if transient.throttled else "unavailable")

    def _retry_delay(self, attempt: int, deadline: float) -> float | None:
        """The sleep before the next attempt, or None to give up now.

        Gives up when the attempts are spent or when the sleep would reach the
        deadline: the last Bedrock error then says more than a timeout would.
        """
        if attempt >= self._config.max_attempts:
            return None
        delay = backoff_delay(attempt, self._config, self._rng)
        if asyncio.get_running_loop().time() + delay >= deadline:
            return None
        return delay

    async def _invoke_once(self, job: ImageJob, body: bytes) -> GeneratedImage:
        # The id Bedrock is asked for (and names in its errors): the
        # registry's inference profile where it has one.
        model_id = job.model.invoke_model_id
        try:
            response = await self._client.invoke_model(
                modelId=model_id,
                # Bytes up to 1 MiB (aiohttp writes them at once); a file
                # object, fresh per attempt, above: aiohttp warns (and blocks
                # the loop) when handed a raw bytes body over 1 MiB. The file
                # costs ~0.1 ms of CPU more per call (read in chunks).
                body=body if len(body) <= _RAW_BODY_LIMIT else io.BytesIO(body),
                contentType="application/json",
                accept="application/json",
            )
            async with response["body"] as stream:
                payload = await stream.read()
        except ClientError as exc:
            raise _map_client_error(exc, model_id) from exc
        except _CONNECTION_ERRORS as exc:
            error = BackendUnavailable(f"cannot reach Bedrock: {exc}")
            raise _Transient(error) from exc
        except NoCredentialsError as exc:
            message = "the gateway found no AWS credentials (standard AWS credential chain)"
            raise BackendRejected(message, grpc.StatusCode.FAILED_PRECONDITION) from exc
        return parse_response(job, payload)

    def _botocore_config(self) -> Config:
        return Config(
            max_pool_connections=self._config.max_connections,
            connect_timeout=self._config.connect_timeout,
            read_timeout=_READ_TIMEOUT,
            # botocore's retries off: `max_attempts` there counts *retries*, so
            # {"max_attempts": 1} would still retry once; total_max_attempts is total.
            retries={"total_max_attempts": 1, "mode": "standard"},
        )


def backoff_delay(attempt: int, config: BedrockConfig, rng: random.Random) -> float:
    """Full-jitter backoff before retry number `attempt` (1-based)."""
    ceiling = min(config.backoff_max, config.backoff_base * 2 ** (attempt - 1))
    return rng.uniform(0.0, ceiling)


def _map_client_error(exc: ClientError, model_id: str) -> Exception:
    """A Bedrock error response as a gateway error, or `_Transient` if worth retrying."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    message = str(exc.response.get("Error", {}).get("Message", "")) or code
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    if code in _RETRYABLE_CODES or status >= 500:
        error_type = BackendThrottled if code == _THROTTLED else BackendUnavailable
        return _Transient(error_type(f"{code}: {message}"), throttled=code == _THROTTLED)
    handler = _NON_RETRYABLE.get(code)
    if handler is None:
        return BackendUnavailable(f"unexpected Bedrock error {code or status}: {message}")
    return handler(message, model_id)


def _validation(message: str, model_id: str) -> GatewayError:
    if _CONTENT_FILTER in message.lower():
        return ContentBlocked(message)
    return BackendRejected(message, grpc.StatusCode.INVALID_ARGUMENT)


def _access_denied(message: str, model_id: str) -> GatewayError:
    text = f"the gateway's AWS identity may not invoke model {model_id}: {message}"
    return BackendRejected(text, grpc.StatusCode.PERMISSION_DENIED)


def _not_found(message: str, model_id: str) -> GatewayError:
    text = f"model {model_id} is not available in this region/account: {message}"
    return BackendRejected(text, grpc.StatusCode.FAILED_PRECONDITION)


def _quota(message: str, model_id: str) -> GatewayError:
    return BackendRejected(message, grpc.StatusCode.RESOURCE_EXHAUSTED)


def _model_timeout(message: str, model_id: str) -> GatewayError:
    return BackendTimeout(f"the model timed out: {message}")


def _model_error(message: str, model_id: str) -> GatewayError:
    return BackendUnavailable(f"the model failed: {message}")


_NON_RETRYABLE: dict[str, Callable[[str, str], GatewayError]] = {
    "ValidationException": _validation,
    "AccessDeniedException": _access_denied,
    "ResourceNotFoundException": _not_found,
    "ServiceQuotaExceededException": _quota,
    "ModelTimeoutException": _model_timeout,
    "ModelErrorException": _model_error,
}
