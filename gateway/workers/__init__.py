"""Worker processes: one job — start, watch and stop N gateway processes
that share one listening port, when `workers` > 1.

One gateway process runs one asyncio event loop, so it uses one core for
most of its work. With `workers: N` the process `serve` started becomes a
small supervisor (`supervisor.py`) and N workers (`child.py`) each run the
ordinary `gateway.server.serve(settings)`, bound to the same port with
SO_REUSEPORT: the kernel hands each new connection to one of them.

    serve ── every start-up check, as with one process (port in use: exit 2)
      │   ── `checks.sharing_problems`: what per-process state would break
      │      (in-memory limiter, port 0, unix socket, embedded emulator,
      │      /metrics ports taken)                                  exit 2
      │   ── `prepare.prepare_shared`: what must exist once (policy loads,
      │      signing chain, ledger migrations, folders)
      └── Supervisor ── spawn worker 0 … N-1 ── each: serve(reuse_port=True)

Why `multiprocessing` with the "spawn" start method, rather than a
subprocess running `python -m gateway serve` again: a worker gets the
`Settings` object the parent validated (pickled), not a config file and an
environment it would read again and might find changed; a `Pipe` carries
its `Ready` report, and its sentinel and `exitcode` (negative: the signal)
say when and how it ended, without parsing output. Spawn, not fork, because
a forked copy of a process that has imported grpc and started threads is
not safe to use. (`multiprocessing` also starts its small resource-tracker
process beside the workers; it exits with the parent.)

Promises kept across workers by shared stores, not by the processes: the
ledger (PostgreSQL, or one SQLite file: the processes take turns writing
by `flock`, `sqlite_group.WriterTurn`) holds budgets, reservations and
idempotency; Redis holds the quotas; artifacts live in the ledger's
PostgreSQL or under the one `data_dir`. Per-process limits —
`max_pending_requests`, `send_buffer_bytes`, `backend_concurrency`,
`backend_max_connections`, `provenance.workers` and
`provenance.max_pixels_in_flight` — apply to each worker.
"""

from __future__ import annotations

import asyncio

from gateway.settings import Settings
from gateway.workers.checks import metrics_port, sharing_problems
from gateway.workers.prepare import prepare_shared
from gateway.workers.supervisor import EXIT_WORKER_FAILED, Supervisor

__all__ = [
    "EXIT_WORKER_FAILED",
    "Supervisor",
    "metrics_port",
    "prepare_shared",
    "sharing_problems",
    "supervise",
]


def supervise(settings: Settings, *, log_level: str = "INFO") -> int:
    """Prepare what the workers share, then run them; the exit code of `serve`."""
    asyncio.run(prepare_shared(settings))
    return Supervisor(settings, log_level).run()
