"""Tenants, their quotas and budgets, and the hashed API keys that name them."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from policies.facts import TenantFacts

KEY_HASH_PREFIX = "sha256:"


def hash_key(api_key: str) -> str:
    """The stored form of an API key: ``sha256:<64 hex digits>``."""
    return KEY_HASH_PREFIX + hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Quotas:
    """Rate and concurrency limits; None means unlimited."""

    requests_per_minute: int | None = None
    images_per_minute: int | None = None
    images_per_day: int | None = None
    max_concurrent_requests: int | None = None


@dataclass(frozen=True)
class Budget:
    """Spend caps in micro-USD (None: no cap) and the used fractions that raise alerts."""

    daily_micros: int | None = None
    monthly_micros: int | None = None
    total_micros: int | None = None
    alert_thresholds: tuple[float, ...] = ()


@dataclass(frozen=True)
class Tenant:
    """A tenant with its tier's quotas and budget merged under its own overrides."""

    id: str
    tier: str
    labels: tuple[str, ...]
    quotas: Quotas
    budget: Budget
    # "required" | "best_effort" | "off": how its images carry provenance.
    provenance: str = "required"

    def facts(self) -> TenantFacts:
        return TenantFacts(id=self.id, tier=self.tier, labels=self.labels)


@dataclass(frozen=True)
class KeyRing:
    """Stored key hashes and who each one belongs to.

    `find` compares the presented key's hash with *every* stored hash in
    constant time and never stops early, so how long it takes does not tell
    an attacker which key (or whether any) matched.
    """

    entries: tuple[tuple[bytes, str], ...] = ()

    @classmethod
    def of(cls, pairs: list[tuple[str, str]]) -> KeyRing:
        return cls(tuple((stored.encode("ascii"), owner) for stored, owner in pairs))

    def find(self, api_key: str) -> str | None:
        presented = hash_key(api_key).encode("ascii")
        found: str | None = None
        for stored, owner in self.entries:
            if hmac.compare_digest(stored, presented):
                found = owner
        return found
