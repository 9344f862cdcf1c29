"""The PostgreSQL ledger's admin audit log (see `audit.py`): each budget
change and its audit entry in one transaction, under the tenant's advisory
lock (the one reservations take), so the "old" cap recorded is the one the
change replaced even when two admins change it at once, the first override
of a period included (a row that does not exist yet cannot be locked).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gateway.ledger.audit import AUDIT_COLUMNS, AUDIT_FIELDS, AuditAction, AuditEntry
from gateway.ledger.base import Period
from gateway.ledger.postgres_ops import lock_tenant

_PLACEHOLDERS = ", ".join(f"${i}" for i in range(1, len(AUDIT_FIELDS) + 1))


async def set_budget_audited(
    conn: Any, period: Period, limit: int, base: int | None, entry: AuditEntry
) -> AuditEntry:
    """Inside a transaction: replace the override and record the entry."""
    old = await _locked_override(conn, entry.tenant, period)
    await conn.execute(
        "INSERT INTO budget_overrides (tenant, period, limit_micros) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant, period) DO UPDATE SET limit_micros = EXCLUDED.limit_micros",
        entry.tenant,
        period.value,
        limit,
    )
    return await insert_audit(conn, entry.with_limits(base if old is None else old, limit))


async def top_up_audited(
    conn: Any, period: Period, amount: int, base: int, entry: AuditEntry
) -> AuditEntry:
    """Inside a transaction: raise the override and record the entry."""
    old = await _locked_override(conn, entry.tenant, period)
    new = await conn.fetchval(
        "INSERT INTO budget_overrides (tenant, period, limit_micros) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant, period) DO UPDATE"
        " SET limit_micros = budget_overrides.limit_micros + $4 RETURNING limit_micros",
        entry.tenant,
        period.value,
        base + amount,
        amount,
    )
    return await insert_audit(conn, entry.with_limits(base if old is None else old, int(new)))


async def insert_audit(conn: Any, entry: AuditEntry) -> AuditEntry:
    values = [getattr(entry, name) for name in AUDIT_FIELDS]
    values[AUDIT_FIELDS.index("period")] = entry.period.value if entry.period else ""
    values[AUDIT_FIELDS.index("action")] = str(entry.action)
    row_id = await conn.fetchval(
        f"INSERT INTO admin_audit ({AUDIT_COLUMNS}) VALUES ({_PLACEHOLDERS}) RETURNING id",
        *values,
    )
    return replace(entry, id=int(row_id))


async def recent_audit(conn: Any, tenant: str | None, limit: int) -> list[AuditEntry]:
    rows = await conn.fetch(
        f"SELECT {AUDIT_COLUMNS}, id FROM admin_audit WHERE $1::text IS NULL OR tenant = $1"
        " ORDER BY created_at DESC, id DESC LIMIT $2",
        tenant,
        limit,
    )
    return [_entry(dict(row)) for row in rows]


async def _locked_override(conn: Any, tenant: str, period: Period) -> int | None:
    await lock_tenant(conn, tenant)
    value = await conn.fetchval(
        "SELECT limit_micros FROM budget_overrides WHERE tenant = $1 AND period = $2",
        tenant,
        period.value,
    )
    return None if value is None else int(value)


def _entry(row: dict[str, Any]) -> AuditEntry:
    row["period"] = Period(row["period"]) if row["period"] else None
    row["action"] = AuditAction(row["action"])
    return AuditEntry(**row)
