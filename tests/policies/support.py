"""Builders for policy tests: a small policy around the rules under test, and facts."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policies import Facts, Policy, RequestFacts, TenantFacts, UsageFacts, load_policy

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
TITAN = "amazon.titan-image-generator-v2:0"
TITAN_V1 = "amazon.titan-image-generator-v1"
NOVA = "amazon.nova-canvas-v1:0"
EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
BROKEN = Path(__file__).resolve().parent / "broken"

# Titan Image Generator's allowed output sizes (shared/titan-api.md §2).
TITAN_SIZES = (
    (1024, 1024), (768, 768), (512, 512), (768, 1152), (384, 576), (1152, 768), (576, 384),
    (768, 1280), (384, 640), (1280, 768), (640, 384), (896, 1152), (448, 576), (1152, 896),
    (576, 448), (768, 1408), (384, 704), (1408, 768), (704, 384), (640, 1408), (320, 704),
    (1408, 640), (704, 320), (1152, 640), (1173, 640),
)  # fmt: skip

HEADER = """\
version: 1
tiers: {free: {}, pro: {}}
tenants:
  - {id: acme, tier: free, labels: [beta]}
  - {id: bigco, tier: pro}
"""


def policy_with(rules: str = "", extra: str = "") -> Policy:
    """The two-tenant HEADER policy with `rules` (a YAML list) and `extra` top-level keys."""
    text = HEADER
    if rules:
        text += "rules:\n" + textwrap.indent(textwrap.dedent(rules).strip("\n"), "  ") + "\n"
    return load_policy(text + textwrap.dedent(extra))


def request(**changes: Any) -> RequestFacts:
    """A standard single 1024x1024 Titan v2 text-to-image request, with `changes`."""
    base = RequestFacts(
        task="TEXT_IMAGE",
        model=TITAN,
        width=1024,
        height=1024,
        count=1,
        quality="standard",
        prompt_length=20,
        cfg_scale=8.0,
    )
    return replace(base, **changes)


def facts(
    tier: str = "free",
    *,
    sizes: tuple[tuple[int, int], ...] | None = None,
    texts: dict[str, str] | None = None,
    usage: UsageFacts | None = None,
    **changes: Any,
) -> Facts:
    """Facts for the HEADER tenant of `tier` (free: acme, pro: bigco)."""
    tenant = (
        TenantFacts("acme", "free", ("beta",)) if tier == "free" else TenantFacts("bigco", tier)
    )
    return Facts(
        tenant=tenant,
        request=request(**changes),
        usage=usage or UsageFacts(),
        texts=texts or {},
        size_options=sizes,
    )
