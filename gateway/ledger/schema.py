"""Numbered SQL migrations shipped as package data, one folder per dialect.

`migrations/<dialect>/NNN_name.sql` is applied in version order, each in its
own transaction, and recorded in `schema_migrations(version)`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources

from gateway.ledger.base import DenialRecord, LedgerError, UsageRecord

# usage_records columns named like UsageRecord's fields, in the same order.
USAGE_FIELDS = tuple(f.name for f in fields(UsageRecord))
USAGE_COLUMNS = ", ".join(USAGE_FIELDS)

# denials columns named like DenialRecord's fields, in the same order.
DENIAL_FIELDS = tuple(f.name for f in fields(DenialRecord))
DENIAL_COLUMNS = ", ".join(DENIAL_FIELDS)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """Every migration for `dialect` ("sqlite" or "postgres"), oldest first."""
    folder = resources.files("gateway.ledger") / "migrations" / dialect
    if not folder.is_dir():
        raise LedgerError(f"no {dialect} ledger migrations (package data missing?)")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        version = int(entry.name.split("_", 1)[0])
        if version in found:
            raise LedgerError(f"duplicate ledger migration version {version} in {dialect}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]
