"""A real HTTP receiver on 127.0.0.1:0 that records what it is sent and
answers from a script (statuses in order, then 200), or never answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from gateway.alerts import BudgetAlert, WebhookSettings

SECRET = "whsec_test_0123456789abcdef"
T0 = datetime(2026, 11, 30, 14, 3, 12, 345678, tzinfo=UTC)


@dataclass
class Delivery:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the receiver got so far; `statuses` are answered in order, then 200."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    hang: bool = False
    deliveries: list[Delivery] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.append(Delivery(dict(request.headers), await request.read()))
        self.arrived.set()
        if self.hang:
            await asyncio.Event().wait()  # until the client gives up (the server is torn down)
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 400 else "no")

    async def wait_for(self, count: int, *, within_s: float = 10.0) -> None:
        async def enough() -> None:
            while len(self.deliveries) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), within_s)


@asynccontextmanager
async def receiver(**kwargs: object) -> AsyncIterator[Receiver]:
    """A `Receiver` served on 127.0.0.1 at a free port, at `receiver.url`."""
    got = Receiver(**kwargs)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_post("/hooks/titan", got.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    got.url = f"http://127.0.0.1:{port}/hooks/titan"
    try:
        yield got
    finally:
        await runner.cleanup()


def webhook_settings(url: str, **overrides: object) -> WebhookSettings:
    values: dict[str, object] = {"url": url, "secret": SECRET, "timeout_s": 2.0,
                                 "retry_backoff_s": 0.05}  # fmt: skip
    return WebhookSettings.model_validate(values | overrides)


def alert(**overrides: object) -> BudgetAlert:
    values: dict[str, object] = {
        "tenant": "acme",
        "period": "day",
        "threshold": 0.8,
        "used_fraction": 0.8125,
        "spent_micros": 8_125_000,
        "limit_micros": 10_000_000,
        "window_start": datetime(2026, 11, 30, tzinfo=UTC),
        "resets_at": datetime(2026, 12, 1, tzinfo=UTC),
        "crossed_at": T0,
        "request_id": "req_123",
    }
    return BudgetAlert(**(values | overrides))  # type: ignore[arg-type]
