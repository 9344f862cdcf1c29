"""The store-independent rules: period windows, limits with overrides, URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ledger import (
    BudgetExhausted,
    BudgetLimit,
    BudgetState,
    Period,
    PostgresLedger,
    SqliteLedger,
    open_ledger,
    period_window,
)
from gateway.ledger.budget import TenantSnapshot, check_reservation, effective_limits
from gateway.ledger.sqlite_ops import split_statements

from .support import T0

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "now", "window"),
    [
        (Period.DAY, T0, (datetime(2025, 3, 14, tzinfo=UTC), datetime(2025, 3, 15, tzinfo=UTC))),
        (
            Period.DAY,
            datetime(2024, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC),
            (datetime(2024, 2, 28, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)),
        ),
        (Period.MONTH, T0, (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))),
        (
            Period.MONTH,
            datetime(2025, 12, 31, 23, 59, tzinfo=UTC),
            (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
        ),
        (Period.TOTAL, T0, (EPOCH, None)),
    ],
)
def test_period_window(
    period: Period, now: datetime, window: tuple[datetime, datetime | None]
) -> None:
    assert period_window(period, now) == window


def test_windows_are_utc_whatever_the_callers_zone() -> None:
    tokyo = timezone(timedelta(hours=9))
    start, end = period_window(Period.DAY, datetime(2025, 3, 15, 8, 0, tzinfo=tokyo))
    assert (start, end) == (datetime(2025, 3, 14, tzinfo=UTC), datetime(2025, 3, 15, tzinfo=UTC))


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_window(Period.DAY, datetime(2025, 3, 14))


@given(st.datetimes(timezones=st.just(UTC)), st.sampled_from([Period.DAY, Period.MONTH]))
def test_a_window_contains_now_and_starts_at_midnight(now: datetime, period: Period) -> None:
    start, end = period_window(period, now)
    assert end is not None
    assert start <= now < end
    assert (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
    assert period_window(period, end - timedelta(microseconds=1))[0] == start


def test_overrides_replace_and_extend_policy_limits() -> None:
    policy = [BudgetLimit(Period.DAY, 10), BudgetLimit(Period.TOTAL, 99)]
    assert effective_limits(policy, {Period.TOTAL: 50, Period.MONTH: 30}) == [
        BudgetLimit(Period.DAY, 10),
        BudgetLimit(Period.TOTAL, 50),
        BudgetLimit(Period.MONTH, 30),
    ]


@given(
    spent=st.integers(0, 10**9),
    reserved=st.integers(0, 10**9),
    amount=st.integers(0, 10**9),
    limit=st.integers(0, 2 * 10**9),
)
def test_check_refuses_exactly_when_the_limit_would_be_overrun(
    spent: int, reserved: int, amount: int, limit: int
) -> None:
    snapshot = TenantSnapshot({Period.DAY: spent}, {}, reserved)
    limits = [BudgetLimit(Period.DAY, limit)]
    if spent + reserved + amount <= limit:
        check_reservation("acme", amount, limits, snapshot, T0)
        return
    with pytest.raises(BudgetExhausted) as refused:
        check_reservation("acme", amount, limits, snapshot, T0)
    assert refused.value.remaining_micros == max(0, limit - spent - reserved)


def test_remaining_is_never_negative() -> None:
    state = BudgetState("acme", Period.TOTAL, EPOCH, None, 10, 15, 0)
    assert (state.remaining_micros, state.used_fraction) == (0, 1.5)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/ledger.db", Path("var/ledger.db")),
        ("sqlite:////abs/l.db", Path("/abs/l.db")),
    ],
)
def test_open_ledger_sqlite(url: str, path: Path) -> None:
    ledger = open_ledger(url)
    assert isinstance(ledger, SqliteLedger)
    assert ledger._path == path


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h:5433/db"])
def test_open_ledger_postgres(url: str) -> None:
    assert isinstance(open_ledger(url), PostgresLedger)


@pytest.mark.parametrize("url", ["mysql://h/db", "sqlite://", "sqlite:///", "ledger.db"])
def test_open_ledger_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match="ledger URL"):
        open_ledger(url)


def test_split_statements_keeps_comments_out_of_the_way() -> None:
    script = (
        "-- a table\nCREATE TABLE a (x INTEGER); -- trailing\nCREATE INDEX i ON a (x);\n-- end\n"
    )
    first, second = split_statements(script)
    assert first.endswith("CREATE TABLE a (x INTEGER); -- trailing")
    assert second == "CREATE INDEX i ON a (x);"
