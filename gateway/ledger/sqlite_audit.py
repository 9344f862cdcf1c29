"""The SQLite ledger's admin audit log: budget changes that commit together
with their audit entry, and the log read newest first (see `audit.py`).

Kept apart from `sqlite_ops` (the money path and records); it uses the same transaction
helpers, so a change and its entry share one `BEGIN IMMEDIATE … COMMIT`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gateway.ledger.audit import AUDIT_COLUMNS, AUDIT_FIELDS, AuditAction, AuditEntry
from gateway.ledger.base import Period
from gateway.ledger.sqlite_ops import from_us, to_us, write

_PLACEHOLDERS = ", ".join("?" for _ in AUDIT_FIELDS)


def set_budget_audited(
    conn: sqlite3.Connection, period: Period, limit: int, base: int | None, entry: AuditEntry
) -> AuditEntry:
    with write(conn):
        old = _override(conn, entry.tenant, period)
        conn.execute(
            "INSERT INTO budget_overrides (tenant, period, limit_micros) VALUES (?, ?, ?)"
            " ON CONFLICT (tenant, period) DO UPDATE SET limit_micros = excluded.limit_micros",
            (entry.tenant, period.value, limit),
        )
        return _insert(conn, entry.with_limits(base if old is None else old, limit))


def top_up_audited(
    conn: sqlite3.Connection, period: Period, amount: int, base: int, entry: AuditEntry
) -> AuditEntry:
    with write(conn):
        old = _override(conn, entry.tenant, period)
        (new,) = conn.execute(
            "INSERT INTO budget_overrides (tenant, period, limit_micros) VALUES (?, ?, ?)"
            " ON CONFLICT (tenant, period) DO UPDATE"
            " SET limit_micros = limit_micros + ? RETURNING limit_micros",
            (entry.tenant, period.value, base + amount, amount),
        ).fetchone()
        return _insert(conn, entry.with_limits(base if old is None else old, int(new)))


def record_audit(conn: sqlite3.Connection, entry: AuditEntry) -> AuditEntry:
    with write(conn):
        return _insert(conn, entry)


def recent_audit(conn: sqlite3.Connection, tenant: str | None, limit: int) -> list[AuditEntry]:
    rows = conn.execute(
        f"SELECT {AUDIT_COLUMNS}, id FROM admin_audit WHERE ? IS NULL OR tenant = ?"
        " ORDER BY created_at DESC, id DESC LIMIT ?",
        (tenant, tenant, limit),
    )
    return [_entry(row) for row in rows]


def _override(conn: sqlite3.Connection, tenant: str, period: Period) -> int | None:
    row = conn.execute(
        "SELECT limit_micros FROM budget_overrides WHERE tenant = ? AND period = ?",
        (tenant, period.value),
    ).fetchone()
    return None if row is None else int(row[0])


def _insert(conn: sqlite3.Connection, entry: AuditEntry) -> AuditEntry:
    values = [getattr(entry, name) for name in AUDIT_FIELDS]
    values[AUDIT_FIELDS.index("created_at")] = to_us(entry.created_at)
    values[AUDIT_FIELDS.index("period")] = entry.period.value if entry.period else ""
    values[AUDIT_FIELDS.index("action")] = str(entry.action)
    (row_id,) = conn.execute(
        f"INSERT INTO admin_audit ({AUDIT_COLUMNS}) VALUES ({_PLACEHOLDERS}) RETURNING id",
        values,
    ).fetchone()
    return replace(entry, id=int(row_id))


def _entry(row: Sequence[Any]) -> AuditEntry:
    """A row selected as AUDIT_COLUMNS, id."""
    values = dict(zip((*AUDIT_FIELDS, "id"), row, strict=True))
    values["created_at"] = from_us(values["created_at"])
    values["period"] = Period(values["period"]) if values["period"] else None
    values["action"] = AuditAction(values["action"])
    return AuditEntry(**values)
