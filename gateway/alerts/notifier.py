"""`AlertNotifier`: hands each alert to every sink without ever making the
request that crossed the threshold wait for, or fail on, a delivery.

`publish` is synchronous: it starts one task per sink and returns. The tasks
are kept in a set (asyncio holds only weak references to tasks) so `close`
can let them finish for a grace period, then cancel the rest, before the
sinks' connections are closed. A sink's failure is logged, never raised;
past `max_pending` deliveries in flight an alert is logged and dropped, so a
receiver that hangs cannot grow memory without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from gateway.alerts.event import BudgetAlert

log = logging.getLogger(__name__)


class AlertSink(Protocol):
    """One destination of alerts (a webhook, an SNS topic)."""

    name: str

    async def start(self) -> None:
        """Open connections (called once, before the first `send`)."""

    async def send(self, alert: BudgetAlert) -> None:
        """Deliver one alert, retrying as the sink sees fit; raise if it was not."""

    async def close(self) -> None:
        """Release connections."""


class AlertNotifier:
    """Fire-and-forget delivery of alerts to `sinks` (none: alerts are only logged)."""

    def __init__(self, sinks: Sequence[AlertSink] = (), *, max_pending: int = 1000) -> None:
        self._sinks = tuple(sinks)
        self._max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Deliveries in flight."""
        return len(self._tasks)

    async def start(self) -> None:
        for sink in self._sinks:
            await sink.start()

    def publish(self, alert: BudgetAlert) -> None:
        """Start delivering `alert` to every sink; never blocks, never raises."""
        for sink in self._sinks:
            if self._closed or len(self._tasks) >= self._max_pending:
                why = "closed" if self._closed else f"{self._max_pending} deliveries in flight"
                log.error("budget alert %s to %s dropped: %s", alert.event_id, sink.name, why)
                continue
            task = asyncio.create_task(self._deliver(sink, alert), name=f"alert:{sink.name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until no delivery is in flight (tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self, grace_s: float = 5.0) -> None:
        """Let deliveries in flight finish for `grace_s`, cancel the rest, close the sinks."""
        self._closed = True
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in late:
                task.cancel()
            if late:
                log.warning("%d budget alert deliveries cancelled at shutdown", len(late))
                await asyncio.gather(*late, return_exceptions=True)
        for sink in self._sinks:
            try:
                await sink.close()
            except Exception:
                log.warning("closing alert sink %s failed", sink.name, exc_info=True)

    @staticmethod
    async def _deliver(sink: AlertSink, alert: BudgetAlert) -> None:
        try:
            await sink.send(alert)
        except Exception:
            log.warning(
                "budget alert %s (tenant %s, %s, %.0f%%) not delivered to %s",
                alert.event_id, alert.tenant, alert.period, alert.threshold * 100, sink.name,
                exc_info=True,
            )  # fmt: skip
        else:
            log.info("budget alert %s delivered to %s", alert.event_id, sink.name)
