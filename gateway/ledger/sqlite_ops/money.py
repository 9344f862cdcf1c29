"""The SQLite ledger's money path: budget snapshots, reserve, settle (fenced),
release, lease renewals and sweeps, and budget overrides. Money is INTEGER
micro-USD."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from gateway.ledger.base import (
    BudgetExhausted,
    BudgetLimit,
    LedgerError,
    Period,
    Reservation,
    ReservationLost,
    UsageRecord,
)
from gateway.ledger.budget import TenantSnapshot, check_reservation, spend_windows, window_starts
from gateway.ledger.schema import USAGE_COLUMNS, USAGE_FIELDS
from gateway.ledger.sqlite_ops.connection import read, to_us, write
from gateway.ledger.sqlite_ops.records import usage_values


def snapshot(conn: sqlite3.Connection, tenant: str, now: datetime) -> TenantSnapshot:
    """Spent, overrides and live reservations of `tenant` at `now`."""
    spent = {}
    for period, start in window_starts(now).items():
        row = conn.execute(
            "SELECT spent_micros FROM spend_counters"
            " WHERE tenant = ? AND period = ? AND window_start = ?",
            (tenant, period.value, to_us(start)),
        ).fetchone()
        spent[period] = row[0] if row else 0
    # The running total (007, kept by triggers) less the expired rows not yet
    # deleted: a few index entries, where summing the live rows read every
    # reservation in flight (quadratic with thousands of them).
    (reserved,) = conn.execute(
        "SELECT COALESCE((SELECT remaining_micros FROM reserved_totals WHERE tenant = ?1), 0)"
        " - COALESCE((SELECT SUM(remaining_micros) FROM reservations"
        " WHERE tenant = ?1 AND expires_at <= ?2), 0)",
        (tenant, to_us(now)),
    ).fetchone()
    return TenantSnapshot(spent, overrides(conn, tenant), reserved)


def read_snapshot(conn: sqlite3.Connection, tenant: str, now: datetime) -> TenantSnapshot:
    with read(conn):
        return snapshot(conn, tenant, now)


def overrides(conn: sqlite3.Connection, tenant: str) -> dict[Period, int]:
    rows = conn.execute(
        "SELECT period, limit_micros FROM budget_overrides WHERE tenant = ?", (tenant,)
    )
    return {Period(period): limit for period, limit in rows}


def reserve(
    conn: sqlite3.Connection,
    reservation: Reservation,
    limits: Sequence[BudgetLimit],
    now: datetime,
) -> None:
    with write(conn):
        # What is no longer counted must no longer be settled against (the fence).
        conn.execute(
            "DELETE FROM reservations WHERE tenant = ? AND expires_at <= ?",
            (reservation.tenant, to_us(now)),
        )
        snap = snapshot(conn, reservation.tenant, now)
        check_reservation(reservation.tenant, reservation.amount_micros, limits, snap, now)
        conn.execute(
            "INSERT INTO reservations (id, tenant, request_id, amount_micros,"
            " remaining_micros, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                reservation.id,
                reservation.tenant,
                reservation.request_id,
                reservation.amount_micros,
                reservation.amount_micros,
                to_us(now),
                to_us(reservation.expires_at),
            ),
        )


def settle(
    conn: sqlite3.Connection,
    reservation_id: str,
    record: UsageRecord,
    limits: Sequence[BudgetLimit],
) -> None:
    """See `Ledger.settle`; SQLite has one writer, so the write lock is the fence."""
    with write(conn):
        if already_settled(conn, record):
            return  # this image was settled before: never charge twice
        owner = conn.execute(
            "SELECT tenant FROM reservations WHERE id = ?", (reservation_id,)
        ).fetchone()
        if owner is not None and owner[0] != record.tenant:
            raise LedgerError(f"reservation {reservation_id} belongs to another tenant")
        if owner is None:
            snap = snapshot(conn, record.tenant, record.created_at)
            try:
                check_reservation(
                    record.tenant, record.cost_micros, limits, snap, record.created_at
                )
            except BudgetExhausted as exc:
                raise ReservationLost(record.tenant, reservation_id, exc) from exc
        inserted = conn.execute(
            f"INSERT INTO usage_records ({USAGE_COLUMNS}, reservation_id)"
            f" VALUES ({_PLACEHOLDERS})"
            " ON CONFLICT (tenant, request_id, image_index) DO NOTHING RETURNING id",
            (*usage_values(record), reservation_id),
        ).fetchone()
        if inserted is None:
            return  # this image was settled before: never charge twice
        for period, start in spend_windows(record):
            conn.execute(
                "INSERT INTO spend_counters (tenant, period, window_start, spent_micros)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (tenant, period, window_start)"
                " DO UPDATE SET spent_micros = spent_micros + excluded.spent_micros",
                (record.tenant, period.value, to_us(start), record.cost_micros),
            )
        conn.execute(
            "UPDATE reservations SET remaining_micros = MAX(0, remaining_micros - ?) WHERE id = ?",
            (record.cost_micros, reservation_id),
        )


_PLACEHOLDERS = ", ".join("?" * (len(USAGE_FIELDS) + 1))


def already_settled(conn: sqlite3.Connection, record: UsageRecord) -> bool:
    row = conn.execute(
        "SELECT 1 FROM usage_records WHERE tenant = ? AND request_id = ? AND image_index = ?",
        (record.tenant, record.request_id, record.image_index),
    ).fetchone()
    return row is not None


def release(conn: sqlite3.Connection, reservation_id: str) -> int:
    with write(conn):
        row = conn.execute(
            "DELETE FROM reservations WHERE id = ? RETURNING remaining_micros", (reservation_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def renew_many(
    conn: sqlite3.Connection, reservation_ids: Sequence[str], now: datetime, until: datetime
) -> set[str]:
    renewed: set[str] = set()
    with write(conn):
        for start in range(0, len(reservation_ids), _IDS_PER_STATEMENT):
            ids = reservation_ids[start : start + _IDS_PER_STATEMENT]
            rows = conn.execute(
                "UPDATE reservations SET expires_at = MAX(expires_at, ?)"
                f" WHERE id IN ({', '.join('?' * len(ids))}) AND expires_at > ? RETURNING id",
                (to_us(until), *ids, to_us(now)),
            )
            renewed.update(row[0] for row in rows)
    return renewed


_IDS_PER_STATEMENT = 500  # well under SQLite's bound on variables per statement


def sweep(conn: sqlite3.Connection, now: datetime) -> int:
    with write(conn):
        cursor = conn.execute("DELETE FROM reservations WHERE expires_at <= ?", (to_us(now),))
        return cursor.rowcount


def set_budget(conn: sqlite3.Connection, tenant: str, period: Period, limit: int) -> None:
    with write(conn):
        conn.execute(
            "INSERT INTO budget_overrides (tenant, period, limit_micros) VALUES (?, ?, ?)"
            " ON CONFLICT (tenant, period) DO UPDATE SET limit_micros = excluded.limit_micros",
            (tenant, period.value, limit),
        )


def top_up(conn: sqlite3.Connection, tenant: str, period: Period, amount: int, base: int) -> int:
    with write(conn):
        (limit,) = conn.execute(
            "INSERT INTO budget_overrides (tenant, period, limit_micros) VALUES (?, ?, ?)"
            " ON CONFLICT (tenant, period) DO UPDATE"
            " SET limit_micros = limit_micros + ? RETURNING limit_micros",
            (tenant, period.value, base + amount, amount),
        ).fetchone()
    return int(limit)


def budget_overrides(conn: sqlite3.Connection, tenant: str) -> dict[Period, int]:
    with read(conn):
        return overrides(conn, tenant)
