"""The parent of the workers: start them, wait until each serves, watch
them, and stop them all together.

    start N ─▶ all reported `Ready` ─▶ the ready line ─▶ watch ─┬─ SIGTERM/SIGINT: forward
                                                                │   SIGTERM, wait for the
    any exits, before or after ─▶ `error:` line naming it,      │   drains, exit 0
    SIGTERM to the rest, wait, exit 2 if it could not start     └─ SIGHUP: forward to each
    (its own `error:` lines say why), else 1                        worker that serves

There is no restart: a worker that dies takes the others down and the
process exits non-zero, so the orchestrator that restarts gateways sees it
(a loop here would hide a crash that repeats). The wait for the drains is
bounded by what a worker's stop may take; a worker still there is SIGKILLed
and named in an `error:` line.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from gateway.server import CLEANUP_TIMEOUT_S
from gateway.settings import Settings
from gateway.startup import EXIT_STARTUP
from gateway.workers.child import Ready, WorkerSpec, instance_base, worker_main
from gateway.workers.signals import SignalInbox

__all__ = ["EXIT_WORKER_FAILED", "Supervisor"]

log = logging.getLogger(__name__)

EXIT_WORKER_FAILED = 1
# Past a worker's own bounds (grace, clean-ups, alert deliveries): closing stores.
_STOP_MARGIN_S = 10.0
_STOPS = frozenset({signal.SIGTERM, signal.SIGINT})


@dataclass
class Worker:
    """The parent's view of one worker process."""

    index: int
    count: int
    process: BaseProcess
    reports: Connection | None  # until its `Ready` (or EOF) arrives
    ready: Ready | None = None

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    @property
    def name(self) -> str:
        return f"worker {self.index} of {self.count} (pid {self.pid})"

    def signal(self, sig: int) -> None:
        if self.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):  # exited: its sentinel says so
                os.kill(self.pid, sig)

    def exit_text(self) -> str:
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def stopped_cleanly(self) -> bool:
        # Before it served it had no handler: the forwarded SIGTERM ended it at once.
        code = self.process.exitcode
        return code == 0 or (self.ready is None and code == -signal.SIGTERM)


class Supervisor:
    """Runs `settings.workers` workers until a stop signal or one of them exits."""

    def __init__(self, settings: Settings, log_level: str) -> None:
        self._settings = settings
        self._log_level = log_level
        self._workers: list[Worker] = []
        # "spawn", not "fork": the parent has imported grpc and may hold
        # threads, which a forked child must not inherit.
        self._context = multiprocessing.get_context("spawn")

    def run(self) -> int:
        """Start, serve, stop; returns the exit code of `serve`."""
        with SignalInbox((*_STOPS, signal.SIGHUP)) as inbox:
            self._start(instance_base(os.environ))
            failed = self._watch(inbox)
            return self._stop(failed)

    def _start(self, base: str) -> None:
        count = self._settings.workers
        for index in range(count):
            spec = WorkerSpec(index, count, os.getpid(), self._settings, self._log_level, base)
            reports, writer = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=worker_main, args=(spec, writer), name=f"gateway-worker-{index}"
            )
            process.start()
            writer.close()  # the worker holds the only writer: EOF if it dies
            self._workers.append(Worker(index, count, process, reports))

    def _watch(self, inbox: SignalInbox) -> int | None:
        """Until a stop signal (None) or a worker's exit (the exit code it calls for)."""
        announced = False
        while True:
            if not announced and all(w.ready is not None for w in self._workers):
                self._announce()
                announced = True
            reports = [w.reports for w in self._workers if w.reports is not None]
            sentinels = [w.process.sentinel for w in self._workers]
            for event in wait([inbox.readable, *reports, *sentinels]):
                if event is inbox.readable:
                    if self._on_signals(inbox):
                        return None
                elif isinstance(event, Connection):
                    self._on_report(event)
                else:
                    return self._on_exit(next(w for w in self._workers
                                              if w.process.sentinel == event))  # fmt: skip

    def _on_signals(self, inbox: SignalInbox) -> bool:
        """Whether to stop; SIGHUP is forwarded to the workers that serve."""
        received = inbox.take()
        if _STOPS & received:
            log.info("stopping %d workers", len(self._workers))
            return True
        if signal.SIGHUP in received:
            for worker in self._workers:
                if worker.ready is not None:  # it handles SIGHUP; before, it would die of it
                    worker.signal(signal.SIGHUP)
        return False

    def _on_report(self, reports: Connection) -> None:
        worker = next(w for w in self._workers if w.reports is reports)
        with contextlib.suppress(EOFError):  # it died before it served: its sentinel says so
            worker.ready = reports.recv()
        reports.close()
        worker.reports = None

    def _on_exit(self, worker: Worker) -> int:
        worker.process.join()  # reaped: its exit code is known
        what = worker.exit_text()
        if worker.ready is None:
            what += " before it served"
        print(f"error: {worker.name} {what}; stopping the other workers",
              file=sys.stderr, flush=True)  # fmt: skip
        could_not_start = worker.ready is None and worker.process.exitcode == EXIT_STARTUP
        return EXIT_STARTUP if could_not_start else EXIT_WORKER_FAILED

    def _announce(self) -> None:
        ready = [w.ready for w in self._workers if w.ready is not None]
        pids = ", ".join(str(r.pid) for r in ready)
        log.info("%d workers serving on %s: pids %s", len(ready), ready[0].address, pids)
        print(f"Titan Image Gateway listening on {ready[0].address}", flush=True)
        for r in ready:
            if r.metrics_url is not None:
                print(f"metrics on {r.metrics_url} (worker {r.index})", flush=True)

    def _stop(self, failed: int | None) -> int:
        """SIGTERM to every worker, a bounded wait for their drains; the exit code."""
        for worker in self._workers:
            worker.signal(signal.SIGTERM)
        settings = self._settings
        bound = (settings.shutdown_grace_s + CLEANUP_TIMEOUT_S
                 + settings.alerts.shutdown_grace_s + _STOP_MARGIN_S)  # fmt: skip
        deadline = time.monotonic() + bound
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        code = failed or 0
        for worker in self._workers:
            if worker.process.exitcode is None:
                print(f"error: {worker.name} did not stop within {bound:g}s; killing it",
                      file=sys.stderr, flush=True)  # fmt: skip
                worker.signal(signal.SIGKILL)
                worker.process.join()
                code = code or EXIT_WORKER_FAILED
            elif failed is None and not worker.stopped_cleanly():
                print(f"error: {worker.name} {worker.exit_text()} while stopping",
                      file=sys.stderr, flush=True)  # fmt: skip
                code = EXIT_WORKER_FAILED
        if code == 0:
            log.info("all %d workers stopped", len(self._workers))
        return code
