"""What a task decoder returns; shared by the per-model-family task modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from gateway.domain import InputImage, Task
from gateway.validation.violations import Context


class Decoded(NamedTuple):
    """`task` is None only when a required image could not be decoded (a
    violation is then recorded); `source` is the task's main input image (the
    edited, upscaled or conditioning image), whose size the output follows for
    the tasks that keep or derive from the input's size."""

    task: Task | None
    source: InputImage | None = None


# Each decoder takes its own proto task message (the table in tasks.py is
# keyed by the oneof member, so the erased argument type is safe).
Decoder = Callable[[Context, Any], Decoded]


def pair(image: InputImage | None, make: Callable[[InputImage], Task]) -> Decoded:
    """Decoded(make(image), image), or Decoded(None) when the image failed."""
    return Decoded(None) if image is None else Decoded(make(image), image)
