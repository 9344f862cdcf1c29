"""The serving policy, and hot reload.

The store holds one immutable `Policy`; a reload validates the new file whole
and swaps the reference in one assignment, so every request sees either the
old or the new policy, never a mix (each request takes `store.current` once).
An invalid file keeps the last good policy serving, logs every error and
records the failure for the admin view. Reloads happen when the file changes
(polled: no extra dependency, works on every filesystem) and on SIGHUP.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from policies import Policy, PolicyError, PriceTable, load_policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadOutcome:
    """How the most recent reload attempt went."""

    ok: bool
    at: datetime
    error: str = ""


class PolicyStore:
    """The current policy of one file, reloaded when it changes."""

    def __init__(self, path: Path, default_prices: PriceTable | None = None) -> None:
        self.path = path
        self._default_prices = default_prices
        self._policy = self._load()  # a bad file at start-up is fatal: nothing to fall back to
        self.loaded_at = datetime.now(UTC)
        self.last_reload = ReloadOutcome(ok=True, at=self.loaded_at)
        self._stamp = self._file_stamp()

    @property
    def current(self) -> Policy:
        return self._policy

    def reload(self) -> ReloadOutcome:
        """Load the file again; swap only if it is valid."""
        now = datetime.now(UTC)
        self._stamp = self._file_stamp()
        try:
            policy = self._load()
        except (PolicyError, OSError, UnicodeDecodeError) as exc:
            log.error("policy reload failed, the last good policy keeps serving:\n%s", exc)
            self.last_reload = ReloadOutcome(ok=False, at=now, error=str(exc))
            return self.last_reload
        if policy.digest != self._policy.digest:
            log.info("policy reloaded from %s (sha256 %s)", self.path, policy.digest[:12])
        self._policy, self.loaded_at = policy, now
        self.last_reload = ReloadOutcome(ok=True, at=now)
        return self.last_reload

    async def watch(self, interval_s: float) -> None:
        """Reload whenever the file's size or modification time changes."""
        while True:
            await asyncio.sleep(interval_s)
            if self._file_stamp() != self._stamp:
                self.reload()

    def _load(self) -> Policy:
        text = self.path.read_text(encoding="utf-8")
        return load_policy(text, source=str(self.path), default_prices=self._default_prices)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size
