"""The SQLite ledger's transactions, as plain functions on one connection.

They run on the ledger's single worker thread (see `sqlite.py`). Every write
is `BEGIN IMMEDIATE … COMMIT`: the write lock is taken before anything is
read, so two processes sharing the file cannot both pass a budget check on the
same snapshot; the loser waits up to `busy_timeout`. Times are stored as
INTEGER microseconds since the epoch (UTC), money as INTEGER micro-USD.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.ledger.base import (
    EPOCH,
    BudgetExhausted,
    BudgetLimit,
    DenialRecord,
    IdempotencyClaim,
    IdempotencyState,
    LedgerError,
    Period,
    Reservation,
    ReservationLost,
    UsageGroup,
    UsageRecord,
)
from gateway.ledger.budget import TenantSnapshot, check_reservation, spend_windows, window_starts
from gateway.ledger.idempotency import DONE, RUNNING, KeyRow, decide_claim
from gateway.ledger.schema import (
    DENIAL_COLUMNS,
    DENIAL_FIELDS,
    USAGE_COLUMNS,
    USAGE_FIELDS,
    load_migrations,
)

_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // _US


def from_us(value: int) -> datetime:
    return EPOCH + value * _US


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT), WAL, full fsync."""
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        _enable_wal(conn, time.monotonic() + busy_timeout_s)
        # A settled image may already be on its way to the client: keep the commit.
        conn.execute("PRAGMA synchronous = FULL")
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, deadline: float) -> None:
    """Switch to WAL, retrying: on a fresh file that other processes are opening
    too, the switch can fail with SQLITE_BUSY without consulting busy_timeout."""
    delay = 0.001
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.05)
            continue
        if str(mode).lower() != "wal":
            raise LedgerError(f"could not switch the ledger to WAL (journal_mode={mode})")
        return


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error (including in COMMIT).

    Inside a transaction already (a group commit, `sqlite_group`) it is this
    job's savepoint instead: its writes are undone alone on an error, and
    committed with the group's COMMIT."""
    if conn.in_transaction:
        conn.execute("SAVEPOINT job")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
            raise
        conn.execute("RELEASE job")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def read(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: every SELECT inside sees the same WAL snapshot (inside
    a group commit's transaction, that transaction's)."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection) -> None:
    """Apply pending migrations, each in its own IMMEDIATE transaction."""
    with write(conn):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT"
        )
    for migration in load_migrations("sqlite"):
        with write(conn):
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if done:
                continue  # another process got there first
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                (migration.version, migration.name),
            )


