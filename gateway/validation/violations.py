"""The violations collector and the per-request context the checks share.

Checks never raise: they record a `FieldViolation` and carry on, so one
`InvalidRequest` can list every problem in the request at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.enums import Dialect
from gateway.errors import FieldViolation, InvalidRequest
from gateway.registry import ModelLimits, ModelSpec

_SHOW_CHARS = 40


class Violations:
    """Collects field violations in the order they are found."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def error(self) -> InvalidRequest:
        """The exception listing everything collected."""
        return InvalidRequest(self._items)


@dataclass(frozen=True)
class Context:
    """What every check needs: the model being validated against and the sink.

    `inputs` lists (field, byte count) of every input image that could be
    opened, for the request-body check at the end.
    """

    model: ModelSpec
    out: Violations = field(default_factory=Violations)
    inputs: list[tuple[str, int]] = field(default_factory=list)

    @property
    def limits(self) -> ModelLimits:
        return self.model.limits

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def is_stability(self) -> bool:
        return self.model.dialect is Dialect.STABILITY

    def add(self, field: str, description: str) -> None:
        self.out.add(field, description)


def show(value: str) -> str:
    """`value` quoted for a message, shortened so a huge input is not echoed back."""
    if len(value) <= _SHOW_CHARS:
        return repr(value)
    return repr(value[:_SHOW_CHARS]) + f"... ({len(value)} characters)"
