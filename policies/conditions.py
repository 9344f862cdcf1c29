"""Rule conditions: CEL expressions, type-checked when the policy loads.

A rule's `when` is a CEL expression (https://cel.dev) over these variables::

    tenant.id                     string
    tenant.tier                   string
    tenant.labels                 list(string)
    request.task                  string  TEXT_IMAGE, INPAINTING, OUTPAINTING,
                                          IMAGE_VARIATION, BACKGROUND_REMOVAL,
                                          COLOR_GUIDED_GENERATION, IMAGE_TO_IMAGE,
                                          FAST_UPSCALE, CONSERVATIVE_UPSCALE,
                                          CREATIVE_UPSCALE, SEARCH_AND_REPLACE,
                                          SEARCH_AND_RECOLOR, ERASE_OBJECT,
                                          EXPAND_CANVAS, STYLE_GUIDE, STYLE_TRANSFER,
                                          CONTROL_SKETCH, CONTROL_STRUCTURE,
                                          VIRTUAL_TRY_ON (policies.facts.TASKS)
    request.model                 string  e.g. "amazon.nova-canvas-v1:0"
    request.width                 int     output width in pixels
    request.height                int     output height in pixels
    request.pixels                int     width * height
    request.count                 int     number of images
    request.quality               string  "standard" or "premium"
    request.prompt_length         int     characters in the prompt
    request.negative_prompt_length int    characters in the negative prompt
    request.input_images          int     images sent with the request
    request.cfg_scale             double
    usage.budget_used_fraction    double  spent / budget in the tightest period
    usage.images_today            int
    usage.images_this_minute      int
    usage.requests_this_minute    int
    usage.spent_today_usd         double

Names and types are checked at load: a misspelt name or ``request.width > 1.5``
(int against double) is a load error, and a condition must be a bool. Rules see
the request as rewritten by the rules before them. A condition that fails at
run time (division by zero, an index out of range, an int out of range) comes
back as an `EvalError`; the engine then fails closed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cel_expr_python import cel  # type: ignore[import-untyped, unused-ignore]

from policies.facts import Facts, RequestFacts

_STRING, _INT, _DOUBLE = cel.Type.STRING, cel.Type.INT, cel.Type.DOUBLE
_CEL_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")
_STATUS = re.compile(r"^[A-Z_]+: ")
_REQUEST_INTS = (
    "width",
    "height",
    "pixels",
    "count",
    "prompt_length",
    "negative_prompt_length",
    "input_images",
)
_USAGE_INTS = ("images_today", "images_this_minute", "requests_this_minute")


def declared_variables() -> dict[str, cel.Type]:
    """The CEL variables a condition may use, with their types."""
    return {
        "tenant.id": _STRING,
        "tenant.tier": _STRING,
        "tenant.labels": cel.Type.List(_STRING),
        **{f"request.{name}": _STRING for name in ("task", "model", "quality")},
        **{f"request.{name}": _INT for name in _REQUEST_INTS},
        "request.cfg_scale": _DOUBLE,
        "usage.budget_used_fraction": _DOUBLE,
        **{f"usage.{name}": _INT for name in _USAGE_INTS},
        "usage.spent_today_usd": _DOUBLE,
    }


def new_environment() -> cel.Env:
    return cel.NewEnv(variables=declared_variables())


@dataclass(frozen=True, eq=False)
class Condition:
    """A compiled `when`: its source text and the checked CEL program."""

    source: str
    program: cel.Expression


@dataclass(frozen=True)
class CelIssue:
    """A compile error: its line within the expression (1-based) and what is wrong."""

    line: int
    reason: str


class ConditionInvalid(Exception):
    """The condition does not compile to a bool; `issues` lists why."""

    def __init__(self, issues: list[CelIssue]) -> None:
        super().__init__("; ".join(i.reason for i in issues))
        self.issues = issues


@dataclass(frozen=True)
class EvalError:
    """A condition that could not be evaluated, and why."""

    reason: str


def compile_condition(env: cel.Env, source: str) -> Condition:
    """Compile and type-check `source`; raise ConditionInvalid unless it is a bool."""
    if not source.strip():
        reason = "the condition is empty (omit `when` to match every request)"
        raise ConditionInvalid([CelIssue(1, reason)])
    try:
        program = env.compile(source)
    except RuntimeError as exc:
        raise ConditionInvalid(_issues(str(exc))) from exc
    kind = program.return_type()
    if kind != cel.Type.BOOL:
        reason = f"the condition must be a bool, but it is {kind.name().lower()}"
        raise ConditionInvalid([CelIssue(1, reason)])
    return Condition(source, program)


def _issues(text: str) -> list[CelIssue]:
    found = [
        CelIssue(int(line), _cel_reason(int(column), message))
        for line, column, message in _CEL_ERROR.findall(text)
    ]
    return found or [CelIssue(1, _clean(text.splitlines()[0] if text else "invalid CEL"))]


def _cel_reason(column: int, message: str) -> str:
    message = message.replace(" (in container '')", "").strip()
    if message.startswith("Syntax error: "):
        return f"CEL syntax error at column {column}: {message.removeprefix('Syntax error: ')}"
    return message


def _clean(message: str) -> str:
    return _STATUS.sub("", message.strip())


def activation(facts: Facts, request: RequestFacts) -> dict[str, object]:
    """The CEL variables' values for `facts`, with `request` as rewritten so far."""
    tenant, usage = facts.tenant, facts.usage
    return {
        "tenant.id": tenant.id,
        "tenant.tier": tenant.tier,
        "tenant.labels": list(tenant.labels),
        "request.task": request.task,
        "request.model": request.model,
        "request.quality": request.quality,
        **{f"request.{name}": getattr(request, name) for name in _REQUEST_INTS},
        "request.cfg_scale": float(request.cfg_scale),
        "usage.budget_used_fraction": float(usage.budget_used_fraction),
        **{f"usage.{name}": getattr(usage, name) for name in _USAGE_INTS},
        "usage.spent_today_usd": _usd(usage.spent_today_micros),
    }


def _usd(micros: int) -> float:
    try:
        return micros / 1_000_000
    except OverflowError:  # an absurd value still evaluates (as infinity), never raises
        return math.inf


def check(condition: Condition, data: dict[str, object]) -> bool | EvalError:
    """True or False, or an EvalError: never raises.

    `data` is `activation(facts, request)`, built once per request state by
    the caller: building it is most of a cheap condition's cost.
    """
    try:
        value = condition.program.eval(data=data)
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        return EvalError(_clean(str(exc)))
    if value.type() == cel.Type.ERROR:
        return EvalError(_clean(str(value.value())))
    result = value.plain_value()
    if isinstance(result, bool):
        return result
    return EvalError(f"the condition returned {value.type().name().lower()}, not a bool")
