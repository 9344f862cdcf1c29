"""Fan one job out to N single-image backend calls and yield each outcome the
moment it is ready.

Image i is its own backend call (seed + i), so a slow image never holds back a
fast one. A shared semaphore bounds the backend calls in flight across all
requests. Per-image failures become `ImageLost`; a request-level error (e.g.
the input content filter) is raised to the caller after the other calls are
cancelled. Leaving the iteration early (client cancelled) cancels every call
still in flight.

Finished images wait in memory until the stream hands them to gRPC. A
reader that stalls must not make that unbounded, so each backend call first
takes its image's size estimate (width x height x 3 bytes, raw RGB: PNG and
JPEG outputs are smaller) from the stream's budget and from the process's
(`SendBuffer`); the stream gives it back once the image has been written.
A stream whose reader stopped therefore starts no more calls once its budget
is held, and all stalled streams together hold at most the process budget.

A job may come with a fallback chain (the policy's `route.fallback`, already
validated for each model): when image i's model stays throttled or
unavailable after its retries, or the account may not call it (access
denied, model not found), image i is tried on the next model of the chain.
`ImageReady.job` says which model made the image, so it is billed at that
model's price.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from gateway.backends.base import Backend
from gateway.dialects import GeneratedImage
from gateway.domain import ImageJob
from gateway.errors import (
    BackendError,
    BackendRejected,
    BackendThrottled,
    BackendTimeout,
    BackendUnavailable,
    ReservationExpired,
)

if TYPE_CHECKING:
    from gateway.provenance.marker import Marked


class SendBuffer:
    """A budget of bytes: finished images not yet handed to gRPC."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: list[asyncio.Future[None]] = []

    async def take(self, n: int) -> None:
        """Wait until `n` more bytes fit (an image larger than the whole
        budget still goes alone, so nothing waits forever)."""
        while self.used and self.used + n > self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.used += n

    def give(self, n: int) -> None:
        self.used -= n
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:  # each checks again whether it fits now
            if not waiter.done():
                waiter.set_result(None)


@dataclass(frozen=True)
class Held:
    """What one finished image holds of the send buffers until it is written."""

    buffers: tuple[SendBuffer, ...]
    size: int

    def give(self) -> None:
        for buffer in self.buffers:
            buffer.give(self.size)


@dataclass(frozen=True)
class ImageReady:
    """Image `index` is ready; `job` is the one (primary or fallback) that made it.

    The stream calls `release()` once the image has been written (or dropped)."""

    index: int
    seed: int
    data: bytes
    job: ImageJob
    mask: bytes | None = None
    held: Held | None = None
    # The image as delivered (watermarked and signed), when a `finish` step ran.
    marked: Marked | None = None

    def release(self) -> None:
        if self.held is not None:
            self.held.give()


@dataclass(frozen=True)
class ImageLost:
    """Image `index` failed; the other images are unaffected."""

    index: int
    seed: int
    error: BackendError


Outcome = ImageReady | ImageLost
# The provenance step: (job, index, image bytes) -> the image as delivered.
Finish = Callable[[ImageJob, int, bytes], Awaitable["Marked"]]


