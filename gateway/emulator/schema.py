"""A tiny JSON-schema checker that words its errors the way Bedrock does.

Bedrock validates request bodies with a JSON-schema library (everit) and
reports the first violation as ``#/path: reason``. Declaring each model's
schema as data and checking it here keeps the wording identical everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.emulator.errors import malformed

STRING, INTEGER, NUMBER, BOOLEAN, ARRAY, OBJECT = (
    "String",
    "Integer",
    "Number",
    "Boolean",
    "JSONArray",
    "JSONObject",
)


@dataclass(frozen=True)
class Field:
    """One JSON value's constraints (a subset of JSON schema)."""

    kind: str
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    items: Field | None = None
    min_items: int | None = None
    max_items: int | None = None
    properties: Mapping[str, Field] = field(default_factory=dict)


def type_name(value: object) -> str:
    """The Java-side type name everit prints for a decoded JSON value."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return "BigDecimal"
    if isinstance(value, str):
        return STRING
    if isinstance(value, list):
        return ARRAY
    return OBJECT if isinstance(value, dict) else type(value).__name__


def fmt_number(value: float) -> str:
    """Numbers as Java prints them: integral bounds without a trailing .0."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def check(value: Any, spec: Field, path: str = "#") -> None:
    """Raise the first schema violation of `value` against `spec`."""
    _check_type(value, spec, path)
    if spec.kind == STRING:
        _check_string(value, spec, path)
    elif spec.kind in (INTEGER, NUMBER):
        _check_number(value, spec, path)
    elif spec.kind == ARRAY:
        _check_array(value, spec, path)
    elif spec.kind == OBJECT:
        _check_object(value, spec, path)


def _check_type(value: Any, spec: Field, path: str) -> None:
    found = type_name(value)
    ok = found == spec.kind or (spec.kind == NUMBER and found in (INTEGER, "BigDecimal"))
    if not ok:
        raise malformed(path, f"expected type: {spec.kind}, found: {found}")


def _check_string(value: str, spec: Field, path: str) -> None:
    if spec.min_length is not None and len(value) < spec.min_length:
        raise malformed(path, f"expected minLength: {spec.min_length}, actual: {len(value)}")
    if spec.max_length is not None and len(value) > spec.max_length:
        raise malformed(path, f"expected maxLength: {spec.max_length}, actual: {len(value)}")
    if spec.enum is not None and value not in spec.enum:
        raise malformed(path, f"{value} is not a valid enum value")
    if spec.pattern is not None and re.search(spec.pattern, value) is None:
        raise malformed(path, f"string [{value}] does not match pattern {spec.pattern}")


def _check_number(value: float, spec: Field, path: str) -> None:
    if spec.minimum is not None and value < spec.minimum:
        raise malformed(
            path, f"{fmt_number(value)} is not greater or equal to {fmt_number(spec.minimum)}"
        )
    if spec.maximum is not None and value > spec.maximum:
        raise malformed(
            path, f"{fmt_number(value)} is not less or equal to {fmt_number(spec.maximum)}"
        )


def _check_array(value: list[Any], spec: Field, path: str) -> None:
    if spec.min_items is not None and len(value) < spec.min_items:
        raise malformed(path, f"expected minimum item count: {spec.min_items}, found: {len(value)}")
    if spec.max_items is not None and len(value) > spec.max_items:
        raise malformed(path, f"expected maximum item count: {spec.max_items}, found: {len(value)}")
    if spec.items is not None:
        for index, item in enumerate(value):
            check(item, spec.items, f"{path}/{index}")


def _check_object(value: dict[str, Any], spec: Field, path: str) -> None:
    for name, prop in spec.properties.items():
        if prop.required and name not in value:
            raise malformed(path, f"required key [{name}] not found")
    for name in value:
        if name not in spec.properties:
            raise malformed(path, f"extraneous key [{name}] is not permitted")
    for name, prop in spec.properties.items():
        if name in value:
            check(value[name], prop, f"{path}/{name}")
