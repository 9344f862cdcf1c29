"""WebhookSink against a real aiohttp receiver on 127.0.0.1:0: the body, the
signature, and which answers are retried."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from gateway.alerts.webhook import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AlertDeliveryError,
    WebhookSink,
    sign,
    verify_signature,
)

from .support import SECRET, alert, receiver, webhook_settings


async def send(url: str, **overrides: object) -> None:
    sink = WebhookSink(webhook_settings(url, **overrides))
    await sink.start()
    try:
        await sink.send(alert())
    finally:
        await sink.close()


async def test_the_body_is_the_alert_as_json_and_the_signature_verifies() -> None:
    async with receiver() as got:
        await send(got.url)
    (delivery,) = got.deliveries
    body = json.loads(delivery.body)
    assert body == {
        "type": "budget.threshold_crossed",
        "event_id": alert().event_id,
        "tenant": "acme",
        "period": "day",
        "threshold": 0.8,
        "used_fraction": 0.8125,
        "spent_micros": 8_125_000,
        "limit_micros": 10_000_000,
        "window_start": "2026-11-30T00:00:00Z",
        "resets_at": "2026-12-01T00:00:00Z",
        "crossed_at": "2026-11-30T14:03:12.345678Z",
        "request_id": "req_123",
    }
    headers = delivery.headers
    assert headers["Content-Type"] == "application/json"
    assert headers[EVENT_ID_HEADER] == alert().event_id
    assert abs(int(headers[TIMESTAMP_HEADER]) - time.time()) < 60
    # The recipe the README gives, spelled out: HMAC over "<timestamp>.<raw body>".
    signed = headers[TIMESTAMP_HEADER].encode() + b"." + delivery.body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert verify_signature(SECRET.encode(), headers, delivery.body)


def test_verification_refuses_a_changed_body_another_secret_and_a_stale_timestamp() -> None:
    body = alert().body()
    now = 1_764_511_392
    headers = {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: sign(SECRET.encode(), str(now), body)}
    assert verify_signature(SECRET.encode(), headers, body, now=now)
    assert not verify_signature(SECRET.encode(), headers, body + b" ", now=now)
    assert not verify_signature(b"another-secret-entirely", headers, body, now=now)
    assert not verify_signature(SECRET.encode(), headers, body, now=now + 301)
    assert not verify_signature(SECRET.encode(), {**headers, TIMESTAMP_HEADER: "x"}, body, now=now)


def test_the_event_id_names_the_crossing_not_the_delivery() -> None:
    first = alert()
    assert alert(request_id="req_other", spent_micros=9_000_000).event_id == first.event_id
    assert alert(threshold=0.5).event_id != first.event_id
    assert alert(limit_micros=20_000_000).event_id != first.event_id  # after a top-up
    assert alert(tenant="globex").event_id != first.event_id
    assert first.event_id.startswith("evt_")


async def test_a_5xx_is_retried_once_and_the_retry_is_signed_again() -> None:
    async with receiver(statuses=[500]) as got:
        await send(got.url)
    assert len(got.deliveries) == 2
    first, second = got.deliveries
    assert first.body == second.body
    assert first.headers[EVENT_ID_HEADER] == second.headers[EVENT_ID_HEADER]
    for delivery in got.deliveries:
        assert verify_signature(SECRET.encode(), delivery.headers, delivery.body)


async def test_two_5xx_answers_fail_after_two_attempts() -> None:
    async with receiver(statuses=[503, 502]) as got:
        with pytest.raises(AlertDeliveryError, match=r"HTTP 502 \(after 2 attempt"):
            await send(got.url)
    assert len(got.deliveries) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 410])
async def test_a_4xx_is_not_retried(status: int) -> None:
    async with receiver(statuses=[status]) as got:
        with pytest.raises(AlertDeliveryError, match=rf"HTTP {status} \(after 1 attempt"):
            await send(got.url)
    assert len(got.deliveries) == 1


async def test_a_redirect_is_not_followed() -> None:
    async with receiver(statuses=[307]) as got:
        with pytest.raises(AlertDeliveryError, match="HTTP 307"):
            await send(got.url)
    assert len(got.deliveries) == 1


async def test_a_hung_receiver_times_out_and_is_retried_once() -> None:
    async with receiver(hang=True) as got:
        started = time.monotonic()
        with pytest.raises(AlertDeliveryError, match="TimeoutError"):
            await send(got.url, timeout_s=0.2)
        elapsed = time.monotonic() - started
    assert len(got.deliveries) == 2
    assert 0.4 <= elapsed < 2.0


async def test_a_refused_connection_is_retried_once() -> None:
    async with receiver() as got:
        url = got.url
    started = time.monotonic()
    with pytest.raises(AlertDeliveryError, match=r"ClientConnectorError.*after 2 attempt"):
        await send(url, retry_backoff_s=0.1)
    assert time.monotonic() - started >= 0.1
