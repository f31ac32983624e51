"""Exact money: Decimal arithmetic and the panel's money strings. No floats, no I/O."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

FIVE_PLACES = Decimal("0.00001")
ZERO = Decimal("0")


def parse_money(value: str | int | Decimal) -> Decimal:
    """A non-negative, finite amount from a string or Decimal; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return amount


def charge_for(rate: Decimal, quantity: int) -> Decimal:
    """rate × quantity / 1000, rounded half-up to 5 decimals (docs/PROTOCOL.md §2)."""
    return (rate * quantity / 1000).quantize(FIVE_PLACES, rounding=ROUND_HALF_UP)


def refund_for(charge: Decimal, remains: int, quantity: int) -> Decimal:
    """The part of `charge` for `remains` undelivered units of `quantity`, half-up to 5 places.

    Never more than the charge and never negative, so the kept charge stays in [0, charge].
    """
    if quantity <= 0 or remains <= 0:
        return ZERO
    remains = min(remains, quantity)
    return (charge * remains / quantity).quantize(FIVE_PLACES, rounding=ROUND_HALF_UP)


def round_money(amount: Decimal) -> Decimal:
    return amount.quantize(FIVE_PLACES, rounding=ROUND_HALF_UP)


@lru_cache(maxsize=65_536)  # polling answers repeat the same few amounts over and over
def format_money(amount: Decimal) -> str:
    """Charges and balances: at most 5 decimals, trailing zeros trimmed, never an exponent."""
    text = format(round_money(amount), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
