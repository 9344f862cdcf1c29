"""Pydantic validation errors as policy findings: a loc and a sentence for people.

Pydantic's own messages ("Input should be a valid integer") name neither the
value nor what would be right; these do, and unknown keys come with the keys
that are allowed there (or the one that was probably meant).
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from policies.problems import Finding, Loc, describe, not_a_string

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


def findings(error: ValidationError, root: type[BaseModel], prefix: Loc = ()) -> list[Finding]:
    """One finding per pydantic error, with locs relative to the file."""
    return [_finding(detail, root, prefix) for detail in error.errors()]


def _finding(detail: ErrorDetails, root: type[BaseModel], prefix: Loc) -> Finding:
    loc: Loc = tuple(detail["loc"])
    kind = detail["type"]
    if loc and loc[-1] == "[key]":
        return Finding((*prefix, *loc[:-1]), f"invalid key: {detail['msg']}")
    if kind == "missing":
        reason = f"missing required key '{loc[-1]}'"
        if loc[-1] in ("standard_usd", "premium_usd"):
            reason += ": every size class needs a price for both qualities"
        return Finding((*prefix, *loc[:-1]), reason)
    if kind == "extra_forbidden":
        return Finding((*prefix, *loc), _unknown_key(root, loc))
    return Finding((*prefix, *loc), _reason(detail))


def _reason(detail: ErrorDetails) -> str:
    kind, ctx, got = detail["type"], detail.get("ctx") or {}, describe(detail["input"])
    if kind == "string_type":
        return not_a_string(detail["input"])
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got}"
    if kind == "literal_error":
        return f"expected {ctx['expected']}, got {got}"
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return f"must be {words} {ctx[name]}, got {got}"
    if kind == "finite_number":
        return f"must be a finite number, got {got}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "policy":
        return detail["msg"]
    return detail["msg"][:1].lower() + detail["msg"][1:]


def _unknown_key(root: type[BaseModel], loc: Loc) -> str:
    key = str(loc[-1])
    allowed = _keys_at(root, loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}'; did you mean '{close[0]}'?"
    return f"unknown key '{key}'; expected one of: {', '.join(allowed)}"


def _keys_at(root: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model at `loc` accepts (by alias), found by walking the annotations."""
    current: Any = root
    for segment in loc:
        current = _step(_unwrap(current), segment)
    model = _unwrap(current)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _step(current: Any, segment: str | int) -> Any:
    if isinstance(current, type) and issubclass(current, BaseModel):
        for name, field in current.model_fields.items():
            if segment in (name, field.alias):
                return field.annotation
        return None
    args = typing.get_args(current)
    return args[-1] if args else None  # list[X] -> X, dict[K, V] -> V


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the one type inside."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            inner = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = inner[0] if len(inner) == 1 else annotation
            if len(inner) != 1:
                return annotation
        else:
            return annotation
