"""The documentation keeps up with the code: every schema key and every CEL
variable is in the README's policy file section, and the variables in the conditions
module's docstring are exactly the declared ones."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

import policies.conditions
from policies import declared_variables
from policies.schema import PolicyDocument

REFERENCE = (Path(policies.conditions.__file__).parent.parent / "README.md").read_text("utf-8")


def _models(model: type[BaseModel]) -> set[type[BaseModel]]:
    found = {model}
    for field in model.model_fields.values():
        for inner in _types(field.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in found:
                found |= _models(inner)
    return found


def _types(annotation: object) -> list[object]:
    args = typing.get_args(annotation)
    return [annotation, *(t for a in args for t in _types(a))]


def test_every_schema_key_is_documented() -> None:
    keys = {
        field.alias or name
        for model in _models(PolicyDocument)
        for name, field in model.model_fields.items()
    }
    missing = sorted(k for k in keys if not re.search(rf"[`.]{k}`", REFERENCE))
    assert missing == []


def test_every_cel_variable_is_documented() -> None:
    documented = set(re.findall(r"`((?:tenant|request|usage)\.[a-z_]+)`", REFERENCE))
    assert documented == set(declared_variables())


def test_the_conditions_docstring_lists_the_declared_variables() -> None:
    doc = policies.conditions.__doc__ or ""
    listed = set(re.findall(r"^    ((?:tenant|request|usage)\.[a-z_]+)\s", doc, re.MULTILINE))
    assert listed == set(declared_variables())
