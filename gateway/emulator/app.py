"""The emulator's HTTP server: bedrock-runtime InvokeModel over aiohttp.

It answers exactly what botocore's rest-json parser expects, so the real
aiobotocore client (and therefore the gateway's real Bedrock code path) runs
against it unchanged. ``Emulator`` wraps the server with hooks tests need:
live stats, a hold/release gate, and a replaceable config.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from gateway.emulator.config import EmulatorConfig
from gateway.emulator.errors import (
    INTERNAL,
    INTERNAL_MESSAGE,
    MODEL_ERRORS,
    MODEL_NOT_FOUND_MESSAGE,
    NOT_FOUND,
    UNKNOWN_OPERATION,
    EmulatorError,
    validation,
)
from gateway.emulator.guardrail import apply_guardrail, guardrail_target
from gateway.emulator.models import MAX_BODY_BYTES, ModelSpec, StabilitySpec, resolve_model
from gateway.emulator.policy import (
    FaultInjector,
    Throttle,
    check_input_filter,
    latency_seconds,
    output_filter,
    stability_input_reason,
    stability_output_reason,
)
from gateway.emulator.render import RenderResult, render
from gateway.emulator.rules import ValidatedRequest, validate_request
from gateway.emulator.stability import IMAGE_KEYS as STABILITY_IMAGE_KEYS
from gateway.emulator.stability import StabilityRequest, validate_stability
from gateway.emulator.stability_render import render_stability

log = logging.getLogger(__name__)

_INVOKE_PATH = re.compile(r"^/model/([^/]+)/invoke$")
_IMAGE_KEYS = frozenset(
    {
        "image",
        "maskImage",
        "conditionImage",
        "referenceImage",
        "images",
        "sourceImage",
        *STABILITY_IMAGE_KEYS,
    }
)
MALFORMED_BODY_MESSAGE = "Malformed input request, please reformat your input and try again."


@dataclass
class EmulatorStats:
    """What the emulator has seen; tests read it to check the gateway's behaviour."""

    calls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    status_counts: Counter[int] = field(default_factory=Counter)
    images_returned: int = 0
    disconnected: int = 0  # requests whose client went away before the answer
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # The model ids exactly as callers sent them (a `us.` profile, an ARN…),
    # in the order of `received`.
    invoked: list[str] = field(default_factory=list)
    # ApplyGuardrail requests (also counted in `calls`): (id, version, body) each.
    guardrail_calls: int = 0
    guardrail_received: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def reset(self) -> None:
        """Forget history; in_flight stays true to the requests still running."""
        self.calls = 0
        self.max_in_flight = self.in_flight
        self.status_counts.clear()
        self.images_returned = 0
        self.disconnected = 0
        self.received.clear()
        self.invoked.clear()
        self.guardrail_calls = 0
        self.guardrail_received.clear()


