"""The kit's own reading of a panel's `services` answer and of what an `add` should cost.

Independent of the fake on purpose: the kit checks live panels too, so it derives quantities and
charges from docs/PROTOCOL.md §2–3 itself. Money is Decimal only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

FIVE_PLACES = Decimal("0.00001")
# Priced per package (docs/PROTOCOL.md §3): the charge is the rate, whatever the quantity.
PACKAGE_TYPES = frozenset({"Package", "Custom Comments Package"})

# How each type of docs/PROTOCOL.md §3 gets its quantity: from `quantity`, from the lines of a list
# field, one package, or a subscription (max × posts).
QUANTITY_RULES: dict[str, str] = {
    "Default": "param",
    "Package": "package",
    "Custom Comments": "lines:comments",
    "Custom Comments Package": "lines:comments",
    "Mentions": "param",
    "Mentions with Hashtags": "param",
    "Mentions Custom List": "lines:usernames",
    "Mentions Hashtag": "param",
    "Mentions User Followers": "param",
    "Mentions Media Likers": "param",
    "Comment Likes": "param",
    "Comment Replies": "lines:comments",
    "Poll": "param",
    "Invites from Groups": "param",
    "Subscriptions": "subscription",
    "Web Traffic": "param",
    "SEO": "param",
    "Special": "param",
}


def parse_decimal(value: Any) -> Decimal | None:
    """A Decimal from a money *string* (or int); None for floats, bools and junk."""
    if isinstance(value, bool) or isinstance(value, float) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def parse_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        return None
    return int(text)


def charge_for(rate: Decimal, quantity: int) -> Decimal:
    """rate × quantity / 1000, half-up to 5 decimals (docs/PROTOCOL.md §2)."""
    return (rate * quantity / 1000).quantize(FIVE_PLACES, rounding=ROUND_HALF_UP)


def split_lines(value: Any) -> list[str]:
    return [line for line in str(value).replace("\r\n", "\n").split("\n") if line.strip()]


@dataclass(frozen=True)
class KitService:
    service: int
    name: str
    type: str
    rate: Decimal
    min: int
    max: int
    refill: bool = False
    cancel: bool = False
    dripfeed: bool = False

    @property
    def package(self) -> bool:
        return self.type in PACKAGE_TYPES

    def quantity_of(self, params: Mapping[str, str]) -> int | None:
        """Units an `add` with `params` orders (runs included), or None when not derivable."""
        rule = QUANTITY_RULES.get(self.type)
        if rule is None:
            return None
        if rule == "package":
            return 1
        if rule.startswith("lines:"):
            return len(split_lines(params.get(rule.split(":", 1)[1], "")))
        if rule == "subscription":
            high, posts = parse_int(params.get("max")), parse_int(params.get("posts", "1") or "1")
            return None if high is None or posts is None else high * posts
        quantity = parse_int(params.get("quantity"))
        runs = parse_int(params.get("runs", "1") or "1")
        return None if quantity is None or runs is None else quantity * runs

    def charge_of(self, params: Mapping[str, str]) -> Decimal | None:
        """The charge docs/PROTOCOL.md §2 prescribes: a package costs its rate (observed), the rest
        rate × quantity / 1000."""
        if self.package:
            return self.rate.quantize(FIVE_PLACES, rounding=ROUND_HALF_UP)
        quantity = self.quantity_of(params)
        return None if quantity is None else charge_for(self.rate, quantity)

    def cheapest_charge(self) -> Decimal:
        """The least an accepted `add` on this service can cost."""
        if self.package:
            return self.rate
        return charge_for(self.rate, max(self.min, 1))


def parse_catalogue(answer: Any) -> list[KitService]:
    """The usable entries of a parsed `services` answer (malformed entries are skipped: the
    schema check reports them)."""
    services: list[KitService] = []
    if not isinstance(answer, list):
        return services
    for item in answer:
        if not isinstance(item, Mapping):
            continue
        sid, low, high = (parse_int(item.get(k)) for k in ("service", "min", "max"))
        rate = parse_decimal(item.get("rate"))
        if sid is None or low is None or high is None or rate is None:
            continue
        services.append(
            KitService(
                service=sid,
                name=str(item.get("name", "")),
                type=str(item.get("type", "Default")),
                rate=rate,
                min=low,
                max=high,
                refill=bool(item.get("refill", False)),
                cancel=bool(item.get("cancel", False)),
                dripfeed=bool(item.get("dripfeed", False)),
            )
        )
    return services


def by_id(services: Iterable[KitService]) -> dict[int, KitService]:
    return {s.service: s for s in services}
