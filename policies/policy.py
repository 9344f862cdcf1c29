"""A loaded policy: tenants and their keys, rules, prices, moderation. Immutable."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from policies.moderation import Moderator
from policies.pricing import PriceTable
from policies.rules import Rule
from policies.tenants import KeyRing, Tenant

_USAGE = re.compile(r"\busage\s*\.")


@dataclass(frozen=True)
class GuardrailRef:
    """A Bedrock guardrail the gateway also applies to prompts (ApplyGuardrail)."""

    id: str
    version: str


@dataclass(frozen=True, eq=False)
class Policy:
    """Everything one policy file says, checked and compiled. Build it with `load_policy`.

    `digest` is the sha256 of the file's text, to tell which policy is serving.
    """

    tenants: Mapping[str, Tenant]
    rules: tuple[Rule, ...]
    pricing: PriceTable
    moderator: Moderator
    guardrail: GuardrailRef | None
    digest: str
    tenant_keys: KeyRing
    admin_keys: KeyRing
    # `CN=…`, `DNS:…`, `URI:…` -> tenant id (tenants' `client_certificates`).
    client_certificates: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def authenticate(self, api_key: str) -> Tenant | None:
        """The tenant `api_key` belongs to, or None (timing does not depend on which key)."""
        tenant_id = self.tenant_keys.find(api_key)
        return self.tenants.get(tenant_id) if tenant_id is not None else None

    def identify(self, certificate_names: Iterable[str]) -> Tenant | None:
        """The tenant one of a verified client certificate's names maps to, or None.
        Names are checked in the order given (common name first)."""
        for name in certificate_names:
            tenant_id = self.client_certificates.get(name)
            if tenant_id is not None:
                return self.tenants.get(tenant_id)
        return None

    def is_admin(self, api_key: str) -> bool:
        return self.admin_keys.find(api_key) is not None

    @property
    def reads_usage(self) -> bool:
        """Whether any rule's condition looks at `usage.*`. Usage facts cost the
        gateway I/O (ledger and limiter reads), so it skips them when no rule
        needs them. The variables are qualified names, so a condition that
        reads one must contain `usage.`."""
        return any(_USAGE.search(rule.condition.source) for rule in self.rules if rule.condition)

    def price_micros(self, model: str, width: int, height: int, quality: str) -> int | None:
        """Price of one image in micro-USD, or None when the model or size has no price."""
        return self.pricing.price_micros(model, width, height, quality)
