"""The artifact store seam: two methods, put and get, and its errors."""

from __future__ import annotations

from typing import Protocol


class ArtifactMissing(LookupError):
    """No artifact under this name (another replica's local store, or deleted)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no stored artifact {name!r}")
        self.name = name


class ArtifactStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, name: str, data: bytes) -> None: ...

    async def get(self, name: str) -> bytes:
        """The bytes stored under `name`; `ArtifactMissing` if there are none."""
        ...
