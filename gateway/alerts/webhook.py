"""`WebhookSink`: each alert POSTed as JSON to one URL, signed with HMAC-SHA256.

    POST <url>
    Content-Type: application/json
    X-Titan-Event-Id: evt_…            the same on every attempt (de-duplicate on it)
    X-Titan-Timestamp: 1764511392      unix seconds when this attempt was signed
    X-Titan-Signature: sha256=<hex>    HMAC-SHA256(secret, timestamp + "." + body)

Signing the timestamp with the body lets a receiver refuse replays: it checks
the signature and that the timestamp is recent (`verify_signature`). Each
attempt is signed afresh. A 2xx is delivered; a 5xx, a refused or broken
connection or no answer within `timeout_s` is retried once after
`retry_backoff_s`; a 4xx (or 3xx: redirects are not followed, they would
re-send the body elsewhere) is the receiver refusing it, and is not retried.
One aiohttp session (one connection pool) serves every delivery.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

import aiohttp

from gateway.alerts.event import BudgetAlert
from gateway.alerts.settings import WebhookSettings

SIGNATURE_HEADER = "X-Titan-Signature"
TIMESTAMP_HEADER = "X-Titan-Timestamp"
EVENT_ID_HEADER = "X-Titan-Event-Id"
USER_AGENT = "titan-image-gateway-alerts/1"
ATTEMPTS = 2  # the first, and one retry


class AlertDeliveryError(Exception):
    """An alert did not reach its receiver (after the retry, if one was allowed)."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-Titan-Signature` value: `sha256=` + HMAC-SHA256(secret, "<timestamp>.<body>")."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """What a receiver checks: the signature over the raw body, and a fresh timestamp."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected, headers.get(SIGNATURE_HEADER, ""))


class WebhookSink:
    """`AlertSink` that POSTs signed JSON to `settings.url`."""

    name = "webhook"

    def __init__(
        self, settings: WebhookSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        if settings.url is None or settings.secret is None:
            raise ValueError("a webhook sink needs a url and a secret")
        self._url = settings.url
        self._secret = settings.secret.get_secret_value().encode()
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
        self._backoff_s = settings.retry_backoff_s
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send(self, alert: BudgetAlert) -> None:
        body = alert.body()
        failure = ""
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:
                await asyncio.sleep(self._backoff_s)
            failure, retry = await self._attempt(alert.event_id, body)
            if not failure:
                return
            if not retry:
                break
        raise AlertDeliveryError(f"webhook {self._url}: {failure} (after {attempt} attempt(s))")

    async def _attempt(self, event_id: str, body: bytes) -> tuple[str, bool]:
        """("", _) when delivered, else (why, whether a retry may help)."""
        try:
            status = await self._post(event_id, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}".rstrip(": "), True
        if 200 <= status < 300:
            return "", False
        return f"answered HTTP {status}", status >= 500

    async def _post(self, event_id: str, body: bytes) -> int:
        if self._session is None:
            raise AlertDeliveryError("the webhook sink is not started")
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: event_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        async with self._session.post(
            self._url, data=body, headers=headers, allow_redirects=False
        ) as response:
            return response.status
