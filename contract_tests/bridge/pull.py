"""`smmkit catalog pull URL --key KEY`: a live panel's `services` as a fake catalogue file.

The file is the fake's own catalogue format (a JSON list the fake's `--catalog` reads), so the
fake then sells exactly what the provider sells. Values are read the way panels send them
(strings or numbers, `"1"` or `true`), money stays Decimal (a rate is written back as the very
decimal string the panel sent), and the lifecycle knobs the live API does not reveal are
defaulted per service type and left in the file to edit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from smmkit import schemas

# Lifecycle knobs per type, for what the API does not say: seconds before delivery starts,
# units delivered per minute, days a completed order may be refilled. Editable in the file.
DEFAULT_TIMINGS: dict[str, dict[str, int]] = {
    "Default": {"start_delay": 20, "speed": 600, "refill_days": 30},
    "Package": {"start_delay": 10, "speed": 1, "refill_days": 30},
    "Custom Comments": {"start_delay": 60, "speed": 30, "refill_days": 0},
    "Custom Comments Package": {"start_delay": 60, "speed": 1, "refill_days": 0},
    "Subscriptions": {"start_delay": 60, "speed": 100, "refill_days": 0},
    "Web Traffic": {"start_delay": 30, "speed": 1000, "refill_days": 0},
}
_TYPES = {t.lower(): t for t in schemas.SERVICE_TYPES}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class PullError(Exception):
    """The panel's `services` answer could not be turned into a catalogue."""


@dataclass
class Pulled:
    services: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)  # why each unusable item was left out


def fetch_services(url: str, key: str, *, timeout: float = 30.0, session: Any = None) -> Any:
    """The parsed `services` answer of the panel at `url` (numbers kept as Decimal)."""
    import requests

    http = session or requests
    try:
        response = http.post(url, data={"key": key, "action": "services"}, timeout=timeout)
    except requests.RequestException as exc:
        raise PullError(f"{url}: {type(exc).__name__}") from None
    try:
        data = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise PullError(f"{url} answered HTTP {response.status_code} with a body that is "
                        f"not JSON") from None
    if isinstance(data, dict) and "error" in data:
        raise PullError(f"{url} refused `services`: {data['error']!r}")
    if not isinstance(data, list):
        raise PullError(f"{url}: `services` answered a {type(data).__name__}, not a list")
    return data


def to_catalog(items: Sequence[Any],
               timings: Mapping[str, Mapping[str, int]] | None = None) -> Pulled:
    """Catalogue entries for the usable `services` items; the rest are named in `skipped`."""
    timings = {**DEFAULT_TIMINGS, **(timings or {})}
    pulled = Pulled([])
    seen: set[int] = set()
    for index, item in enumerate(items):
        try:
            entry = _entry(item, timings)
        except ValueError as exc:
            pulled.skipped.append(f"item {index}: {exc}")
            continue
        if entry["service"] in seen:
            pulled.skipped.append(f"item {index}: duplicate service id {entry['service']}")
            continue
        seen.add(entry["service"])
        pulled.services.append(entry)
    return pulled


def _entry(item: Any, timings: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise ValueError(f"not an object: {item!r}"[:120])
    kind = _TYPES.get(str(item.get("type", "Default")).strip().lower())
    if kind is None:
        raise ValueError(f"unknown service type {item.get('type')!r}")
    low, high = _int(item, "min"), _int(item, "max")
    if not 0 <= low <= high:
        raise ValueError(f"min {low} / max {high} inconsistent")
    entry: dict[str, Any] = {
        "service": _int(item, "service"), "name": str(item.get("name", "")),
        "type": kind, "category": str(item.get("category", "")),
        "rate": _rate(item.get("rate")), "min": low, "max": high,
        "refill": _flag(item, "refill"), "cancel": _flag(item, "cancel"),
        "dripfeed": _flag(item, "dripfeed"),
    }
    for text in ("name", "category"):  # the fake's catalogue files need both (schemas/config)
        if not entry[text]:
            raise ValueError(f"empty {text}")
    entry.update(timings.get(kind, DEFAULT_TIMINGS["Default"]))
    return entry


def _int(item: Mapping[str, Any], name: str) -> int:
    value = item.get(name)
    text = str(value).strip() if isinstance(value, (int, str, Decimal)) \
        and not isinstance(value, bool) else ""
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} {value!r} is not an integer") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError(f"{name} {value!r} is not an integer")
    return int(number)


def _rate(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError(f"rate {value!r} is not a decimal")
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"rate {value!r} is not a decimal") from None
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"rate {value!r} is not a non-negative decimal")
    return str(rate) if "e" not in str(rate).lower() else format(rate, "f")


def _flag(item: Mapping[str, Any], name: str) -> bool:
    value = item.get(name, False)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or value is None:
        return False
    raise ValueError(f"{name} {value!r} is not a yes/no value")


def write_catalog(pulled: Pulled, path: str | Path) -> Path:
    """Write the catalogue file (whole or not at all: a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(pulled.services, indent=2, ensure_ascii=False) + "\n", "utf-8")
    tmp.replace(path)
    return path
