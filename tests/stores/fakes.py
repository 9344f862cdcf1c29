"""Fake stores that answer, hang or fail on command, and a recorder of health flips."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class FaultyStore:
    """Stands in for a `Ledger` or a `Limiter`: every method is a coroutine.

    `mode` decides what a call does: "ok" returns `answers.get(method)`,
    "hang" awaits `unhang` (an `asyncio.Event` nobody sets unless the test
    does), "fail" raises `error(...)`. Every call is recorded in `calls`,
    probes included; `cancelled` records calls cancelled while hung.
    """

    def __init__(self, error: type[Exception]) -> None:
        self.error = error
        self.mode = "ok"
        self.unhang = asyncio.Event()
        self.answers: dict[str, Any] = {}
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.cancelled: list[str] = []
        # Seconds a hung call keeps running after it is cancelled (asyncpg
        # waits for its cancel request to get through).
        self.unwind_s = 0.0

    def called(self, method: str | None = None) -> list[str]:
        return [name for name, _, _ in self.calls if method is None or name == method]

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((method, args, kwargs))
            if self.mode == "fail":
                raise self.error(f"{method}: the store is gone")
            if self.mode == "hang":
                try:
                    await self.unhang.wait()
                except asyncio.CancelledError:
                    self.cancelled.append(method)
                    if self.unwind_s:
                        await asyncio.shield(asyncio.sleep(self.unwind_s))
                    raise
            return self.answers.get(method)

        return call


class Flips:
    """An `on_change` that records every report."""

    def __init__(self) -> None:
        self.reports: list[bool] = []
        self.changed = asyncio.Event()

    async def __call__(self, all_up: bool) -> None:
        self.reports.append(all_up)
        self.changed.set()


async def eventually(check: Callable[[], bool], *, within_s: float = 5.0) -> None:
    """Wait (bounded) until `check()` holds."""
    async with asyncio.timeout(within_s):
        while not check():  # noqa: ASYNC110 (state, not an event, is what we wait for)
            await asyncio.sleep(0.005)
