"""How a claim on an idempotency key is decided, given the stored row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.ledger.base import IdempotencyClaim, IdempotencyState

RUNNING = "running"
DONE = "done"


@dataclass(frozen=True)
class KeyRow:
    """A stored idempotency key (read under the transaction's lock)."""

    request_hash: str
    state: str  # RUNNING or DONE
    result: bytes | None
    expires_at: datetime | None  # lease end while RUNNING


def decide_claim(row: KeyRow, request_hash: str, now: datetime) -> IdempotencyClaim:
    """CONFLICT beats everything; a RUNNING claim past its lease is taken over (NEW)."""
    if row.request_hash != request_hash:
        return IdempotencyClaim(IdempotencyState.CONFLICT)
    if row.state == DONE:
        return IdempotencyClaim(IdempotencyState.DONE, row.result)
    if row.expires_at is not None and row.expires_at > now:
        return IdempotencyClaim(IdempotencyState.RUNNING)
    return IdempotencyClaim(IdempotencyState.NEW)