class FanOut:
    """Runs jobs on a backend with a global cap on concurrent backend calls."""

    def __init__(
        self,
        backend: Backend,
        concurrency: int,
        *,
        buffer_bytes: int = 256 * 1024 * 1024,
        stream_buffer_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self._backend = backend
        self._slots = asyncio.Semaphore(concurrency)
        self.buffer = SendBuffer(buffer_bytes)
        self._stream_buffer_bytes = stream_buffer_bytes

    async def run(
        self,
        chain: ImageJob | Sequence[ImageJob],
        deadline: float,
        in_flight: dict[int, ImageJob] | None = None,
        may_start: Callable[[], bool] | None = None,
        finish: Finish | None = None,
    ) -> AsyncIterator[Outcome]:
        """Yield one outcome per image, in the order they finish.

        `chain` is the job, or the job followed by its fallbacks (same task and
        image count, each validated for its model). `deadline` is a
        `time.monotonic()` instant; no backend call runs past it. `in_flight`,
        if given, maps the indexes whose backend call has been sent and has
        not come back to the job it was sent for: on cancellation those are
        the images the backend may still bill, at that model's price.
        `may_start`, if given, is asked before each backend call; False ends
        the request with `ReservationExpired` (its lease was lost). An index
        stays in `in_flight` after its image is ready, until the caller has
        settled it and removed it: a finished image never written is billed
        like one in flight. `finish`, if given, turns each image into the one
        delivered (the provenance step) in the image's own task, so images
        are marked in parallel; a `BackendError` it raises fails that image.
        """
        jobs = (chain,) if isinstance(chain, ImageJob) else tuple(chain)
        in_flight = {} if in_flight is None else in_flight
        results: asyncio.Queue[Outcome | BaseException] = asyncio.Queue()
        buffers = (SendBuffer(self._stream_buffer_bytes), self.buffer)
        calls = [
            asyncio.create_task(
                self._one(jobs, i, deadline, results, in_flight, may_start, buffers, finish)
            )
            for i in range(jobs[0].config.count)
        ]
        try:
            for _ in calls:
                outcome = await results.get()
                if isinstance(outcome, BaseException):
                    raise outcome
                yield outcome
        finally:
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
            while not results.empty():  # ready but never taken: give their bytes back
                left = results.get_nowait()
                if isinstance(left, ImageReady):
                    left.release()

    async def _one(
        self,
        jobs: tuple[ImageJob, ...],
        index: int,
        deadline: float,
        results: asyncio.Queue[Outcome | BaseException],
        in_flight: dict[int, ImageJob],
        may_start: Callable[[], bool] | None,
        buffers: tuple[SendBuffer, ...],
        finish: Finish | None,
    ) -> None:
        job = jobs[0]
        try:
            for position, job in enumerate(jobs):
                held = await _hold(buffers, _estimate(job))
                try:
                    image = await self._call(job, index, deadline, in_flight, may_start)
                except BaseException as exc:
                    held.give()
                    if not isinstance(exc, BackendError):
                        raise
                    if position + 1 == len(jobs) or not falls_back(exc):
                        raise
                    continue
                marked = None
                if finish is not None:
                    try:
                        marked = await finish(job, index, image.data)
                    except BackendError:  # not delivered, so not billed either
                        held.give()
                        in_flight.pop(index, None)
                        raise
                    except BaseException:  # cancelled: billed as in flight
                        held.give()
                        raise
                data = image.data if marked is None else marked.data
                results.put_nowait(ImageReady(index, job.seed_for(index), data, job,
                                              image.mask, held, marked))  # fmt: skip
                return
        except BackendError as exc:
            if exc.per_image:
                results.put_nowait(ImageLost(index, job.seed_for(index), exc))
            else:
                results.put_nowait(exc)
        except Exception as exc:  # a bug: the servicer logs it and answers INTERNAL
            results.put_nowait(exc)

    async def _call(
        self,
        job: ImageJob,
        index: int,
        deadline: float,
        in_flight: dict[int, ImageJob],
        may_start: Callable[[], bool] | None,
    ) -> GeneratedImage:
        """One backend call for image `index`, marked in flight while it runs."""
        async with self._slots:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise BackendTimeout("deadline passed while waiting for a backend slot")
            if may_start is not None and not may_start():
                raise ReservationExpired(
                    "the request's budget reservation was lost while it ran; "
                    "no further images were started"
                )
            in_flight[index] = job
            try:
                return await self._backend.generate_one(job, index, timeout=timeout)
            except Exception:
                in_flight.pop(index, None)
                raise
            # Kept on success (until settled) and on cancellation: a call
            # cancelled mid-flight may still be billed by Bedrock, so the
            # stream settles what is left in here.


async def _hold(buffers: tuple[SendBuffer, ...], size: int) -> Held:
    """Take `size` bytes from every buffer, or from none (if cancelled midway)."""
    taken: list[SendBuffer] = []
    try:
        for buffer in buffers:
            await buffer.take(size)
            taken.append(buffer)
    except BaseException:
        Held(tuple(taken), size).give()
        raise
    return Held(tuple(taken), size)


def _estimate(job: ImageJob) -> int:
    """Bytes one image of `job` may take before it is written: its raw RGB size."""
    return max(1, job.config.width * job.config.height * 3)


_NOT_ENABLED = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION})


def falls_back(error: BackendError) -> bool:
    """Whether the next model of a fallback chain should get this image: the
    model stayed throttled or unavailable after its retries, or the account
    may not call it (AccessDenied, ResourceNotFound). A filtered image, a
    timeout or a refused request body would fail the same way elsewhere."""
    if isinstance(error, BackendThrottled | BackendUnavailable):
        return True
    return isinstance(error, BackendRejected) and error.code in _NOT_ENABLED
