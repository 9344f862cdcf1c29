"""The money ledger: budgets, leased reservations, usage, denials, idempotency.

`Ledger` is the seam; `open_ledger(url)` builds a store from a URL:

    sqlite:///var/ledger.db         SQLite file, path relative to the cwd
    sqlite:////abs/path/ledger.db   SQLite file, absolute path
    postgresql://user@host/db       PostgreSQL (also postgres://…)

The store is not connected until `await ledger.start()`.
"""

from __future__ import annotations

from gateway.ledger.audit import AuditAction, AuditEntry
from gateway.ledger.base import (
    BudgetExhausted,
    BudgetLimit,
    BudgetState,
    DenialRecord,
    IdempotencyClaim,
    IdempotencyState,
    Ledger,
    LedgerError,
    LedgerUnavailable,
    Period,
    Reservation,
    ReservationLost,
    UsageGroup,
    UsageRecord,
    period_window,
)
from gateway.ledger.postgres import PostgresLedger
from gateway.ledger.sqlite import SqliteLedger

__all__ = [
    "AuditAction",
    "AuditEntry",
    "BudgetExhausted",
    "BudgetLimit",
    "BudgetState",
    "DenialRecord",
    "IdempotencyClaim",
    "IdempotencyState",
    "Ledger",
    "LedgerError",
    "LedgerUnavailable",
    "Period",
    "PostgresLedger",
    "Reservation",
    "ReservationLost",
    "SqliteLedger",
    "UsageGroup",
    "UsageRecord",
    "open_ledger",
    "period_window",
]

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_ledger(url: str) -> Ledger:
    """A ledger for `url` (not yet started); ValueError for an unknown URL."""
    if url.startswith(_SQLITE_PREFIX):
        path = url.removeprefix(_SQLITE_PREFIX)
        if not path or "?" in path:
            raise ValueError(f"sqlite ledger URL needs a plain file path: {url!r}")
        return SqliteLedger(path)
    if url.startswith(_POSTGRES_SCHEMES):
        return PostgresLedger(url)
    raise ValueError(f"unsupported ledger URL {url!r} (use sqlite:///… or postgresql://…)")
