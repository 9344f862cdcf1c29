"""Entries of the admin audit log: who (the admin key's hash prefix, never
the key), what and when; the service fills in the outcome."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.auth import bearer_key
from gateway.ledger import AuditAction, AuditEntry
from gateway.ledger.audit import OUTCOME_OK
from gateway.usage import PB_TO_PERIOD
from policies import hash_key
from titan.gateway.v1 import admin_service_pb2 as pb

# A reload whose file was invalid: the RPC answers OK with last_reload_ok false.
OUTCOME_POLICY_INVALID = "POLICY_INVALID"


def actor(context: Any) -> str:
    """The admin key's non-secret identity: "admin:sha256:" and its hash's first
    12 hex digits (admins authenticate by key only, never by certificate)."""
    read = getattr(context, "invocation_metadata", None)  # absent on test doubles
    key = bearer_key(read()) if read is not None else None
    return "admin:" + (hash_key(key)[:19] if key else "unknown")


def entry(context: Any, action: AuditAction, **fields: Any) -> AuditEntry:
    return AuditEntry(
        actor=actor(context), action=action, outcome=OUTCOME_OK,
        created_at=datetime.now(UTC), **fields,
    )  # fmt: skip


def budget_entry(
    context: Any,
    action: AuditAction,
    request: pb.SetBudgetRequest | pb.TopUpBudgetRequest,
    **fields: Any,
) -> AuditEntry:
    period = PB_TO_PERIOD.get(request.period)
    return entry(context, action, tenant=request.tenant_id, period=period, **fields)
