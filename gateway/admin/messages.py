"""Ledger rows as AdminService messages, and the page limit of the listings."""

from __future__ import annotations

from gateway.errors import FieldViolation, InvalidRequest
from gateway.ledger import AuditAction, AuditEntry, DenialRecord, UsageRecord
from gateway.usage import PERIOD_TO_PB, timestamp
from titan.gateway.v1 import admin_service_pb2 as pb
from titan.gateway.v1 import usage_service_pb2 as usage_pb

DEFAULT_RECORD_LIMIT = 100
MAX_RECORD_LIMIT = 1000
ACTIONS_TO_PB = {
    AuditAction.SET_BUDGET: pb.ADMIN_ACTION_SET_BUDGET,
    AuditAction.TOP_UP_BUDGET: pb.ADMIN_ACTION_TOP_UP_BUDGET,
    AuditAction.RELOAD_POLICY: pb.ADMIN_ACTION_RELOAD_POLICY,
}


def page_limit(requested: int) -> int:
    limit = requested or DEFAULT_RECORD_LIMIT
    if not 1 <= limit <= MAX_RECORD_LIMIT:
        raise InvalidRequest(
            [FieldViolation("limit", f"must be 1 to {MAX_RECORD_LIMIT} (0: the default)")]
        )
    return limit


def denial_message(denial: DenialRecord) -> pb.Denial:
    return pb.Denial(
        tenant_id=denial.tenant,
        request_id=denial.request_id,
        reason=denial.reason,
        rule=denial.rule,
        message=denial.message,
        created_at=timestamp(denial.created_at),
    )


def usage_record_message(record: UsageRecord) -> pb.UsageRecord:
    return pb.UsageRecord(
        tenant_id=record.tenant,
        request_id=record.request_id,
        image_index=record.image_index,
        model=record.model,
        task=record.task,
        width=record.width,
        height=record.height,
        quality=record.quality,
        cost_micros=record.cost_micros,
        image_sha256=record.image_sha256,
        created_at=timestamp(record.created_at),
        route_arm=record.route_arm,
        watermark_id=record.watermark_id,
    )


def audit_message(entry: AuditEntry) -> pb.AuditEntry:
    optional = {
        name: value
        for name in ("old_limit_micros", "new_limit_micros", "amount_micros")
        if (value := getattr(entry, name)) is not None
    }
    return pb.AuditEntry(
        id=entry.id,
        created_at=timestamp(entry.created_at),
        actor=entry.actor,
        action=ACTIONS_TO_PB[entry.action],
        outcome=entry.outcome,
        detail=entry.detail,
        tenant_id=entry.tenant,
        period=PERIOD_TO_PB[entry.period] if entry.period else usage_pb.BUDGET_PERIOD_UNSPECIFIED,
        old_policy_digest=entry.old_policy_digest,
        policy_digest=entry.policy_digest,
        **optional,
    )
