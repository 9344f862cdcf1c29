"""Fan one job out to N single-image backend calls and yield each outcome the
moment it is ready.

Image i is its own backend call (seed + i), so a slow image never holds back a
fast one. A shared semaphore bounds the backend calls in flight across all
requests. Per-image failures become `ImageLost`; a request-level error (e.g.
the input content filter) is raised to the caller after the other calls are
cancelled. Leaving the iteration early (client cancelled) cancels every call
still in flight.

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
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ImageReady:
    """Image `index` is ready; `job` is the one (primary or fallback) that made it."""

    index: int
    seed: int
    data: bytes
    job: ImageJob
    mask: bytes | None = None


@dataclass(frozen=True)
class ImageLost:
    """Image `index` failed; the other images are unaffected."""

    index: int
    seed: int
    error: BackendError


Outcome = ImageReady | ImageLost


class FanOut:
    """Runs jobs on a backend with a global cap on concurrent backend calls."""

    def __init__(self, backend: Backend, concurrency: int) -> None:
        self._backend = backend
        self._slots = asyncio.Semaphore(concurrency)

    async def run(
        self,
        chain: ImageJob | Sequence[ImageJob],
        deadline: float,
        in_flight: dict[int, ImageJob] | None = None,
        may_start: Callable[[], bool] | None = None,
    ) -> AsyncIterator[Outcome]:
        """Yield one outcome per image, in the order they finish.

        `chain` is the job, or the job followed by its fallbacks (same task and
        image count, each validated for its model). `deadline` is a
        `time.monotonic()` instant; no backend call runs past it. `in_flight`,
        if given, maps the indexes whose backend call has been sent and has
        not come back to the job it was sent for: on cancellation those are
        the images the backend may still bill, at that model's price.
        `may_start`, if given, is asked before each backend call; False ends
        the request with `ReservationExpired` (its lease was lost).
        """
        jobs = (chain,) if isinstance(chain, ImageJob) else tuple(chain)
        in_flight = {} if in_flight is None else in_flight
        results: asyncio.Queue[Outcome | BaseException] = asyncio.Queue()
        calls = [
            asyncio.create_task(self._one(jobs, i, deadline, results, in_flight, may_start))
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

    async def _one(
        self,
        jobs: tuple[ImageJob, ...],
        index: int,
        deadline: float,
        results: asyncio.Queue[Outcome | BaseException],
        in_flight: dict[int, ImageJob],
        may_start: Callable[[], bool] | None,
    ) -> None:
        job = jobs[0]
        try:
            for position, job in enumerate(jobs):
                try:
                    image = await self._call(job, index, deadline, in_flight, may_start)
                except BackendError as exc:
                    if position + 1 == len(jobs) or not falls_back(exc):
                        raise
                    continue
                results.put_nowait(ImageReady(index, job.seed_for(index), image.data, job,
                                              image.mask))  # fmt: skip
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
                image = await self._backend.generate_one(job, index, timeout=timeout)
            except Exception:
                in_flight.pop(index, None)
                raise
            # Not on cancellation: a call cancelled mid-flight may still be
            # billed by Bedrock, so the stream settles what is left in here.
            in_flight.pop(index, None)
            return image


_NOT_ENABLED = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION})


def falls_back(error: BackendError) -> bool:
    """Whether the next model of a fallback chain should get this image: the
    model stayed throttled or unavailable after its retries, or the account
    may not call it (AccessDenied, ResourceNotFound). A filtered image, a
    timeout or a refused request body would fail the same way elsewhere."""
    if isinstance(error, BackendThrottled | BackendUnavailable):
        return True
    return isinstance(error, BackendRejected) and error.code in _NOT_ENABLED
