"""The ImageService servicer: authenticate, validate, decide, then stream.

The money path of an admitted request lives in `gateway.stream`; keyed
(idempotent) requests are claimed, recorded and replayed through
`gateway.idempotency`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from gateway import events
from gateway.admission import Admission
from gateway.auth import caller
from gateway.decisions import (
    facts_for,
    misconfigured,
    prompt_texts,
    refuse_if_denied,
    rewrite_request,
)
from gateway.domain import ImageJob
from gateway.errors import (
    ContentBlocked,
    GatewayError,
    InvalidRequest,
    NotATenant,
    PolicyDenied,
    ProvenanceOff,
    TaskNotSupported,
)
from gateway.guardrail import GuardrailChecker
from gateway.idempotency import Idempotency, Recording, request_hash
from gateway.ledger import DenialRecord, LedgerUnavailable
from gateway.observe import GEN_AI_MODEL, Observer
from gateway.policy_store import PolicyStore
from gateway.provenance.detect import Detector
from gateway.registry import ModelRegistry
from gateway.routing import LifecycleGuard, Plan, plan_chain
from gateway.rpc import abort, as_gateway_error
from gateway.stream import Run, Streamer
from gateway.validation import decode_request
from policies import Decision, Policy, Tenant, UsageFacts, evaluate
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import image_service_pb2_grpc

log = logging.getLogger(__name__)

# Requests smaller than this (no images to speak of) are validated inline: a
# thread hop would cost more than the work.
INLINE_DECODE_BYTES = 64 * 1024


class ImageService(image_service_pb2_grpc.ImageServiceServicer):
    """Serves GenerateImages, EstimateCost and DetectProvenance for authenticated tenants."""

    def __init__(
        self,
        registry: ModelRegistry,
        policies: PolicyStore,
        admission: Admission,
        streamer: Streamer,
        idempotency: Idempotency,
        guardrails: GuardrailChecker,
        default_timeout: float,
        observer: Observer | None = None,
        lifecycle: LifecycleGuard | None = None,
        detector: Detector | None = None,
    ) -> None:
        self._observer = observer or Observer.noop()
        self._detector = detector
        self._registry = registry
        self._policies = policies
        self._admission = admission
        self._streamer = streamer
        self._idempotency = idempotency
        self._guardrails = guardrails
        self._default_timeout = default_timeout
        self._lifecycle = lifecycle or LifecycleGuard(enforce=False)

    async def GenerateImages(
        self, request: pb.GenerateImagesRequest, context: Any
    ) -> AsyncIterator[pb.GenerateImagesResponse]:
        # Closed explicitly (not left to the garbage collector), so a request's
        # clean-ups are scheduled before shutdown stops waiting for it.
        with self._streamer.cleanups.open_request():
            async with contextlib.aclosing(self._generate(request, context)) as events:
                async for event in events:
                    yield event

    async def _generate(
        self, request: pb.GenerateImagesRequest, context: Any
    ) -> AsyncGenerator[pb.GenerateImagesResponse, None]:
        request_id = str(uuid.uuid4())
        try:
            tenant, plan = await self._decide(request, request_id)
            deadline = self._deadline(context)
            if plan.job.client_request_id:
                stream = self._keyed(request, tenant, plan, request_id, deadline)
            else:
                stream = self._streamer.stream(_run(tenant, plan, request_id, deadline))
            async for event in stream:
                yield event
        except ContentBlocked as exc:  # Bedrock's input filter: a denial too
            await self._record_denial(request_id, "CONTENT_FILTERED", "", exc.message)
            await abort(context, exc)
        except (GatewayError, LedgerUnavailable) as exc:
            await abort(context, as_gateway_error(exc))
        except Exception:  # a bug, not bad input: INTERNAL with a logged traceback
            log.exception("GenerateImages failed unexpectedly")
            await abort(context, GatewayError("internal error"))

    async def EstimateCost(
        self, request: pb.EstimateCostRequest, context: Any
    ) -> pb.EstimateCostResponse:
        """A dry run: the same decision GenerateImages would make, and the price."""
        try:
            tenant = _tenant()
            job = await self._decode(request.request)
            request_key = job.client_request_id or str(uuid.uuid4())
            decision = await self._evaluate(
                self._policies.current, tenant, job, request.request, request_key
            )
            if not decision.allowed:
                return events.estimate(job, decision)
            plan = await self._plan(request.request, decision, job)
        except (GatewayError, LedgerUnavailable) as exc:
            await abort(context, as_gateway_error(exc))
        return events.estimate(plan.job, plan.decision, plan.fallbacks)

    async def DetectProvenance(
        self, request: pb.DetectProvenanceRequest, context: Any
    ) -> pb.DetectProvenanceResponse:
        """The image's C2PA manifest and watermark; its record if it is the caller's."""
        try:
            tenant = _tenant()
            if self._detector is None:
                raise ProvenanceOff("this gateway was started without provenance")
            return await self._detector.detect(tenant.id, request.image)
        except (GatewayError, LedgerUnavailable) as exc:
            await abort(context, as_gateway_error(exc))

    async def _decide(
        self, request: pb.GenerateImagesRequest, request_id: str
    ) -> tuple[Tenant, Plan]:
        """Authenticated, valid and allowed by the policy, or a GatewayError.

        A policy or moderation refusal is recorded in the ledger (no spend)."""
        try:
            return await self._checked(request, request_id)
        except PolicyDenied as exc:
            rule = exc.metadata.get("rule") or f"moderation:{exc.metadata.get('category', '')}"
            await self._record_denial(request_id, exc.reason, rule, exc.message)
            raise

    async def _record_denial(self, request_id: str, reason: str, rule: str, message: str) -> None:
        tenant = caller().tenant
        if tenant is None:
            return
        record = DenialRecord(tenant.id, request_id, reason, rule, message, datetime.now(UTC))
        try:
            await self._admission.record_denial(record)
        except Exception:  # the refusal itself must still reach the caller
            log.exception("could not record the denial of request %s", request_id)

    async def _checked(
        self, request: pb.GenerateImagesRequest, request_id: str
    ) -> tuple[Tenant, Plan]:
        """Authenticated, valid and allowed by the policy, or a GatewayError.

        The request uses one policy from start to end, even across a reload."""
        tenant, policy = _tenant(), self._policies.current
        tracer = self._observer.tracer
        trace.get_current_span().set_attributes(
            {"titan.tenant": tenant.id, "titan.request_id": request_id}
        )
        with tracer.start_as_current_span("validate"):
            job = await self._decode(request)
        with tracer.start_as_current_span("policy") as span:
            request_key = job.client_request_id or request_id
            decision = await self._evaluate(policy, tenant, job, request, request_key)
            self._record_decision(span, policy, decision)
            if not decision.moderation.blocked:
                refuse_if_denied(decision)
        with tracer.start_as_current_span("moderation") as span:
            _record_moderation(span, decision)
            if decision.moderation.blocked:
                self._observer.instruments.moderation_block(decision.moderation.category or "")
            refuse_if_denied(decision)
            await self._guardrail(policy, request, span)
        plan = await self._plan(request, decision, job)
        self._describe(plan)
        return tenant, plan

    async def _plan(
        self, request: pb.GenerateImagesRequest, decision: Decision, job: ImageJob
    ) -> Plan:
        """The rewritten job, its fallbacks, lifecycle and body-size checks."""
        rewritten = rewrite_request(request, decision)
        job = await self._rewrite(rewritten, decision, job)
        final = rewritten if rewritten is not None else request
        today = datetime.now(UTC).date()

        def plan() -> Plan:
            decode = functools.partial(decode_request, registry=self._registry)
            return plan_chain(final, job, decision, decode, self._lifecycle, today)

        if not decision.fallbacks and final.ByteSize() < INLINE_DECODE_BYTES:
            return plan()
        return await asyncio.to_thread(plan)

    def _record_decision(self, span: trace.Span, policy: Policy, decision: Decision) -> None:
        for result in decision.shadow:
            log.info("shadow rule %s: %s", result.rule, result.outcome)
        rules = {rule.name: rule.effect.kind for rule in policy.rules}
        for name in decision.matched:
            self._observer.instruments.policy_decision(name, rules.get(name, "unknown"))
        span.set_attribute("titan.policy.allowed", decision.allowed)
        span.set_attribute("titan.rules_applied", list(decision.matched))
        if decision.denied_by:
            span.set_attribute("titan.policy.denied_by", decision.denied_by)

    def _describe(self, plan: Plan) -> None:
        """The request's facts on the server span (prompts only if configured)."""
        job, decision = plan.job, plan.decision
        span = trace.get_current_span()
        config = job.config
        span.set_attributes(
            {
                "titan.task_type": job.task_type.value,
                GEN_AI_MODEL: job.model.model_id,
                "titan.image_count": config.count,
                "titan.width": config.width,
                "titan.height": config.height,
                "titan.quality": config.quality.value,
                "titan.rules_applied": list(decision.matched),
                "titan.estimated_cost_micros": decision.estimate_micros,
                "titan.fallbacks": [f.model.model_id for f in plan.fallbacks],
                "titan.route_arm": decision.route_arm,
            }
        )
        if self._observer.record_prompts:
            prompt = getattr(job.task, "text", None)
            if prompt:
                span.set_attribute("titan.prompt", prompt)

    async def _decode(self, request: pb.GenerateImagesRequest) -> ImageJob:
        """Validate the request; one carrying images is decoded off the event
        loop (Pillow releases the GIL while decoding), so large inputs do not
        stall other streams."""
        if request.ByteSize() < INLINE_DECODE_BYTES:
            return decode_request(request, self._registry)
        return await asyncio.to_thread(decode_request, request, self._registry)

    async def _rewrite(
        self, rewritten: pb.GenerateImagesRequest | None, decision: Decision, job: ImageJob
    ) -> ImageJob:
        """The job after the policy's rewrites, validated again (a rule cannot
        make the gateway send a request the model cannot run)."""
        if rewritten is None:
            return job
        try:
            return await self._decode(rewritten)
        except (InvalidRequest, TaskNotSupported) as exc:
            raise misconfigured(decision, exc) from exc

    async def _guardrail(
        self, policy: Policy, request: pb.GenerateImagesRequest, span: trace.Span
    ) -> None:
        """Bedrock Guardrails on the prompts, when the policy names a guardrail."""
        guardrail = policy.guardrail
        if guardrail is None:
            return
        verdict = await self._guardrails.check(
            guardrail, prompt_texts(request), timeout=self._default_timeout
        )
        span.set_attribute("titan.guardrail.blocked", verdict.blocked)
        if verdict.blocked:
            self._observer.instruments.moderation_block("guardrail")
            field = verdict.field or ""
            raise PolicyDenied(
                f"the prompt in {field} was blocked by Bedrock guardrail {guardrail.id}",
                "MODERATION_BLOCKED",
                {"category": "guardrail", "field": field},
            )

    async def _evaluate(
        self,
        policy: Policy,
        tenant: Tenant,
        job: ImageJob,
        request: pb.GenerateImagesRequest,
        request_key: str,
    ) -> Decision:
        now = datetime.now(UTC)
        # Usage facts cost ledger and limiter reads: only when a rule looks at them.
        usage = UsageFacts()
        if policy.reads_usage:
            usage = await self._admission.usage_facts(tenant, now)
        return evaluate(policy, facts_for(tenant, job, request, usage, request_key), now)

    async def _keyed(
        self,
        request: pb.GenerateImagesRequest,
        tenant: Tenant,
        plan: Plan,
        request_id: str,
        deadline: float,
    ) -> AsyncIterator[pb.GenerateImagesResponse]:
        """A request with an idempotency key: replay a finished run, or run and
        record. This attempt bills under its own `request_id` (see
        `gateway.idempotency`)."""
        key = plan.job.client_request_id
        earlier = await self._idempotency.claim(tenant.id, key, request_hash(request), deadline)
        if earlier is not None:
            for event in await self._idempotency.replay(earlier):
                if event.WhichOneof("event") == "accepted":  # the run that billed
                    trace.get_current_span().set_attribute(
                        "titan.request_id", event.accepted.request_id
                    )
                if event.WhichOneof("event") == "completed":
                    event.completed.replayed = True
                yield event
            return
        recording = self._idempotency.recording(tenant.id, key, request_id)
        run = _run(tenant, plan, request_id, deadline, recording)
        finished = False
        try:
            async for event in self._streamer.stream(run):
                yield event
            finished = True
        finally:
            done = (
                self._idempotency.complete(tenant.id, key, recording)
                if finished
                else self._idempotency.abandon(tenant.id, key)
            )
            await self._streamer.cleanups.shielded(done)

    def _deadline(self, context: Any) -> float:
        """The caller's deadline as a monotonic instant (or the default timeout)."""
        remaining: float | None = context.time_remaining()
        if remaining is None:
            remaining = self._default_timeout
        return time.monotonic() + min(remaining, self._default_timeout)


def _run(
    tenant: Tenant,
    plan: Plan,
    request_id: str,
    deadline: float,
    recording: Recording | None = None,
) -> Run:
    return Run(
        tenant,
        plan.job,
        plan.decision,
        request_id,
        deadline,
        recording,
        fallbacks=plan.fallbacks,
        prices=plan.prices,
    )


def _tenant() -> Tenant:
    who = caller()
    if who.tenant is None:
        raise NotATenant("this RPC needs a tenant API key, not an admin key")
    return who.tenant


def _record_moderation(span: trace.Span, decision: Decision) -> None:
    verdict = decision.moderation
    span.set_attribute("titan.moderation.blocked", verdict.blocked)
    if verdict.blocked:
        span.set_attribute("titan.moderation.category", verdict.category or "")
        span.set_attribute("titan.moderation.field", verdict.field or "")
