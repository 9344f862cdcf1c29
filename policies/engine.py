"""The decision interface. A `Policy` with no rules allows everything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType


@dataclass(frozen=True)
class Facts:
    """What a decision is made from: the tenant, the request and usage so far."""

    tenant: Mapping[str, object]
    request: Mapping[str, object]
    usage: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Rewrite:
    """One change a rule made to the request: field, old value, new value."""

    rule: str
    field: str
    old: object
    new: object


@dataclass(frozen=True)
class Decision:
    """Allowed or denied; the request as rewritten; every rewrite applied."""

    allowed: bool
    request: Mapping[str, object]
    rewrites: tuple[Rewrite, ...] = ()
    denied_by: str | None = None
    message: str = ""


@dataclass(frozen=True)
class Policy:
    """A loaded policy. The policy issue adds tenants, pricing, rules, moderation."""

    rules: tuple[object, ...] = ()


def evaluate(policy: Policy, facts: Facts, now: datetime) -> Decision:
    """Decide on `facts` at `now`. With no rules, every request is allowed as is."""
    if policy.rules:
        raise NotImplementedError("rule evaluation arrives with the policy engine issue")
    return Decision(allowed=True, request=facts.request)
