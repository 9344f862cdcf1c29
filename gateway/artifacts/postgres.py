"""`PostgresArtifactStore`: artifacts in the ledger's PostgreSQL database,
so every replica can replay what any replica delivered (table `artifacts`,
created by the ledger's migration 004)."""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.artifacts.base import ArtifactMissing
from gateway.ledger import LedgerUnavailable

_STORE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresArtifactStore:
    """put/get over a small asyncpg pool of its own."""

    def __init__(self, dsn: str, *, max_size: int = 4) -> None:
        self._dsn = dsn
        self._max_size = max_size
        self._pool: Any = None

    async def start(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._max_size)
        except _STORE_ERRORS as exc:
            raise LedgerUnavailable(f"artifact store: cannot connect: {exc}") from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def put(self, name: str, data: bytes) -> None:
        # First writer wins: a name is written once per attempt (see gateway.idempotency).
        await self._run(
            "INSERT INTO artifacts (name, data) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            name,
            data,
        )

    async def get(self, name: str) -> bytes:
        data = await self._run("SELECT data FROM artifacts WHERE name = $1", name, fetch=True)
        if data is None:
            raise ArtifactMissing(name)
        return bytes(data)

    async def _run(self, sql: str, *args: object, fetch: bool = False) -> Any:
        if self._pool is None:
            raise LedgerUnavailable("artifact store is not started")
        try:
            async with self._pool.acquire() as conn:
                if fetch:
                    return await conn.fetchval(sql, *args)
                return await conn.execute(sql, *args)
        except _STORE_ERRORS as exc:
            raise LedgerUnavailable(f"artifact store: {exc}") from exc
