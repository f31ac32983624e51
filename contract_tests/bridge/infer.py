"""A dialect file read off a live panel's answers to the diff script.

Only what the answers show is changed from the canonical dialect: the error texts the probes
provoked (a limit in a text becomes `{limit}`), how money and rates are written, whether
`currency`, `cancel` and `dripfeed` are sent, the JSON type of each id and count seen, and
status spellings that fold to a canonical status.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from smmkit.contract_tests.bridge.compare import parse
from smmkit.contract_tests.bridge.diff import Pair
from smmkit.contract_tests.bridge.statuses import canonical_status
from smmkit.contract_tests.checks import error_texts_in
from smmkit.schemas.dialects import builtin, load_dialect


def _type(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "integer"
    return "string" if isinstance(value, str) else None


class _Reader:
    def __init__(self, name: str) -> None:
        base = builtin("perfectpanel").to_json()
        self.doc: dict[str, Any] = {**base, "name": name,
                                    "description": "Written by `smmkit diff` from a live "
                                                   "panel's answers; edit as needed."}

    def set(self, section: str, key: str, value: Any) -> None:
        self.doc[section][key] = value

    def typed(self, where: str, value: Any) -> None:
        kind = _type(value)
        if kind is not None:
            self.set("types", where, kind)

    def money(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            return
        self.set("money", "as", "string" if isinstance(value, str) else "number")
        text = str(value).strip()
        fraction = text.split(".", 1)[1] if "." in text else ""
        if fraction.endswith("0"):
            self.set("money", "trim_zeros", False)
            self.set("money", "decimals", len(fraction))
        else:
            self.set("money", "trim_zeros", True)
            self.set("money", "decimals", max(5, len(fraction)))

    def status(self, value: Any) -> None:
        canonical = canonical_status(value)
        if canonical is not None and value != canonical:
            self.set("statuses", canonical, value)

    def error(self, pair: Pair) -> None:
        if pair.code is None:
            return
        for _, text in error_texts_in(pair.live):
            if not isinstance(text, str):
                continue
            if pair.limit is not None and str(pair.limit) in text:
                text = text.replace(str(pair.limit), "{limit}", 1)
            self.set("errors", pair.code, text)


def infer_dialect(pairs: Iterable[Pair], name: str = "live") -> dict[str, Any]:
    """The dialect file (as JSON data) that makes the fake answer these pairs like the live."""
    reader = _Reader(name)
    for pair in pairs:
        data = parse(pair.live.body)
        reader.error(pair)
        if isinstance(data, dict) and set(data) == {"error"}:
            continue
        handler = getattr(_READERS, f"on_{pair.live.action}", None)
        if handler is not None:
            handler(reader, data, pair)
    load_dialect(reader.doc)  # what is written must be a valid dialect file
    return reader.doc


class _READERS:
    @staticmethod
    def on_services(r: _Reader, data: Any, pair: Pair) -> None:
        items = [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []
        if not items:
            return
        first = items[0]
        for name in ("service", "min", "max"):
            r.typed(f"services.{name}", first.get(name))
        rate = first.get("rate")
        if isinstance(rate, (str, int, Decimal)) and not isinstance(rate, bool):
            r.set("rate", "as", "string" if isinstance(rate, str) else "number")
        r.set("services", "cancel", all("cancel" in i for i in items))
        r.set("services", "dripfeed", all("dripfeed" in i for i in items))

    @staticmethod
    def on_balance(r: _Reader, data: Any, pair: Pair) -> None:
        if isinstance(data, dict) and "balance" in data:
            r.money(data["balance"])
            r.set("currency", "balance", "currency" in data)

    @staticmethod
    def on_add(r: _Reader, data: Any, pair: Pair) -> None:
        if isinstance(data, dict):
            r.typed("add.order", data.get("order"))

    @staticmethod
    def on_status(r: _Reader, data: Any, pair: Pair) -> None:
        if not isinstance(data, dict):
            return
        views = [data] if "orders" not in pair.live.params else \
            [v for v in data.values() if isinstance(v, dict) and "error" not in v]
        for view in views:
            r.money(view.get("charge"))
            r.typed("status.start_count", view.get("start_count"))
            r.typed("status.remains", view.get("remains"))
            r.status(view.get("status"))
            r.set("currency", "status", "currency" in view)

    @staticmethod
    def on_cancel(r: _Reader, data: Any, pair: Pair) -> None:
        for item in data if isinstance(data, list) else ():
            if isinstance(item, dict) and not isinstance(item.get("cancel"), dict):
                r.typed("cancel.order", item.get("order"))
                r.typed("cancel.cancel", item.get("cancel"))

    @staticmethod
    def on_refill_status(r: _Reader, data: Any, pair: Pair) -> None:
        if isinstance(data, dict):
            r.status(data.get("status"))
        for item in data if isinstance(data, list) else ():
            if isinstance(item, dict):
                r.typed("refill_statuses.refill", item.get("refill"))
                r.status(item.get("status"))
