"""The SQLite ledger's transactions, as plain functions on one connection,
run on the ledger's writer thread (`sqlite.py`, `sqlite_group.py`):

- `connection`: opening the file (WAL), transactions, migrations, times;
- `money`: budget snapshots, reserve, settle, release, renewals, sweeps;
- `records`: usage rows and reports, denials, idempotency keys.
"""

from gateway.ledger.sqlite_ops.connection import (
    connect,
    from_us,
    migrate,
    read,
    split_statements,
    to_us,
    write,
)
from gateway.ledger.sqlite_ops.money import (
    already_settled,
    budget_overrides,
    overrides,
    read_snapshot,
    release,
    renew_many,
    reserve,
    set_budget,
    settle,
    snapshot,
    sweep,
    top_up,
)
from gateway.ledger.sqlite_ops.records import (
    abandon_idempotency,
    claim_idempotency,
    complete_idempotency,
    denial_record,
    find_watermark,
    recent_denials,
    recent_usage,
    record_denial,
    settled_total,
    usage_record,
    usage_summary,
    usage_values,
)

__all__ = [
    "abandon_idempotency",
    "already_settled",
    "budget_overrides",
    "claim_idempotency",
    "complete_idempotency",
    "connect",
    "denial_record",
    "find_watermark",
    "from_us",
    "migrate",
    "overrides",
    "read",
    "read_snapshot",
    "recent_denials",
    "recent_usage",
    "record_denial",
    "release",
    "renew_many",
    "reserve",
    "set_budget",
    "settle",
    "settled_total",
    "snapshot",
    "split_statements",
    "sweep",
    "to_us",
    "top_up",
    "usage_record",
    "usage_summary",
    "usage_values",
    "write",
]
