"""AlertNotifier: publishing never waits for or fails on a sink; close lets
deliveries finish, then cancels what is left."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from gateway.alerts import AlertNotifier, AlertSettings, BudgetAlert, open_alerts
from gateway.settings import load_settings, unknown_variable_problem

from .support import alert


class FakeSink:
    """A sink whose `send` takes `delay_s` (forever: None) or raises `error`."""

    def __init__(self, *, delay_s: float | None = 0.0, error: Exception | None = None) -> None:
        self.name = "fake"
        self.delay_s = delay_s
        self.error = error
        self.sent: list[BudgetAlert] = []
        self.cancelled = 0
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def send(self, alert: BudgetAlert) -> None:
        try:
            if self.delay_s is None:
                await asyncio.Event().wait()
            await asyncio.sleep(self.delay_s or 0)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        self.sent.append(alert)

    async def close(self) -> None:
        self.events.append("close")


async def test_publish_returns_at_once_and_delivers_in_the_background() -> None:
    sink = FakeSink(delay_s=0.2)
    notifier = AlertNotifier([sink])
    await notifier.start()
    started = time.monotonic()
    notifier.publish(alert())
    assert time.monotonic() - started < 0.05
    assert notifier.pending == 1
    await notifier.drain()
    assert sink.sent == [alert()]
    assert notifier.pending == 0
    await notifier.close()
    assert sink.events == ["start", "close"]


async def test_a_failing_sink_is_logged_not_raised_and_the_others_still_deliver(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, working = FakeSink(error=RuntimeError("receiver said no")), FakeSink()
    notifier = AlertNotifier([broken, working])
    notifier.publish(alert())
    await notifier.drain()
    assert working.sent == [alert()]
    (failure,) = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert failure.levelno == logging.WARNING
    assert "receiver said no" in caplog.text


async def test_close_waits_for_deliveries_within_the_grace_then_cancels_the_rest() -> None:
    quick, hung = FakeSink(delay_s=0.05), FakeSink(delay_s=None)
    notifier = AlertNotifier([quick, hung])
    notifier.publish(alert())
    started = time.monotonic()
    await notifier.close(grace_s=0.3)
    assert 0.3 <= time.monotonic() - started < 1.0
    assert quick.sent == [alert()]
    assert hung.cancelled == 1
    assert notifier.pending == 0
    assert hung.events == ["close"]


async def test_after_close_and_past_max_pending_alerts_are_dropped_with_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hung = FakeSink(delay_s=None)
    notifier = AlertNotifier([hung], max_pending=2)
    for _ in range(3):
        notifier.publish(alert())
    assert notifier.pending == 2
    assert "2 deliveries in flight" in caplog.text
    await notifier.close(grace_s=0)
    notifier.publish(alert())
    assert notifier.pending == 0
    assert "dropped: closed" in caplog.text


async def test_no_sinks_by_default() -> None:
    notifier = open_alerts(AlertSettings())
    await notifier.start()
    notifier.publish(alert())
    assert notifier.pending == 0
    await notifier.close()


def test_settings_refuse_an_unsigned_webhook_and_a_bad_url_or_arn() -> None:
    with pytest.raises(ValueError, match=r"needs alerts\.webhook\.secret"):
        AlertSettings.model_validate({"webhook": {"url": "https://example.com/h"}})
    with pytest.raises(ValueError, match="at least 16 characters"):
        AlertSettings.model_validate({"webhook": {"url": "https://x.io", "secret": "short"}})
    with pytest.raises(ValueError, match="http:// or https:// URL"):
        AlertSettings.model_validate({"webhook": {"url": "ftp://x.io", "secret": "s" * 16}})
    with pytest.raises(ValueError, match="SNS topic ARN"):
        AlertSettings.model_validate({"sns": {"topic_arn": "budget-alerts"}})
    sns = AlertSettings.model_validate(
        {"sns": {"topic_arn": "arn:aws:sns:eu-west-1:123456789012:budget-alerts"}}
    ).sns
    assert sns.effective_region == "eu-west-1"


def test_the_environment_sets_alerts_and_a_misspelt_variable_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TITAN_GW_ALERTS__WEBHOOK__URL", "https://ops.example.com/hooks/titan")
    monkeypatch.setenv("TITAN_GW_ALERTS__WEBHOOK__SECRET", "s" * 32)
    monkeypatch.setenv("TITAN_GW_ALERTS__SNS__TOPIC_ARN", "arn:aws:sns:us-west-2:1:budget")
    alerts = load_settings().alerts
    assert alerts.webhook.url == "https://ops.example.com/hooks/titan"
    assert alerts.sns.effective_region == "us-west-2"
    assert "s" * 32 not in repr(alerts)
    problem = unknown_variable_problem("TITAN_GW_ALERTS__WEBHOOK__SECRETT")
    assert problem is not None
    assert "did you mean 'alerts.webhook.secret'" in problem
