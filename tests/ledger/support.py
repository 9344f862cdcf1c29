"""Shared values and builders for the ledger tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from gateway.ledger import BudgetLimit, Period, UsageRecord

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)  # mid-day, mid-month
PRICE = 40_000  # 0.04 USD, one standard 1024x1024 image
LEASE_S = 60.0


def day(limit: int) -> BudgetLimit:
    return BudgetLimit(Period.DAY, limit)


def month(limit: int) -> BudgetLimit:
    return BudgetLimit(Period.MONTH, limit)


def total(limit: int) -> BudgetLimit:
    return BudgetLimit(Period.TOTAL, limit)


def usage(
    tenant: str,
    request_id: str,
    index: int = 0,
    *,
    cost: int = PRICE,
    at: datetime = T0,
    model: str = "amazon.titan-image-generator-v2:0",
    task: str = "TEXT_IMAGE",
) -> UsageRecord:
    return UsageRecord(
        tenant=tenant,
        request_id=request_id,
        image_index=index,
        model=model,
        task=task,
        width=1024,
        height=1024,
        quality="standard",
        cost_micros=cost,
        image_sha256=hashlib.sha256(f"{request_id}/{index}".encode()).hexdigest(),
        created_at=at,
    )


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
