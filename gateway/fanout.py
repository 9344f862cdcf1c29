"""Fan one job out to N single-image backend calls and yield each outcome the
moment it is ready.

Image i is its own backend call (seed + i), so a slow image never holds back a
fast one. A shared semaphore bounds the backend calls in flight across all
requests. Per-image failures become `ImageLost`; a request-level error (e.g.
the input content filter) is raised to the caller after the other calls are
cancelled. Leaving the iteration early (client cancelled) cancels every call
still in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.backends.base import Backend
from gateway.domain import ImageJob
from gateway.errors import BackendError, BackendTimeout


@dataclass(frozen=True)
class ImageReady:
    """Image `index` is ready."""

    index: int
    seed: int
    data: bytes


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
        self, job: ImageJob, deadline: float, in_flight: set[int] | None = None
    ) -> AsyncIterator[Outcome]:
        """Yield one outcome per image, in the order they finish.

        `deadline` is a `time.monotonic()` instant; no backend call runs past it.
        `in_flight`, if given, holds the indexes whose backend call has been
        sent and has not come back: on cancellation those are the images the
        backend may still bill.
        """
        in_flight = set() if in_flight is None else in_flight
        results: asyncio.Queue[Outcome | BaseException] = asyncio.Queue()
        calls = [
            asyncio.create_task(self._one(job, i, deadline, results, in_flight))
            for i in range(job.config.count)
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
        job: ImageJob,
        index: int,
        deadline: float,
        results: asyncio.Queue[Outcome | BaseException],
        in_flight: set[int],
    ) -> None:
        seed = job.seed_for(index)
        try:
            async with self._slots:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise BackendTimeout("deadline passed while waiting for a backend slot")
                in_flight.add(index)
                data = await self._backend.generate_one(job, index, timeout=timeout)
                in_flight.discard(index)
            results.put_nowait(ImageReady(index, seed, data))
        except BackendError as exc:
            in_flight.discard(index)
            if exc.per_image:
                results.put_nowait(ImageLost(index, seed, exc))
            else:
                results.put_nowait(exc)
        except Exception as exc:  # a bug: the servicer logs it and answers INTERNAL
            in_flight.discard(index)
            results.put_nowait(exc)
