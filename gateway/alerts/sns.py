"""`SnsSink`: each alert published to an Amazon SNS topic through aiobotocore.

The message is the same JSON body a webhook gets (SNS signs its own
deliveries, so there is no HMAC here), with `event_id`, `tenant` and `period`
as message attributes for subscription filter policies. A FIFO topic
(`….fifo`) gets the tenant as message group and the event id as
deduplication id, so SNS itself drops a repeated crossing. botocore retries
once (5xx, throttling, connection errors); each attempt is bounded by
`timeout_s`. Credentials come from the standard AWS chain.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig

from gateway.alerts.event import BudgetAlert
from gateway.alerts.settings import SnsSettings
from gateway.backends.aws import open_client

SUBJECT_MAX = 100  # SNS's limit for an e-mail subject


class SnsSink:
    """`AlertSink` publishing to `settings.topic_arn`; `client` replaces aiobotocore's (tests)."""

    name = "sns"

    def __init__(self, settings: SnsSettings, *, client: Any = None) -> None:
        if settings.topic_arn is None:
            raise ValueError("an SNS sink needs a topic ARN")
        self._settings = settings
        self._topic_arn = settings.topic_arn
        self._client: Any = client
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        if self._client is not None:
            return
        self._client, self._stack = await open_client(
            "sns",
            region=self._settings.effective_region,
            endpoint_url=self._settings.endpoint_url,
            config=self._config(),
        )

    async def close(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            self._client = None
            await stack.aclose()

    async def send(self, alert: BudgetAlert) -> None:
        if self._client is None:
            raise RuntimeError("the SNS sink is not started")
        await self._client.publish(**publish_arguments(self._topic_arn, alert))

    def _config(self) -> AioConfig:
        timeout = self._settings.timeout_s
        return AioConfig(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"total_max_attempts": 2, "mode": "standard"},
        )


def publish_arguments(topic_arn: str, alert: BudgetAlert) -> dict[str, Any]:
    """The keyword arguments of SNS `Publish` for `alert`."""
    arguments: dict[str, Any] = {
        "TopicArn": topic_arn,
        "Message": alert.body().decode(),
        "Subject": subject(alert),
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value}
            for name, value in (
                ("event_id", alert.event_id),
                ("tenant", alert.tenant),
                ("period", alert.period),
            )
        },
    }
    if topic_arn.endswith(".fifo"):
        arguments["MessageGroupId"] = alert.tenant
        arguments["MessageDeduplicationId"] = alert.event_id
    return arguments


def subject(alert: BudgetAlert) -> str:
    """A one-line, ASCII subject (SNS refuses others) of at most 100 characters."""
    text = (
        f"Titan budget alert: {alert.tenant} {alert.period} budget "
        f"at {alert.used_fraction:.0%} (threshold {alert.threshold:.0%})"
    )
    ascii_text = text.encode("ascii", "replace").decode().replace("\n", " ")
    return ascii_text[:SUBJECT_MAX]
