"""Artifact stores: where delivered image bytes are kept so an idempotent
retry gets exactly the bytes the first run delivered, from any replica.

    LocalArtifactStore(root)      files under data_dir/artifacts (one replica)
    PostgresArtifactStore(dsn)    the ledger's PostgreSQL (replicas share it)

`open_artifacts(ledger_url, root)` picks the one that matches the ledger:
replicas that share a PostgreSQL ledger share its artifacts too.
"""

from __future__ import annotations

from pathlib import Path

from gateway.artifacts.base import ArtifactMissing, ArtifactStore
from gateway.artifacts.local import LocalArtifactStore
from gateway.artifacts.postgres import PostgresArtifactStore

__all__ = [
    "ArtifactMissing",
    "ArtifactStore",
    "LocalArtifactStore",
    "PostgresArtifactStore",
    "open_artifacts",
]


def open_artifacts(ledger_url: str, root: Path) -> ArtifactStore:
    """The artifact store for a gateway whose ledger is at `ledger_url` (not started)."""
    if ledger_url.startswith(("postgresql://", "postgres://")):
        return PostgresArtifactStore(ledger_url)
    return LocalArtifactStore(root)
