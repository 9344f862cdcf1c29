"""SnsSink: the Publish call's shape (a fake client), and one real aiobotocore
Publish to a loopback SNS stub (the Query protocol: form in, XML out)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from gateway.alerts import SnsSettings
from gateway.alerts.sns import SnsSink, publish_arguments, subject

from .support import alert

TOPIC = "arn:aws:sns:eu-west-1:123456789012:budget-alerts"


class FakeSnsClient:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def publish(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"MessageId": "m-1"}


async def test_publish_sends_the_webhook_body_with_filterable_attributes() -> None:
    client = FakeSnsClient()
    sink = SnsSink(SnsSettings(topic_arn=TOPIC), client=client)
    await sink.start()
    await sink.send(alert())
    (call,) = client.calls
    assert call["TopicArn"] == TOPIC
    assert json.loads(call["Message"]) == alert().payload()
    assert call["Subject"] == "Titan budget alert: acme day budget at 81% (threshold 80%)"
    assert call["MessageAttributes"] == {
        "event_id": {"DataType": "String", "StringValue": alert().event_id},
        "tenant": {"DataType": "String", "StringValue": "acme"},
        "period": {"DataType": "String", "StringValue": "day"},
    }
    assert "MessageGroupId" not in call
    assert "MessageDeduplicationId" not in call


def test_a_fifo_topic_deduplicates_on_the_event_id() -> None:
    arguments = publish_arguments(TOPIC + ".fifo", alert())
    assert arguments["MessageGroupId"] == "acme"
    assert arguments["MessageDeduplicationId"] == alert().event_id


def test_the_subject_is_ascii_and_at_most_100_characters() -> None:
    text = subject(alert(tenant="café-" + "x" * 200))
    assert len(text) == 100
    assert text.isascii()


@asynccontextmanager
async def sns_stub(published: list[dict[str, str]]) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        published.append({k: str(v) for k, v in form.items()})
        xml = (
            '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
            "<PublishResult><MessageId>stub-1</MessageId></PublishResult>"
            "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>"
        )
        return web.Response(text=xml, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_real_aiobotocore_publish_reaches_a_loopback_stub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    published: list[dict[str, str]] = []
    async with sns_stub(published) as url:
        sink = SnsSink(SnsSettings(topic_arn=TOPIC, endpoint_url=url, timeout_s=2))
        await sink.start()
        try:
            await sink.send(alert())
        finally:
            await sink.close()
    (form,) = published
    assert form["Action"] == "Publish"
    assert form["TopicArn"] == TOPIC
    assert json.loads(form["Message"]) == alert().payload()
    attributes = {
        form[f"MessageAttributes.entry.{i}.Name"]: form[
            f"MessageAttributes.entry.{i}.Value.StringValue"
        ]
        for i in (1, 2, 3)
    }
    assert attributes == {"event_id": alert().event_id, "tenant": "acme", "period": "day"}
