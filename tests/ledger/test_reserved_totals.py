"""SQLite's running total of reserved budget per tenant (migration 007),
kept by triggers, always equals the sum of the tenant's reservation rows,
whatever sequence of reserves, settles, releases, renewals, sweeps and
lease reclaims changed them; reserves and budget reads use it (less the
expired rows) instead of adding up every live reservation."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from datetime import timedelta
from pathlib import Path

from gateway.ledger import BudgetExhausted, ReservationLost
from gateway.ledger.sqlite import SqliteLedger
from gateway.ledger.sqlite_ops import to_us

from .support import PRICE, T0, day, usage

TENANTS = ("acme", "globex", "initech")


def _live(path: Path, tenant: str, now_us: int) -> int:
    conn = sqlite3.connect(path)
    try:
        (live,) = conn.execute(
            "SELECT COALESCE(SUM(remaining_micros), 0) FROM reservations"
            " WHERE tenant = ? AND expires_at > ?",
            (tenant, now_us),
        ).fetchone()
    finally:
        conn.close()
    return int(live)


def _totals(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    conn = sqlite3.connect(path)
    try:
        kept = dict(conn.execute("SELECT tenant, remaining_micros FROM reserved_totals"))
        summed = dict(
            conn.execute("SELECT tenant, SUM(remaining_micros) FROM reservations GROUP BY tenant")
        )
    finally:
        conn.close()
    return kept, summed


async def test_the_running_total_equals_the_rows_after_every_change(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(path)
    await ledger.start()
    rng = random.Random(7)
    live: list[tuple[str, str, str]] = []  # (reservation id, tenant, request id)
    now, refused, steps = T0, 0, 400
    try:
        for step in range(steps):
            now += timedelta(seconds=rng.choice((0, 1, 5, 20)))
            action = rng.random()
            if action < 0.45 or not live:
                tenant = rng.choice(TENANTS)
                amount = PRICE * rng.randint(1, 3)
                try:
                    r = await ledger.reserve(
                        tenant, f"q{step}", amount, [day(12 * PRICE)], now=now, lease_s=30
                    )
                except BudgetExhausted:
                    refused += 1
                else:
                    live.append((r.id, tenant, f"q{step}"))
            elif action < 0.7:
                rid, tenant, request = rng.choice(live)
                index = rng.randint(0, 2)
                with contextlib.suppress(ReservationLost):
                    await ledger.settle(
                        rid, usage(tenant, request, index, at=now), [day(12 * PRICE)]
                    )
            elif action < 0.85:
                rid, _, _ = live.pop(rng.randrange(len(live)))
                await ledger.release(rid)
            elif action < 0.95:
                rid, _, _ = rng.choice(live)
                await ledger.renew_many([rid], now=now, lease_s=30)
            else:
                await ledger.sweep(now=now)
            kept, summed = _totals(path)
            assert {t: v for t, v in kept.items() if v or t in summed} == summed, step
            # What a budget read counts (total less expired rows) is the live sum.
            for tenant in TENANTS:
                (state,) = await ledger.budgets(tenant, [day(12 * PRICE)], now=now)
                assert state.reserved_micros == _live(path, tenant, to_us(now)), step
    finally:
        await ledger.close()
    assert 0 < refused < steps  # the budget was reached and freed again along the way
