"""The SQLite ledger's records: usage rows (and the reports read from them),
denials and idempotency keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.ledger.base import (
    DenialRecord,
    IdempotencyClaim,
    IdempotencyState,
    LedgerError,
    UsageGroup,
    UsageRecord,
)
from gateway.ledger.idempotency import DONE, RUNNING, KeyRow, decide_claim
from gateway.ledger.schema import DENIAL_COLUMNS, DENIAL_FIELDS, USAGE_COLUMNS, USAGE_FIELDS
from gateway.ledger.sqlite_ops.connection import from_us, to_us, write


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
