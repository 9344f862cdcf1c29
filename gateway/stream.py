"""One admitted request, from reservation to the last event.

Order matters for the money: reserve the estimate before `accepted`; settle
each image in the ledger before its `image` event is sent; on every exit
release what is left (and the concurrency slot). If the client cancels,
images whose backend call was already sent are settled as billed (Bedrock
bills work it started; see the README), the rest is released.

With a fallback chain the reservation covers the dearest model of the chain
(the policy's estimate); each image is settled at the price of the model that
actually made it, and the difference is released at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway import events
from gateway.admission import Admission, Ticket
from gateway.domain import ImageJob
from gateway.errors import ImageFiltered, ImageUnmarked, ReservationExpired
from gateway.fanout import FanOut, Finish, ImageLost, ImageReady
from gateway.idempotency import Idempotency, Recording
from gateway.ledger import ReservationLost, UsageRecord
from gateway.observe import Observer
from gateway.provenance.marker import Marked, Marker, Origin, ProvenanceError, unmarked
from gateway.telemetry import ImageOutcome, size_class
from policies import Decision, Tenant
from titan.gateway.v1 import image_service_pb2 as pb

log = logging.getLogger(__name__)


class Cleanups:
    """Clean-up work that must finish even when its request is cancelled
    (settle what was in flight, release the reservation, close an
    idempotency claim). Shutdown awaits it before it closes the stores.

    A cancelled RPC runs its clean-up only after the server has let go of
    it, so shutdown waits for the requests still open (`open_request`) as
    well as for the clean-ups they scheduled (`shielded`)."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Task[None]] = set()
        self._open = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def open_request(self) -> Iterator[None]:
        """Mark one request as running until the block exits."""
        self._open += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._open -= 1
            if self._open == 0:
                self._idle.set()

    def shielded(self, work: Coroutine[Any, Any, None]) -> Awaitable[None]:
        """Run `work` to the end whatever happens to the awaiting task."""
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return asyncio.shield(task)

    async def wait(self, timeout: float) -> int:  # noqa: ASYNC109 (shutdown's own bound)
        """Wait up to `timeout` seconds for the open requests and every pending
        clean-up; how many requests and clean-ups were left."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(end):
                await self._idle.wait()
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=max(0.0, end - loop.time()))
        return self._open + len(self._pending)


@dataclass(frozen=True)
class Run:
    """Everything one request needs once it has been decided."""

    tenant: Tenant
    job: ImageJob
    decision: Decision
    request_id: str
    deadline: float  # time.monotonic() instant
    recording: Recording | None = None
    # Fallback jobs (same request validated for each fallback model), in order.
    fallbacks: tuple[ImageJob, ...] = ()
    # Price per image of each model the chain may use (micro-USD).
    prices: Mapping[str, int] = field(default_factory=dict)

    @property
    def chain(self) -> tuple[ImageJob, ...]:
        return (self.job, *self.fallbacks)

    def price_of(self, job: ImageJob) -> int:
        """What one image made by `job`'s model costs."""
        return self.prices.get(job.model.model_id, self.decision.price_per_image_micros)


