"""What a policy file did wrong: `PolicyProblem`, `PolicyError`, and paths.

The exception tree of the package is one class::

    Exception
     └── PolicyError        load_policy: the file is invalid; .problems lists every problem

A problem reads ``policy.yaml:rules[2].when: <reason> (line 14)``. Paths are
built from *locs*, tuples of keys and list indices, so that the same path can
be rendered for people and looked up in the YAML node tree for a line number.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Loc = tuple[str | int, ...]

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MAX_SHOWN = 40


@dataclass(frozen=True)
class PolicyProblem:
    """One problem in a policy file: where it is and what is wrong."""

    source: str
    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.path}:" if self.path else f"{self.source}:"
        at = f" (line {self.line})" if self.line is not None else ""
        return f"{where} {self.reason}{at}"


class PolicyError(Exception):
    """The policy file is invalid; `problems` holds every problem found, in file order."""

    def __init__(self, problems: Iterable[PolicyProblem]) -> None:
        self.problems: tuple[PolicyProblem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Finding:
    """A problem before it has a source and a line: a loc and a reason.

    `line` is set when the finder knows better than the loc (YAML syntax
    errors, a CEL error on the third line of a block scalar).
    """

    loc: Loc
    reason: str
    line: int | None = None


def render_path(loc: Sequence[str | int]) -> str:
    """``("tenants", 0, "api_keys", 1)`` -> ``tenants[0].api_keys[1]``."""
    out = ""
    for segment in loc:
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            out += f".{segment}" if out else segment
    return out


def parse_path(path: str) -> Loc:
    """The inverse of `render_path`: ``categories[0].patterns[1]`` -> a loc."""
    loc: list[str | int] = []
    for name, index in _SEGMENT.findall(path):
        loc.append(int(index) if index else name)
    return tuple(loc)


def not_a_string(value: object) -> str:
    """The message for a value that should have been a string."""
    hint = ""
    if isinstance(value, bool):
        hint = " (quote it: YAML reads yes/no/on/off/true/false as booleans)"
    return f"expected a string, got {describe(value)}{hint}"


def describe(value: object) -> str:
    """A short, YAML-flavoured rendering of a value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        shown = value if len(value) <= _MAX_SHOWN else value[: _MAX_SHOWN - 3] + "..."
        return f"'{shown}'"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime.date):
        return "a date"
    return f"a {type(value).__name__}"
