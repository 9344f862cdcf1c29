"""The SQLite ledger's connection: opening the file (WAL), its transactions
and migrations, and how times are stored (INTEGER microseconds since the
epoch, UTC).

Every write is `BEGIN IMMEDIATE … COMMIT`: the write lock is taken before
anything is read, so two processes sharing the file cannot both pass a budget
check on the same snapshot; another writer waits up to `busy_timeout` (the
gateway's own processes take turns before that, `sqlite_group.WriterTurn`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from gateway.ledger.base import EPOCH, LedgerError
from gateway.ledger.schema import load_migrations

_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // _US


def from_us(value: int) -> datetime:
    return EPOCH + value * _US


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT), WAL, full fsync."""
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        _enable_wal(conn, time.monotonic() + busy_timeout_s)
        # A settled image may already be on its way to the client: keep the commit.
        conn.execute("PRAGMA synchronous = FULL")
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, deadline: float) -> None:
    """Switch to WAL, retrying: on a fresh file that other processes are opening
    too, the switch can fail with SQLITE_BUSY without consulting busy_timeout."""
    delay = 0.001
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.05)
            continue
        if str(mode).lower() != "wal":
            raise LedgerError(f"could not switch the ledger to WAL (journal_mode={mode})")
        return


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error (including in COMMIT).

    Inside a transaction already (a group commit, `sqlite_group`) it is this
    job's savepoint instead: its writes are undone alone on an error, and
    committed with the group's COMMIT."""
    if conn.in_transaction:
        conn.execute("SAVEPOINT job")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
            raise
        conn.execute("RELEASE job")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def read(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: every SELECT inside sees the same WAL snapshot (inside
    a group commit's transaction, that transaction's)."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection) -> None:
    """Apply pending migrations, each in its own IMMEDIATE transaction."""
    with write(conn):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT"
        )
    for migration in load_migrations("sqlite"):
        with write(conn):
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if done:
                continue  # another process got there first
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                (migration.version, migration.name),
            )


def split_statements(script: str) -> list[str]:
    """Split a script into statements (executescript would COMMIT on its own)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise LedgerError(f"unterminated SQL statement in migration: {pending.strip()[:60]}")
    return statements


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in text.splitlines())
