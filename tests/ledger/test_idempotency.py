"""Contract: idempotency keys per tenant, on both stores."""

from __future__ import annotations

import pytest

from gateway.ledger import IdempotencyClaim, IdempotencyState, Ledger, LedgerError

from .support import T0, seconds

NEW = IdempotencyClaim(IdempotencyState.NEW)
RUNNING = IdempotencyClaim(IdempotencyState.RUNNING)
CONFLICT = IdempotencyClaim(IdempotencyState.CONFLICT)


async def test_new_then_running_then_done_with_the_result(ledger: Ledger) -> None:
    assert await ledger.claim_idempotency("acme", "k1", "h1", now=T0, lease_s=30) == NEW
    assert await ledger.claim_idempotency("acme", "k1", "h1", now=T0, lease_s=30) == RUNNING

    await ledger.complete_idempotency("acme", "k1", b"\x00result\xff")

    done = await ledger.claim_idempotency("acme", "k1", "h1", now=T0 + seconds(99), lease_s=30)
    assert done == IdempotencyClaim(IdempotencyState.DONE, b"\x00result\xff")


async def test_a_different_request_hash_conflicts(ledger: Ledger) -> None:
    await ledger.claim_idempotency("acme", "k1", "h1", now=T0, lease_s=30)
    assert await ledger.claim_idempotency("acme", "k1", "h2", now=T0, lease_s=30) == CONFLICT

    await ledger.complete_idempotency("acme", "k1", b"r")
    assert await ledger.claim_idempotency("acme", "k1", "h2", now=T0, lease_s=30) == CONFLICT


async def test_keys_are_scoped_per_tenant(ledger: Ledger) -> None:
    await ledger.claim_idempotency("acme", "k1", "h1", now=T0, lease_s=30)
    assert await ledger.claim_idempotency("globex", "k1", "h2", now=T0, lease_s=30) == NEW


async def test_an_expired_claim_is_taken_over_once(ledger: Ledger) -> None:
    await ledger.claim_idempotency("acme", "k1", "h1", now=T0, lease_s=10)

    taken = await ledger.claim_idempotency("acme", "k1", "h1", now=T0 + seconds(10), lease_s=10)
    again = await ledger.claim_idempotency("acme", "k1", "h1", now=T0 + seconds(11), lease_s=10)

    assert (taken, again) == (NEW, RUNNING)


async def test_abandon_frees_the_key(ledger: Ledger) -> None:
    await ledger.claim_idempotency("acme", "k1", "h1", now=T0, lease_s=30)
    await ledger.abandon_idempotency("acme", "k1")

    assert await ledger.claim_idempotency("acme", "k1", "h2", now=T0, lease_s=30) == NEW


async def test_abandon_keeps_a_finished_result(ledger: Ledger) -> None:
    await ledger.claim_idempotency("acme", "k1", "h1", now=T0, lease_s=30)
    await ledger.complete_idempotency("acme", "k1", b"first")
    await ledger.abandon_idempotency("acme", "k1")
    await ledger.complete_idempotency("acme", "k1", b"second")

    claim = await ledger.claim_idempotency("acme", "k1", "h1", now=T0, lease_s=30)
    assert claim == IdempotencyClaim(IdempotencyState.DONE, b"first")


async def test_completing_an_unclaimed_key_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="not claimed"):
        await ledger.complete_idempotency("acme", "nope", b"r")