class Streamer:
    """Runs admitted requests: reserve, fan out, settle, stream, release."""

    def __init__(
        self,
        fanout: FanOut,
        admission: Admission,
        idempotency: Idempotency,
        observer: Observer | None = None,
        cleanups: Cleanups | None = None,
        marker: Marker | None = None,
    ) -> None:
        self._observer = observer or Observer.noop()
        self._marker = marker
        self.cleanups = cleanups or Cleanups()
        self._fanout = fanout
        self._admission = admission
        self._idempotency = idempotency

    async def stream(self, run: Run) -> AsyncIterator[pb.GenerateImagesResponse]:
        """The events of one request; raises GatewayError to end it with a status."""
        ticket = await self._admission.admit(
            run.tenant, run.request_id, run.job.config.count, run.decision.estimate_micros, _now()
        )
        self._admission.hold(ticket)
        in_flight: dict[int, ImageJob] = {}
        cancelled = False
        try:
            # Closed before the clean-up below reads `in_flight`: closing it
            # cancels the backend calls still running.
            async with contextlib.aclosing(self._events(run, ticket, in_flight)) as events:
                async for event in events:
                    yield event
        except (asyncio.CancelledError, GeneratorExit):
            cancelled = True
            raise
        finally:
            self._admission.let_go(ticket)
            billable = (
                {i: j for i, j in in_flight.items() if i not in ticket.settled} if cancelled else {}
            )
            await self.cleanups.shielded(self._close(run, ticket, billable))

    async def _events(
        self, run: Run, ticket: Ticket, in_flight: dict[int, ImageJob]
    ) -> AsyncGenerator[pb.GenerateImagesResponse, None]:
        job = run.job
        first = pb.GenerateImagesResponse(
            accepted=events.accepted(
                job, run.decision, run.tenant.id, run.request_id, run.fallbacks
            )
        )
        yield await self._recorded(run, first)
        lost: list[ImageLost] = []
        charged = 0
        began = time.perf_counter()
        outcomes = self._fanout.run(
            run.chain, run.deadline, in_flight, ticket.live, self._finish(run)
        )
        async for outcome in outcomes:
            if isinstance(outcome, ImageReady):
                price = run.price_of(outcome.job)
                try:
                    await self._settle(run, ticket, outcome, price)
                except BaseException:
                    outcome.release()
                    raise
                in_flight.pop(outcome.index, None)  # billed: not "in flight" any more
                charged += price
                event = pb.GenerateImagesResponse(image=events.image(outcome, price))
                if len(ticket.settled) == 1:
                    self._observer.instruments.time_to_first_image(
                        time.perf_counter() - began, run.tenant.id, job.model.model_id,
                        job.task_type.value,
                    )  # fmt: skip
            else:
                lost.append(outcome)
                self._count_image(run, _lost_outcome(outcome))
                event = pb.GenerateImagesResponse(image_failed=events.image_failed(outcome))
            try:
                yield await self._recorded(run, event)
            finally:  # written (the reader asked for more), or the stream ended
                if isinstance(outcome, ImageReady):
                    outcome.release()
        if not ticket.settled and lost and all(x.error.retryable for x in lost):
            # Nothing arrived and waiting may help: end with the status so the
            # caller's retry policy applies (UNAVAILABLE / DEADLINE_EXCEEDED).
            raise lost[0].error
        done = pb.Completed(
            images_delivered=len(ticket.settled),
            images_failed=len(lost),
            cost_micros=charged,
        )
        yield await self._recorded(run, pb.GenerateImagesResponse(completed=done))

    def _finish(self, run: Run) -> Finish:
        """Each image as delivered: watermarked and signed per its tenant's
        policy, or as made; either way its sha256 and header are read once."""
        marker, mode = self._marker, run.tenant.provenance
        if marker is None or mode == "off":

            async def as_made(job: ImageJob, index: int, data: bytes) -> Marked:
                return unmarked(data)

            return as_made
        origin = Origin(run.request_id, run.tenant.id)
        tracer = self._observer.tracer

        async def finish(job: ImageJob, index: int, data: bytes) -> Marked:
            with tracer.start_as_current_span("provenance") as span:
                span.set_attribute("titan.image_index", index)
                try:
                    marked = await marker.mark(data, job, index, origin)
                except ProvenanceError as exc:
                    span.set_attribute("titan.provenance_failed", str(exc))
                    if mode == "required":
                        raise ImageUnmarked(
                            f"image {index} could not be watermarked and signed ({exc}); "
                            "the tenant's policy requires provenance, so it was not "
                            "delivered and is not charged"
                        ) from exc
                    log.warning("request %s: image %d delivered unmarked: %s",
                                run.request_id, index, exc)  # fmt: skip
                    return unmarked(data)
                span.set_attribute("titan.watermark_id", marked.watermark_id)
                return marked

        return finish

    async def _settle(self, run: Run, ticket: Ticket, ready: ImageReady, price: int) -> None:
        """Bill one image in the ledger at the price of the model that made it,
        then count it: the cost metric is the same integer the ledger settled."""
        with self._observer.tracer.start_as_current_span("settle") as span:
            span.set_attribute("titan.image_index", ready.index)
            span.set_attribute("titan.cost_micros", price)
            span.set_attribute("gen_ai.response.model", ready.job.model.model_id)
            record = _usage(run, ready.job, ready.index, price, ready.data, ready.marked)
            try:
                await self._admission.settle(ticket, record)
            except ReservationLost as exc:
                span.set_attribute("titan.reservation_lost", True)
                raise ReservationExpired(
                    f"image {ready.index} was not sent: the request's budget reservation was "
                    "lost while it ran (its replica stalled past the lease) and the budget no "
                    "longer covers it; nothing was charged for it"
                ) from exc
        self._count_image(run, "delivered", price, ready.job)

    def _count_image(
        self, run: Run, outcome: ImageOutcome, cost_micros: int = 0, made_by: ImageJob | None = None
    ) -> None:
        job, instruments = made_by or run.job, self._observer.instruments
        labels = (
            run.tenant.id,
            job.model.model_id,
            job.task_type.value,
            job.config.quality.value,
            size_class(job.config.width, job.config.height),
        )
        arm = run.decision.route_arm
        instruments.image(*labels, outcome, route_arm=arm)
        if cost_micros:
            instruments.cost(cost_micros, *labels, route_arm=arm)

    async def _recorded(
        self, run: Run, event: pb.GenerateImagesResponse
    ) -> pb.GenerateImagesResponse:
        if run.recording is not None:
            if event.WhichOneof("event") == "image":
                await self._idempotency.keep_image(run.recording, event)
            else:
                run.recording.add(event)
        return event

    async def _close(self, run: Run, ticket: Ticket, billable: dict[int, ImageJob]) -> None:
        """Bill what the backend will charge for, release the rest. Never raises."""
        try:
            for index, job in sorted(billable.items()):
                log.info(
                    "request %s cancelled: image %d was in flight, billed", run.request_id, index
                )
                price = run.price_of(job)
                try:
                    await self._admission.settle(ticket, _usage(run, job, index, price, b""))
                except ReservationLost:
                    log.warning("request %s: image %d unbilled, lease lost", run.request_id, index)
                    continue
                self._count_image(run, "failed", price, job)
            await self._admission.finish(ticket)
        except Exception:  # the lease returns the budget if this fails; say so loudly
            log.exception("request %s: could not release its reservation", run.request_id)


def _lost_outcome(lost: ImageLost) -> ImageOutcome:
    return "filtered" if isinstance(lost.error, ImageFiltered) else "failed"


def _usage(
    run: Run, job: ImageJob, index: int, price: int, data: bytes, marked: Marked | None = None
) -> UsageRecord:
    if marked is not None:
        sha256 = marked.sha256
    else:
        sha256 = hashlib.sha256(data).hexdigest() if data else ""
    return UsageRecord(
        tenant=run.tenant.id,
        request_id=run.request_id,
        image_index=index,
        model=job.model.model_id,
        task=job.task_type.value,
        width=job.config.width,
        height=job.config.height,
        quality=job.config.quality.value,
        cost_micros=price,
        image_sha256=sha256,
        created_at=_now(),
        route_arm=run.decision.route_arm,
        watermark_id=marked.watermark_id if marked else "",
        manifest_json=marked.manifest_json if marked else "",
    )


def _now() -> datetime:
    return datetime.now(UTC)
