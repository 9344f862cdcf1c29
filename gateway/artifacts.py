"""Where delivered images are kept so an idempotent retry gets the same bytes.

`ArtifactStore` is the seam (an S3 store would implement the same two
methods); `LocalArtifactStore` writes files under `data_dir/artifacts`,
atomically (temp file + rename) so a reader never sees half an image.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Protocol


class ArtifactStore(Protocol):
    async def put(self, name: str, data: bytes) -> None: ...

    async def get(self, name: str) -> bytes: ...


class LocalArtifactStore:
    """Artifacts as files below `root`; names are relative paths we generate."""

    def __init__(self, root: Path) -> None:
        self._root = root

    async def put(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(name), data)

    async def get(self, name: str) -> bytes:
        return await asyncio.to_thread(self._path(name).read_bytes)

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