def split_statements(script: str) -> list[str]:
    """Split a script into statements (executescript would COMMIT on its own)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise LedgerError(f"unterminated SQL statement in migration: {pending.strip()[:60]}")
    return statements


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in text.splitlines())


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


def usage_values(record: UsageRecord) -> tuple[object, ...]:
    return (
        record.tenant,
        record.request_id,
        record.image_index,
        record.model,
        record.task,
        record.width,
        record.height,
        record.quality,
        record.cost_micros,
        record.image_sha256,
        to_us(record.created_at),
        record.route_arm,
        record.watermark_id,
        record.manifest_json,
    )


def usage_record(row: Sequence[Any]) -> UsageRecord:
    """A row selected as USAGE_COLUMNS."""
    values = dict(zip(USAGE_FIELDS, row, strict=True))
    values["created_at"] = from_us(values["created_at"])
    return UsageRecord(**values)


def release(conn: sqlite3.Connection, reservation_id: str) -> int:
    with write(conn):
        row = conn.execute(
            "DELETE FROM reservations WHERE id = ? RETURNING remaining_micros", (reservation_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def renew(conn: sqlite3.Connection, reservation_id: str, now: datetime, until: datetime) -> bool:
    with write(conn):
        row = conn.execute(
            "UPDATE reservations SET expires_at = MAX(expires_at, ?)"
            " WHERE id = ? AND expires_at > ? RETURNING id",
            (to_us(until), reservation_id, to_us(now)),
        ).fetchone()
    return row is not None


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


def usage_summary(
    conn: sqlite3.Connection, tenant: str, since: datetime, until: datetime
) -> list[UsageGroup]:
    rows = conn.execute(
        "SELECT model, task, COUNT(*), COALESCE(SUM(cost_micros), 0) FROM usage_records"
        " WHERE tenant = ? AND created_at >= ? AND created_at < ?"
        " GROUP BY model, task ORDER BY model, task",
        (tenant, to_us(since), to_us(until)),
    )
    return [UsageGroup(*row) for row in rows]


def recent_usage(conn: sqlite3.Connection, tenant: str | None, limit: int) -> list[UsageRecord]:
    rows = conn.execute(
        f"SELECT {USAGE_COLUMNS} FROM usage_records WHERE ? IS NULL OR tenant = ?"
        " ORDER BY created_at DESC, id DESC LIMIT ?",
        (tenant, tenant, limit),
    )
    return [usage_record(row) for row in rows]


def find_watermark(conn: sqlite3.Connection, watermark_id: str) -> UsageRecord | None:
    row = conn.execute(
        f"SELECT {USAGE_COLUMNS} FROM usage_records WHERE watermark_id = ? AND watermark_id <> ''"
        " ORDER BY id LIMIT 1",
        (watermark_id,),
    ).fetchone()
    return None if row is None else usage_record(row)


def settled_total(conn: sqlite3.Connection, tenant: str | None) -> int:
    (total,) = conn.execute(
        "SELECT COALESCE(SUM(cost_micros), 0) FROM usage_records WHERE ? IS NULL OR tenant = ?",
        (tenant, tenant),
    ).fetchone()
    return int(total)


def record_denial(conn: sqlite3.Connection, record: DenialRecord) -> None:
    with write(conn):
        conn.execute(
            f"INSERT INTO denials ({DENIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.tenant,
                record.request_id,
                record.reason,
                record.rule,
                record.message,
                to_us(record.created_at),
            ),
        )


def recent_denials(conn: sqlite3.Connection, tenant: str | None, limit: int) -> list[DenialRecord]:
    rows = conn.execute(
        f"SELECT {DENIAL_COLUMNS} FROM denials WHERE ? IS NULL OR tenant = ?"
        " ORDER BY created_at DESC, id DESC LIMIT ?",
        (tenant, tenant, limit),
    )
    return [denial_record(row) for row in rows]


def denial_record(row: Sequence[Any]) -> DenialRecord:
    """A row selected as DENIAL_COLUMNS."""
    values = dict(zip(DENIAL_FIELDS, row, strict=True))
    values["created_at"] = from_us(values["created_at"])
    return DenialRecord(**values)


def claim_idempotency(
    conn: sqlite3.Connection,
    tenant: str,
    key: str,
    request_hash: str,
    now: datetime,
    until: datetime,
) -> IdempotencyClaim:
    with write(conn):
        row = conn.execute(
            "SELECT request_hash, state, result, expires_at FROM idempotency_keys"
            " WHERE tenant = ? AND key = ?",
            (tenant, key),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO idempotency_keys (tenant, key, request_hash, state, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (tenant, key, request_hash, RUNNING, to_us(until)),
            )
            return IdempotencyClaim(IdempotencyState.NEW)
        expires = None if row[3] is None else from_us(row[3])
        claim = decide_claim(KeyRow(row[0], row[1], row[2], expires), request_hash, now)
        if claim.state is IdempotencyState.NEW:  # the previous owner's lease ran out
            conn.execute(
                "UPDATE idempotency_keys SET expires_at = ? WHERE tenant = ? AND key = ?",
                (to_us(until), tenant, key),
            )
        return claim


def complete_idempotency(conn: sqlite3.Connection, tenant: str, key: str, result: bytes) -> None:
    with write(conn):
        row = conn.execute(
            "SELECT state FROM idempotency_keys WHERE tenant = ? AND key = ?", (tenant, key)
        ).fetchone()
        if row is None:
            raise LedgerError(f"idempotency key {key!r} of tenant {tenant!r} is not claimed")
        if row[0] == DONE:
            return  # the first result stands
        conn.execute(
            "UPDATE idempotency_keys SET state = ?, result = ?, expires_at = NULL"
            " WHERE tenant = ? AND key = ?",
            (DONE, result, tenant, key),
        )


def abandon_idempotency(conn: sqlite3.Connection, tenant: str, key: str) -> None:
    with write(conn):
        conn.execute(
            "DELETE FROM idempotency_keys WHERE tenant = ? AND key = ? AND state = ?",
            (tenant, key, RUNNING),
        )
