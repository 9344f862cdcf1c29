"""The backend seam: one image of a job in, the generated image out.

The server only knows this protocol; `gateway.server` picks the concrete
backend (Bedrock through aiobotocore, pointed at AWS or at the emulator).
"""

from __future__ import annotations

from typing import Protocol

from gateway.dialects import GeneratedImage
from gateway.domain import ImageJob


class Backend(Protocol):
    """Generates one image of a job.

    `generate_one` makes image `index` of `job` (seed = job.seed_for(index),
    one image per call) and returns a `GeneratedImage`: the encoded image
    bytes (PNG, or the job's output format where the model takes one) and the
    model's mask when the task asked for it (`return_mask`). It must finish or
    raise within `timeout` seconds, and raises only `gateway.errors.BackendError`
    subclasses (or `ContentBlocked` for an input-filter refusal).
    """

    # The timeout is part of the contract: the fan-out hands each call the time
    # left before the caller's deadline.
    async def generate_one(
        self,
        job: ImageJob,
        index: int,
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> GeneratedImage: ...

    async def close(self) -> None: ...