def elide_images(value: Any, key: str | None = None) -> Any:
    """A copy of a request body with base64 images replaced by a short marker."""
    if isinstance(value, dict):
        return {k: elide_images(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [elide_images(v, key) for v in value]
    if key in _IMAGE_KEYS and isinstance(value, str):
        return f"<image: {len(value)} base64 chars>"
    return value


def json_response(body: dict[str, Any], status: int = 200, **headers: str) -> web.Response:
    """JSON with Bedrock's bare ``Content-Type: application/json`` (no charset) and a request id."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={
            "Content-Type": "application/json",
            "x-amzn-RequestId": str(uuid.uuid4()),
            **headers,
        },
    )


def error_response(error: EmulatorError) -> web.Response:
    """The error wire format botocore's rest-json parser maps to exception classes."""
    return json_response(
        {"message": error.message}, error.status, **{"x-amzn-ErrorType": error.error_type}
    )


def success_response(result: RenderResult, error: str | None) -> web.Response:
    body: dict[str, Any] = {"images": [base64.b64encode(img).decode() for img in result.images]}
    if error is not None:
        body["error"] = error
    if result.mask is not None:
        body["maskImage"] = base64.b64encode(result.mask).decode()
    return json_response(body)


class Emulator:
    """A local Bedrock for image models, on a loopback port."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self._config = config or EmulatorConfig()
        self.stats = EmulatorStats()
        self.url = ""
        self._faults = FaultInjector(self._config.fault_seed)
        self._throttle = Throttle()
        self._gate = asyncio.Event()
        self._gate.set()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def config(self) -> EmulatorConfig:
        return self._config

    @config.setter
    def config(self, config: EmulatorConfig) -> None:
        """Swap behaviour at runtime; a new quota or fault seed starts from a clean slate."""
        old, self._config = self._config, config
        if (old.fault_seed, old.fault_rate) != (config.fault_seed, config.fault_rate):
            self._faults = FaultInjector(config.fault_seed)
        if old.images_per_minute != config.images_per_minute:
            self._throttle.reset()

    def make_app(self) -> web.Application:
        """The aiohttp application (one catch-all route so every error is Bedrock-shaped)."""
        app = web.Application(client_max_size=MAX_BODY_BYTES + 1)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = any free port); return the endpoint URL."""
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        # handler_cancellation: a request whose client disconnects stops being
        # "in flight" at once, so tests can see the gateway cancel its calls.
        runner = web.AppRunner(
            self.make_app(), access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{url_host}:{bound_port}"
        log.info("Bedrock emulator listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        """Release held requests and shut the server down."""
        self.release()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def hold(self) -> None:
        """From now on, requests wait (after being counted in flight) until release()."""
        self._gate.clear()

    def release(self) -> None:
        """Let held and future requests proceed."""
        self._gate.set()

    async def wait_in_flight(self, n: int, timeout: float = 10.0) -> bool:  # noqa: ASYNC109
        """Wait until at least `n` requests are in flight; False on timeout.

        Takes a timeout (rather than leaving it to the caller) so a test that
        waits for concurrency that never comes fails with False, not a hang.
        """
        try:
            async with asyncio.timeout(timeout):
                while self.stats.in_flight < n:
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def _set_in_flight(self, delta: int) -> None:
        """Synchronous, so it also runs in a cancelled handler's cleanup."""
        self.stats.in_flight += delta
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()  # wakes every waiter; they re-check and wait on the new event

    async def _handle(self, request: web.Request) -> web.Response:
        """Count, gate and answer one request; nothing escapes as a crash."""
        self.stats.calls += 1
        self._set_in_flight(+1)
        try:
            await self._gate.wait()
            response = await self._dispatch(request)
        except EmulatorError as exc:
            response = error_response(exc)
        except (asyncio.CancelledError, ConnectionError):
            self.stats.disconnected += 1  # the client went away; nobody to answer
            raise
        except Exception:
            log.exception("emulator: unexpected error handling %s %s", request.method, request.path)
            response = error_response(EmulatorError(500, INTERNAL, INTERNAL_MESSAGE))
        finally:
            self._set_in_flight(-1)
        self.stats.status_counts[response.status] += 1
        return response

    async def _dispatch(self, request: web.Request) -> web.Response:
        guardrail = guardrail_target(request.raw_path.split("?", 1)[0])
        if guardrail is not None and request.method == "POST":
            self.stats.guardrail_calls += 1
            body = await self._read_body(request)
            self.stats.guardrail_received.append((*guardrail, elide_images(body)))
            return json_response(apply_guardrail(self._config, *guardrail, body))
        match = _INVOKE_PATH.match(request.raw_path.split("?", 1)[0])
        if match is None:
            raise EmulatorError(404, UNKNOWN_OPERATION, f"No operation matches {request.path}")
        if request.method != "POST":
            raise EmulatorError(405, UNKNOWN_OPERATION, f"{request.method} is not allowed here")
        model = resolve_model(match.group(1))
        if model is None:
            raise EmulatorError(404, NOT_FOUND, MODEL_NOT_FOUND_MESSAGE)
        failure = self._config.model_errors.get(model.model_id)
        if failure is not None:
            raise MODEL_ERRORS[failure]
        body = await self._read_body(request)
        self.stats.received.append((model.model_id, elide_images(body)))
        self.stats.invoked.append(unquote(match.group(1)))
        if isinstance(model, StabilitySpec):
            return await self._invoke_stability(model, body)
        return await self._invoke(model, body)

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise validation("The provided Content-Type is not supported, use application/json.")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise validation(f"The request body exceeds {MAX_BODY_BYTES} bytes.") from exc
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise validation(MALFORMED_BODY_MESSAGE) from exc
        if not isinstance(body, dict):
            raise validation(MALFORMED_BODY_MESSAGE)
        return body

    async def _invoke(self, model: ModelSpec, body: dict[str, Any]) -> web.Response:
        """Validate, apply policies, then render while the simulated latency elapses."""
        config = self._config
        req: ValidatedRequest = await asyncio.to_thread(validate_request, model, body)
        check_input_filter(config, req)
        self._throttle.admit(config.images_per_minute, len(req.seeds))
        self._faults.check(config, req)
        decision = output_filter(config, req)
        delay = latency_seconds(config, req.seeds if req.generation is not None else ())
        result, _ = await asyncio.gather(
            asyncio.to_thread(render, req, decision.kept_seeds), asyncio.sleep(delay)
        )
        self.stats.images_returned += len(result.images)
        return success_response(result, decision.error)

    async def _invoke_stability(self, model: StabilitySpec, body: dict[str, Any]) -> web.Response:
        """The Stability dialect: same policies and order as `_invoke`, one image per call.

        Content filters answer 200 with a non-null finish reason instead of
        Titan's 400/`error`: an input block carries only `finish_reasons`; a
        call that ran (output filter, inference error) also carries its seed.
        """
        config = self._config
        req: StabilityRequest = await asyncio.to_thread(validate_stability, model, body)
        refused = stability_input_reason(config, req)
        if refused is not None:
            return json_response({"finish_reasons": [refused]})
        self._throttle.admit(config.images_per_minute, 1)
        self._faults.check_seed(config, req.seed)
        reason = stability_output_reason(config, req)
        delay = latency_seconds(config, (req.seed,))
        if reason is not None:
            await asyncio.sleep(delay)
            return json_response({"seeds": [req.seed], "finish_reasons": [reason], "images": []})
        image, _ = await asyncio.gather(
            asyncio.to_thread(render_stability, req), asyncio.sleep(delay)
        )
        self.stats.images_returned += 1
        encoded = base64.b64encode(image).decode()
        return json_response({"seeds": [req.seed], "finish_reasons": [None], "images": [encoded]})
