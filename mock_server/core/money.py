"""Exact money: Decimal arithmetic and the panel's money strings. No floats, no I/O."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from smmkit.mock_server.core.lifecycle import CANCELED, PARTIAL

FIVE_PLACES = Decimal("0.00001")
ZERO = Decimal("0")
REFUNDING = frozenset({PARTIAL, CANCELED})  # the final statuses that give money back


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


# ---------------------------------------------------------------- bounds and currencies

MAX_INTEGER_DIGITS = 15  # what a stored balance holds exactly, with FIVE_PLACES after the point
MONEY_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
# Trailing zeros past the fifth decimal add no precision ("1000.000000" is 1000), so they pass.
_AMOUNT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,5}0*)?", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)


def parse_amount(value: object, what: str = "amount", *, allow_negative: bool = False) -> Decimal:
    """An amount as money can hold it: an integer or a plain decimal string with at most 15
    integer digits and 5 decimals. No floats, exponents, NaN or Infinity; ValueError naming
    `what` and the value otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        kind = "a float" if isinstance(value, float) else type(value).__name__
        raise ValueError(f"{what} must be a decimal string or an integer, not {kind}: "
                         f"{value!r}")
    text = str(value).strip() if not isinstance(value, Decimal) else format(value, "f")
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"{what} is not an amount money can hold: {str(value)[:40]!r} "
                         f"(at most {MAX_INTEGER_DIGITS} digits before the point and 5 after, "
                         "no exponent)")
    amount = Decimal(text)
    if amount < 0 and not allow_negative:
        raise ValueError(f"{what} cannot be negative: {value!r}")
    return amount


def parse_currency(value: object) -> str:
    """An ISO 4217-shaped code: three capital ASCII letters (USD, EUR, VND)."""
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise ValueError(f"currency {value!r} is not an ISO 4217 code (three capital letters, "
                         "e.g. USD)")
    return value


def refund_owed(charge: Decimal, status: str, remains: int, quantity: int) -> Decimal:
    """THE refund rule: what an order ending in `status` gets back (docs/PROTOCOL.md §6). Partial:
    the undelivered part, charge × remains / quantity half-up to 5 places; Canceled: all of it
    (its remains are the whole quantity); any other status: nothing."""
    if status in REFUNDING:
        return refund_for(charge, remains, quantity)
    return ZERO
