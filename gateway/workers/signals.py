"""Signals as something to wait on: `SignalInbox` turns each signal into a
byte on a socket (`signal.set_wakeup_fd`), so the supervisor's one blocking
`wait` wakes for a signal as for a worker's exit or report, and nothing runs
inside a signal handler."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Any

__all__ = ["SignalInbox"]


class SignalInbox:
    """While entered, `signals` are caught and queued; `take()` drains the queue."""

    def __init__(self, signals: Iterable[signal.Signals]) -> None:
        self._signals = tuple(signals)
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._previous: dict[signal.Signals, Any] = {}
        self._previous_fd = -1

    @property
    def readable(self) -> socket.socket:
        """Readable when a signal is queued (for `multiprocessing.connection.wait`)."""
        return self._reader

    def take(self) -> set[signal.Signals]:
        """The signals received since the last call."""
        received: set[signal.Signals] = set()
        while True:
            try:
                data = self._reader.recv(512)
            except BlockingIOError:
                return received
            if not data:
                return received
            received.update(signal.Signals(number) for number in data)

    def __enter__(self) -> SignalInbox:
        # The C-level handler writes the signal's number to the socket; the
        # Python-level one only has to exist (and do nothing).
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for sig in self._signals:
            self._previous[sig] = signal.signal(sig, _queued)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()


def _queued(signum: int, frame: FrameType | None) -> None:
    """Nothing: the wakeup socket already holds the signal."""
