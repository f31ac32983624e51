"""The service catalogue and the `add` parameter rules of every service type. No I/O: files
are read by `config_files` (`load_catalog` here is its shortcut).

Each type's rules are data (`TYPE_RULES`); one function, `parse_add`, applies them in the
documented order of checks: link, then the type's fields and quantity, then min/max, then
drip-feed. The service id and the account are the panel's business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from smmkit.mock_server.core.errors import (
    IncorrectLink,
    IncorrectRequest,
    QuantityTooHigh,
    QuantityTooLow,
)
from smmkit.mock_server.core.money import parse_money

MAX_LINK_LENGTH = 2048
MAX_TEXT_LENGTH = 10_000
MAX_RUNS = 1000
MAX_INTERVAL_MINUTES = 1440
SUBSCRIPTION_DELAYS = frozenset(
    {0, 5, 10, 15, 20, 30, 40, 50, 60, 90, 120, 150, 180, 210, 240, 270, 300, 360, 420, 480,
     540, 600}
)
_LINK = re.compile(r"^https?://[^\s/?#]+\.[^\s/?#]+(?:[/?#]\S*)?$|^https?://localhost(?::\d+)?(?:[/?#]\S*)?$")
_INTEGER = re.compile(r"^\s*-?[0-9]{1,40}\s*$")  # ASCII only: int() also reads "１００"


@dataclass(frozen=True)
class Service:
    """One catalogue entry. Lifecycle knobs: `start_delay` (seconds before delivery starts) and
    `speed` (units delivered per minute); `refill_days` is the refill window after completion."""

    service: int
    name: str
    type: str
    category: str
    rate: Decimal
    min: int
    max: int
    refill: bool = False
    cancel: bool = False
    dripfeed: bool = False
    refill_days: int = 30
    start_delay: int = 20
    speed: int = 600
    enabled: bool = True

    @property
    def priced_per_package(self) -> bool:
        return TYPE_RULES[self.type].package

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rate"] = str(self.rate)
        return data


@dataclass(frozen=True)
class TypeRule:
    link: bool = True
    quantity: str = "param"  # param | lines:<field> | count:<field> | package | subscription
    fields: Mapping[str, str] = field(default_factory=dict)  # name -> text | list | int | url
    package: bool = False
    dripfeed: bool = True


TYPE_RULES: dict[str, TypeRule] = {
    "Default": TypeRule(),
    "Package": TypeRule(quantity="package", package=True, dripfeed=False),
    "Custom Comments": TypeRule(quantity="lines:comments", fields={"comments": "list"}),
    "Custom Comments Package": TypeRule(
        quantity="lines:comments", fields={"comments": "list"}, package=True, dripfeed=False
    ),
    "Mentions": TypeRule(fields={"usernames": "list"}),
    "Mentions with Hashtags": TypeRule(fields={"usernames": "list", "hashtags": "list"}),
    "Mentions Custom List": TypeRule(quantity="count:usernames", fields={"usernames": "list"}),
    "Mentions Hashtag": TypeRule(fields={"hashtag": "text"}),
    "Mentions User Followers": TypeRule(fields={"username": "text"}),
    "Mentions Media Likers": TypeRule(fields={"media": "text"}),
    "Comment Likes": TypeRule(fields={"username": "text"}),
    "Comment Replies": TypeRule(
        quantity="lines:comments", fields={"username": "text", "comments": "list"}
    ),
    "Poll": TypeRule(fields={"answer_number": "int"}),
    "Invites from Groups": TypeRule(fields={"groups": "list"}),
    "Subscriptions": TypeRule(link=False, quantity="subscription", fields={"username": "text"},
                              dripfeed=False),
    "Web Traffic": TypeRule(fields={"country": "text", "device": "int", "type_of_traffic": "int"}),
    "SEO": TypeRule(fields={"keywords": "list"}),
    "Special": TypeRule(fields={"list": "list"}),
}
SERVICE_TYPES = tuple(TYPE_RULES)


@dataclass(frozen=True)
class OrderRequest:
    """What `add` asks for once validated: `quantity` per run, `runs` ≥ 1 (drip-feed)."""

    link: str
    quantity: int
    runs: int = 1
    interval: int = 0  # minutes between drip-feed runs
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.quantity * self.runs


def parse_add(service: Service, params: Mapping[str, str]) -> OrderRequest:
    """Validate `add` parameters for `service`; raise the catalogue error of the first failure."""
    rule = TYPE_RULES[service.type]
    link = _link(params) if rule.link else ""
    extras = {name: _field(params, name, kind) for name, kind in rule.fields.items()}
    extras.update(_optional_extras(service.type, params, extras))
    if rule.quantity == "subscription":
        quantity, sub = _subscription(service, params)
        extras.update(sub)
        return OrderRequest(link=extras["username"], quantity=quantity, extras=extras)
    quantity = _quantity(service, rule, params, extras)
    if not rule.package:
        if quantity < service.min:
            raise QuantityTooLow(f"quantity {quantity} < {service.min}", limit=service.min)
        if quantity > service.max:
            raise QuantityTooHigh(f"quantity {quantity} > {service.max}", limit=service.max)
    runs, interval = _dripfeed(service, rule, params)
    return OrderRequest(link=link, quantity=quantity, runs=runs, interval=interval, extras=extras)


def _present(params: Mapping[str, str], name: str) -> bool:
    return str(params.get(name, "")).strip() != ""


def _link(params: Mapping[str, str]) -> str:
    link = str(params.get("link", "")).strip()
    if not link or len(link) > MAX_LINK_LENGTH or not _LINK.match(link):
        raise IncorrectLink(f"bad link {link[:80]!r}")
    return link


def parse_int(value: object, what: str) -> int:
    text = str(value)
    if not _INTEGER.match(text):
        raise IncorrectRequest(f"{what} is not an integer: {text[:40]!r}")
    return int(text)


def split_list(value: object) -> list[str]:
    """Newline-separated list (`\\n` or `\\r\\n`), blank lines dropped."""
    return [line.strip() for line in str(value).replace("\r\n", "\n").split("\n") if line.strip()]


def _field(params: Mapping[str, str], name: str, kind: str) -> Any:
    if not _present(params, name):
        raise IncorrectRequest(f"missing {name!r}")
    value = str(params[name])
    if len(value) > MAX_TEXT_LENGTH * (100 if kind == "list" else 1):
        raise IncorrectRequest(f"{name!r} is too long ({len(value)} characters)")
    if kind == "list":
        return split_list(value)
    if kind == "int":
        number = parse_int(value, name)
        if number < 1:
            raise IncorrectRequest(f"{name!r} must be positive, got {number}")
        return number
    return value.strip()


def _optional_extras(type_: str, params: Mapping[str, str], extras: dict[str, Any]) -> dict:
    found: dict[str, Any] = {}
    if type_ == "Web Traffic":
        if not 1 <= extras["device"] <= 5:
            raise IncorrectRequest(f"device must be 1-5, got {extras['device']}")
        traffic = extras["type_of_traffic"]
        if not 1 <= traffic <= 3:
            raise IncorrectRequest(f"type_of_traffic must be 1-3, got {traffic}")
        if traffic == 1:
            found["google_keyword"] = _field(params, "google_keyword", "text")
        if traffic == 2:
            found["referring_url"] = _field(params, "referring_url", "text")
    if type_ == "Special":
        for name in ("suggest", "search"):
            if _present(params, name):
                found[name] = _field(params, name, "list")
    return found


def _quantity(service: Service, rule: TypeRule, params: Mapping[str, str], extras: dict) -> int:
    if rule.quantity == "package":
        return 1
    if rule.quantity.startswith(("lines:", "count:")):
        return len(extras[rule.quantity.split(":", 1)[1]])
    if not _present(params, "quantity"):
        raise IncorrectRequest("missing 'quantity'")
    return parse_int(params["quantity"], "quantity")


def _dripfeed(service: Service, rule: TypeRule, params: Mapping[str, str]) -> tuple[int, int]:
    if not (_present(params, "runs") or _present(params, "interval")):
        return 1, 0
    if not (service.dripfeed and rule.dripfeed):
        raise IncorrectRequest(f"service {service.service} has no drip-feed")
    runs = parse_int(params.get("runs", ""), "runs")
    interval = parse_int(params.get("interval", ""), "interval")
    if not (1 <= runs <= MAX_RUNS and 1 <= interval <= MAX_INTERVAL_MINUTES):
        raise IncorrectRequest(f"drip-feed runs={runs} interval={interval} out of range")
    return runs, interval


def _subscription(service: Service, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """Subscriptions: `min`/`max` per post within the service limits, `delay` from the fixed set,
    optional `posts` (default 1), `old_posts`, `expiry` (d/m/Y). Charged max × posts upfront
    (choice: the fake bills the most it could deliver and refunds the rest like any order)."""
    low = parse_int(params.get("min", ""), "min")
    high = parse_int(params.get("max", ""), "max")
    if low < service.min:
        raise QuantityTooLow(f"min {low} < {service.min}", limit=service.min)
    if high > service.max:
        raise QuantityTooHigh(f"max {high} > {service.max}", limit=service.max)
    if low > high:
        raise IncorrectRequest(f"min {low} > max {high}")
    delay = parse_int(params.get("delay", ""), "delay")
    if delay not in SUBSCRIPTION_DELAYS:
        raise IncorrectRequest(f"delay {delay} is not one of the allowed delays")
    extras: dict[str, Any] = {"min": low, "max": high, "delay": delay}
    posts = 1
    if _present(params, "posts"):
        posts = parse_int(params["posts"], "posts")
        if not 1 <= posts <= 10_000:
            raise IncorrectRequest(f"posts {posts} out of range")
        extras["posts"] = posts
    if _present(params, "old_posts"):
        old = parse_int(params["old_posts"], "old_posts")
        if not 0 <= old <= 10_000:
            raise IncorrectRequest(f"old_posts {old} out of range")
        extras["old_posts"] = old
    if _present(params, "expiry"):
        expiry = str(params["expiry"]).strip()
        try:
            datetime.strptime(expiry, "%d/%m/%Y")
        except ValueError:
            raise IncorrectRequest(f"expiry {expiry[:20]!r} is not d/m/Y") from None
        extras["expiry"] = expiry
    return high * posts, extras


# ---------------------------------------------------------------- loading


def service_from_json(data: Mapping[str, Any]) -> Service:
    """A Service from its JSON form; ValueError naming the problem when it is not one."""
    try:
        service = Service(
            service=int(data["service"]),
            name=str(data["name"]),
            type=str(data["type"]),
            category=str(data["category"]),
            rate=parse_money(data["rate"]),
            min=int(data["min"]),
            max=int(data["max"]),
            refill=bool(data.get("refill", False)),
            cancel=bool(data.get("cancel", False)),
            dripfeed=bool(data.get("dripfeed", False)),
            refill_days=int(data.get("refill_days", 30)),
            start_delay=int(data.get("start_delay", 20)),
            speed=int(data.get("speed", 600)),
            enabled=bool(data.get("enabled", True)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad service entry {data!r}: {exc}") from None  # data: any JSON
    if service.type not in TYPE_RULES:
        raise ValueError(f"service {service.service}: unknown type {service.type!r}")
    if service.rate < 0 or service.min < 0 or service.min > service.max or service.speed <= 0:
        raise ValueError(f"service {service.service}: inconsistent rate/min/max/speed")
    return service


def load_catalog(path: str | Path | None = None) -> list[Service]:
    """The catalogue from a JSON list (default: the one shipped with the package), checked
    strictly against `schemas/config/catalog.json` (see `config_files`)."""
    from smmkit.mock_server.core.config_files import load_catalog as load  # noqa: PLC0415

    return load(path)
