"""Money: USD amounts from the policy file to integer micro-USD, and back for people.

An amount is converted with ``Decimal(str(value))``: the shortest decimal that
reads back as the same float, which is what the author wrote as long as they
wrote at most 15 significant digits. More digits than that, or a value that is
not finite, cannot be trusted to be the amount the author meant, so it is
refused rather than rounded; so is anything finer than one micro-USD.
"""

from __future__ import annotations

import math
from decimal import Decimal

from policies.problems import describe

MICROS_PER_USD = 1_000_000
_EXACT_DIGITS = 15


def usd_to_micros(value: object) -> int:
    """Micro-USD for a USD amount from YAML; ValueError says what is wrong."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected an amount in USD (a number), got {describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not an amount of USD")
    amount = Decimal(str(value))
    text = format(amount, "f")
    if isinstance(value, float) and len(amount.as_tuple().digits) > _EXACT_DIGITS:
        raise ValueError(f"{text} is not an exact amount; write at most 15 significant digits")
    if amount < 0:
        raise ValueError(f"an amount of USD must not be negative, got {text}")
    micros = amount * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise ValueError(f"{text} USD is finer than one micro-USD (at most 6 decimal places)")
    return int(micros)


def format_usd(micros: int) -> str:
    """``8000`` -> ``$0.008``; ``1_000_000`` -> ``$1.00``: at least cents, no trailing zeros."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS_PER_USD)
    digits = f"{fraction:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}${whole}.{digits}"
