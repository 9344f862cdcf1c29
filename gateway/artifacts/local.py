"""`LocalArtifactStore`: artifacts as files under `data_dir/artifacts`, for
one replica; written atomically (temp file + rename) so a reader never sees
half an image."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from gateway.artifacts.base import ArtifactMissing


class LocalArtifactStore:
    """Artifacts as files below `root`; names are relative paths we generate."""

    def __init__(self, root: Path) -> None:
        self._root = root

    async def put(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(name), data)

    async def get(self, name: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(name).read_bytes)
        except FileNotFoundError as exc:
            raise ArtifactMissing(name) from exc

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to release."""

    def _path(self, name: str) -> Path:
        path = (self._root / name).resolve()
        if self._root.resolve() not in path.parents:
            raise ValueError(f"artifact name escapes the store: {name!r}")
        return path

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
