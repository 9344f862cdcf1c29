"""Budget alerts: when a tenant's spend crosses one of its budget's
`alert_thresholds`, tell someone, without slowing or failing the request.

    BudgetAlert     one crossing and its JSON body (event.py)
    AlertNotifier   fire-and-forget delivery, tracked for shutdown (notifier.py)
    WebhookSink     signed JSON POST, one retry on 5xx/no answer (webhook.py)
    SnsSink         Amazon SNS Publish through aiobotocore (sns.py)
    AlertSettings   the settings' `alerts` section (settings.py)

`open_alerts(settings)` builds the notifier the settings describe; the
server starts it and closes it after the last request has finished. The
sinks are imported by `open_alerts`, not here: `gateway.settings` imports
this package for `AlertSettings`, and every CLI command loads settings, so
aiohttp and aiobotocore stay out of their import time.
"""

from __future__ import annotations

from gateway.alerts.event import EVENT_TYPE, BudgetAlert
from gateway.alerts.notifier import AlertNotifier, AlertSink
from gateway.alerts.settings import AlertSettings, SnsSettings, WebhookSettings

__all__ = [
    "EVENT_TYPE",
    "AlertNotifier",
    "AlertSettings",
    "AlertSink",
    "BudgetAlert",
    "SnsSettings",
    "WebhookSettings",
    "open_alerts",
]


def open_alerts(settings: AlertSettings) -> AlertNotifier:
    """The notifier `settings` describe (not yet started); no sinks when none is set."""
    from gateway.alerts.sns import SnsSink
    from gateway.alerts.webhook import WebhookSink

    sinks: list[AlertSink] = []
    if settings.webhook.url is not None:
        sinks.append(WebhookSink(settings.webhook))
    if settings.sns.topic_arn is not None:
        sinks.append(SnsSink(settings.sns))
    return AlertNotifier(sinks, max_pending=settings.max_pending)
