"""money.py: exact charges, refunds and money strings (docs/PROTOCOL.md §2, §6)."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from smmkit.mock_server.core.money import charge_for, format_money, parse_money, refund_for


def half_up_5(value: Fraction) -> Decimal:
    """Independent rounding: exact rational → nearest 0.00001, halves away from zero."""
    scaled = value * 100_000
    sign = -1 if scaled < 0 else 1
    magnitude = abs(scaled)
    units = magnitude.numerator // magnitude.denominator
    if magnitude - units >= Fraction(1, 2):
        units += 1
    return Decimal(sign * units).scaleb(-5)


rates = st.builds(lambda n, places: Decimal(n).scaleb(-places),
                  st.integers(0, 10**7), st.integers(0, 6))
quantities = st.integers(0, 10**7)


@given(rate=rates, quantity=quantities)
@example(rate=Decimal("0.90"), quantity=309)  # 0.2781 exactly
@example(rate=Decimal("0.0125"), quantity=1)  # 0.0000125 → 0.00001 (half-up, not even)
@example(rate=Decimal("0.0015"), quantity=5)  # 0.0000075 → 0.00001
@example(rate=Decimal("0.025"), quantity=1)  # 0.000025: exactly half-way
def test_charge_is_rate_times_quantity_over_1000_half_up(rate: Decimal, quantity: int) -> None:
    expected = half_up_5(Fraction(rate) * quantity / 1000)
    charge = charge_for(rate, quantity)
    assert charge == expected
    assert charge.as_tuple().exponent == -5


@pytest.mark.parametrize(("rate", "quantity", "text"), [
    ("0.90", 1000, "0.9"),
    ("0.90", 309, "0.2781"),
    ("0.0125", 1, "0.00001"),  # 0.0000125
    ("0.0125", 3, "0.00004"),  # 0.0000375 → half-up
    ("0.0005", 5, "0"),  # 0.0000025 → 0.00000
    ("0.0001", 25, "0"),  # 0.0000025
    ("0.0003", 25, "0.00001"),  # 0.0000075
    ("0.00005", 1000, "0.00005"),
    ("2.50", 1000, "2.5"),
    ("18.00", 5000, "90"),
])
def test_charge_examples(rate: str, quantity: int, text: str) -> None:
    assert format_money(charge_for(Decimal(rate), quantity)) == text


def test_half_up_not_half_even() -> None:
    # 0.000025 is exactly half-way between 0.00002 and 0.00003: half-up gives the larger one.
    assert charge_for(Decimal("0.025"), 1) == Decimal("0.00003")
    assert charge_for(Decimal("0.015"), 1) == Decimal("0.00002")


amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False,
                      allow_infinity=False, places=None)


@given(amounts)
@example(Decimal("1E+3"))
@example(Decimal("0E-10"))
@example(Decimal("-0.000001"))
@example(Decimal("2.50000"))
@example(Decimal("1E-7"))
@example(Decimal("100"))
def test_format_money_shape_and_round_trip(amount: Decimal) -> None:
    text = format_money(amount)
    assert re.fullmatch(r"-?\d+(\.\d{1,5})?", text), text
    assert "e" not in text.lower()
    if "." in text:
        assert not text.endswith("0")
    assert text != "-0"
    assert Decimal(text) == half_up_5(Fraction(amount))
    # A formatted amount formats to itself.
    assert format_money(Decimal(text)) == text


@pytest.mark.parametrize(("amount", "text"), [
    ("2.50000", "2.5"), ("0.27819", "0.27819"), ("100.84292", "100.84292"), ("1000.00", "1000"),
    ("1E+3", "1000"), ("0", "0"), ("0.00000", "0"), ("-0.000001", "0"), ("0.000005", "0.00001"),
    ("0.000004", "0"), ("343423", "343423"), ("12345678901234.5", "12345678901234.5"),
    ("-2.5", "-2.5"),
])
def test_format_money_examples(amount: str, text: str) -> None:
    assert format_money(Decimal(amount)) == text


@given(rate=rates, quantity=st.integers(1, 10**6), remains=st.integers(-(10**6), 2 * 10**6))
def test_refund_never_above_charge(rate: Decimal, quantity: int, remains: int) -> None:
    charge = charge_for(rate, quantity)
    refund = refund_for(charge, remains, quantity)
    assert Decimal(0) <= refund <= charge
    if remains <= 0:
        assert refund == 0
    elif remains >= quantity:
        assert refund == charge
    else:
        assert refund == half_up_5(Fraction(charge) * remains / quantity)


def test_refund_examples() -> None:
    assert refund_for(Decimal("0.90000"), 305, 1000) == Decimal("0.27450")
    assert refund_for(Decimal("0.90000"), 1000, 1000) == Decimal("0.90000")
    assert refund_for(Decimal("0.90000"), -6, 1000) == 0
    assert refund_for(Decimal("0.00001"), 1, 3) == Decimal("0.00000")
    assert refund_for(Decimal("0.00001"), 2, 3) == Decimal("0.00001")


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", "abc", "", "1,5", True, "sNaN"])
def test_parse_money_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_money(value)  # type: ignore[arg-type]


def test_parse_money_accepts() -> None:
    assert parse_money(" 1.50 ") == Decimal("1.50")
    assert parse_money(7) == Decimal(7)
    assert parse_money(Decimal("0.00001")) == Decimal("0.00001")
