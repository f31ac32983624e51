"""Judging against a dialect file: undo the quirks it declares, then judge canonically.

The kit's schemas describe two families of shapes (perfectpanel, seed). A dialect file names
how its panel departs from its family — texts, spellings, money digits, JSON types, optional
fields — so an answer is turned back into what the family's canonical panel would have sent,
undoing exactly the declared quirks and nothing else, and judged by the ordinary checks. Where
the panel does not do what its dialect declares (a declared integer sent as a string, money
declared as numbers sent as strings), that is reported too: the dialect is the contract now.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from smmkit.contract_tests.exchange import Exchange
from smmkit.schemas.dialects import DialectSpec, builtin

_MARK = "\x00num:"
_MARKED = re.compile(r'"\\u0000num:([^"\\]+)"')
_STATUS_FIELDS = {"status", "refill_status"}


def _number(value: Decimal) -> str:
    return _MARK + format(value, "f")


def _dump(data: Any) -> bytes:
    """JSON with the panel's numbers written back with their own digits (no float)."""
    def mark(node: Any) -> Any:
        if isinstance(node, Decimal):
            return _number(node)
        if isinstance(node, dict):
            return {k: mark(v) for k, v in node.items()}
        if isinstance(node, list):
            return [mark(v) for v in node]
        return node

    return _MARKED.sub(r"\1", json.dumps(mark(data), ensure_ascii=False)).encode("utf-8")


def _canonical_money(amount: Decimal) -> str:
    text = format(amount.quantize(Decimal("0.00001"), rounding=ROUND_HALF_UP), "f")
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


class _View:
    def __init__(self, spec: DialectSpec, currency: str) -> None:
        self.spec = spec
        self.currency = currency  # stands in for a currency the dialect leaves out
        self.base = builtin(spec.schema_dialect)
        self.problems: list[str] = []
        self.reverse_status = {v: k for k, v in spec.statuses.items()}
        self.texts = [(code, _pattern(text)) for code, text in spec.errors.items()]

    # ---------------------------------------------------------------- pieces
    def error(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for code, pattern in self.texts:
            match = pattern.match(value)
            if match:
                if pattern.groups:
                    return self.base.error_text(code, int(match.group(1)))
                if "{limit}" in self.base.errors[code]:  # the text lost the limit: the kit
                    return builtin("raw-keys").errors[code]  # accepts the raw key for it
                return self.base.errors[code]
        self.problems.append(f"error text {value!r} is not one of the dialect's texts")
        return value

    def typed(self, where: str, value: Any, canonical: str) -> Any:
        declared = self.spec.types[where]
        observed = "integer" if isinstance(value, int) and not isinstance(value, bool) else \
            "string" if isinstance(value, str) else None
        if observed is None:
            return value  # not an id at all: the schema check says so
        if observed != declared:
            self.problems.append(f"{where} is a JSON {observed}; the dialect declares {declared}")
            return value
        if canonical == "string":
            return str(value)
        return int(value) if str(value).strip().lstrip("-").isdigit() else value

    def money(self, where: str, value: Any) -> Any:
        declared = self.spec.money["as"]
        if isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)  # a whole amount written as a JSON integer
        if isinstance(value, Decimal) and declared == "number":
            return _canonical_money(value)
        if isinstance(value, str) and declared == "string":
            if value != self._expected_digits(value):
                self.problems.append(f"{where} {value!r} is not written as the dialect writes "
                                     f"money ({self.spec.money['decimals']} decimals, trim "
                                     f"{self.spec.money['trim_zeros']})")
                return value
            try:
                return _canonical_money(Decimal(value))
            except InvalidOperation:
                return value
        if isinstance(value, (Decimal, str)):
            observed = "number" if isinstance(value, Decimal) else "string"
            self.problems.append(f"{where} is a JSON {observed}; the dialect declares {declared}")
        return value

    def _expected_digits(self, text: str) -> str:
        try:
            return self.spec.money_text(Decimal(text))
        except InvalidOperation:
            return text

    def status(self, value: Any) -> Any:
        return self.reverse_status.get(value, value) if isinstance(value, str) else value

    def optional(self, item: dict[str, Any], name: str, present: bool, placeholder: Any) -> None:
        """A field the dialect leaves out is put back (its family requires it); one it adds
        to the family's shape is taken away."""
        family_has = self.base.services.get(name) if name in ("cancel", "dripfeed") else \
            self.base.currency.get(name, True)
        if present and not family_has:
            item.pop(name if name in ("cancel", "dripfeed") else "currency", None)
        elif not present and family_has:
            field = name if name in ("cancel", "dripfeed") else "currency"
            item.setdefault(field, placeholder)

    # ---------------------------------------------------------------- answers
    def answer(self, action: str, params: Any, data: Any) -> Any:
        if isinstance(data, dict) and set(data) == {"error"}:
            return {"error": self.error(data["error"])}
        handler: Callable[[Any], Any] | None = getattr(self, f"_{action}", None)
        if handler is None:
            return data
        if action == "status" and "orders" in params and isinstance(data, dict):
            return {k: ({"error": self.error(v["error"])} if isinstance(v, dict) and "error" in v
                        else self._status(v)) for k, v in data.items()}
        if action in ("refill", "refill_status") and isinstance(data, list):
            return [self._item(action, item) for item in data]
        return handler(data)

    def _services(self, data: Any) -> Any:
        if not isinstance(data, list):
            return data
        out = []
        for item in data:
            if not isinstance(item, dict):
                out.append(item)
                continue
            item = dict(item)
            for name, canonical in (("service", "integer"), ("min", "string"), ("max", "string")):
                if name in item:
                    item[name] = self.typed(f"services.{name}", item[name], canonical)
            if "rate" in item:
                rate, declared = item["rate"], self.spec.rate["as"]
                if isinstance(rate, int) and not isinstance(rate, bool):
                    rate = Decimal(rate)
                if isinstance(rate, Decimal) and declared == "number":
                    item["rate"] = format(rate, "f")
                elif isinstance(rate, (Decimal, str)) and (isinstance(rate, str)) != \
                        (declared == "string"):
                    kind = "string" if isinstance(rate, str) else "number"
                    self.problems.append(f"services.rate is a JSON {kind}; the dialect "
                                         f"declares {declared}")
            # A cancel the panel does not show is unknown, not absent: never accuse it.
            self.optional(item, "cancel", self.spec.services["cancel"], True)
            self.optional(item, "dripfeed", self.spec.services["dripfeed"], False)
            out.append(item)
        return out

    def _add(self, data: Any) -> Any:
        if isinstance(data, dict) and "order" in data:
            return {**data, "order": self.typed("add.order", data["order"], "integer")}
        return data

    def _status(self, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        item = dict(data)
        if "charge" in item:
            item["charge"] = self.money("status.charge", item["charge"])
        for name in ("start_count", "remains"):
            if name in item:
                item[name] = self.typed(f"status.{name}", item[name], "string")
        if "status" in item:
            item["status"] = self.status(item["status"])
        self.optional(item, "status", self.spec.currency["status"], self.currency)
        return item

    def _balance(self, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        item = dict(data)
        if "balance" in item:
            item["balance"] = self.money("balance.balance", item["balance"])
        self.optional(item, "balance", self.spec.currency["balance"], self.currency)
        return item

    def _refill(self, data: Any) -> Any:
        if isinstance(data, dict) and "refill" in data:
            return {**data, "refill": self.typed("refill.refill", data["refill"], "string")}
        return data

    def _refill_status(self, data: Any) -> Any:
        if isinstance(data, dict) and "status" in data:
            return {**data, "status": self.status(data["status"])}
        return data

    def _cancel(self, data: Any) -> Any:
        if not isinstance(data, list):
            return data
        return [self._item("cancel", item) for item in data]

    def _item(self, action: str, item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        item = dict(item)
        prefix = {"refill": "refills", "refill_status": "refill_statuses", "cancel": "cancel"}[
            action]
        value_name = {"refill": "refill", "refill_status": "status", "cancel": "cancel"}[action]
        id_name = "refill" if action == "refill_status" else "order"
        if id_name in item:
            item[id_name] = self.typed(f"{prefix}.{id_name}", item[id_name], "integer")
        value = item.get(value_name)
        if isinstance(value, dict) and "error" in value:
            item[value_name] = {"error": self.error(value["error"])}
        elif action == "refill_status":
            item[value_name] = self.status(value)
        elif value is not None:
            item[value_name] = self.typed(f"{prefix}.{value_name}", value, "integer")
        return item


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(template).replace(re.escape("{limit}"), r"(-?\d+)") + "$")


def canonical(exchange: Exchange, spec: DialectSpec,
              currency: str = "USD") -> tuple[Exchange, list[str]]:
    """The exchange as its schema family's canonical panel would have answered, and where the
    panel did not do what `spec` declares. `currency` is put where the dialect leaves the
    currency out: the account's, as far as the caller knows it."""
    try:
        data = json.loads(exchange.body.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        return exchange, []
    view = _View(spec, currency)
    answer = view.answer(exchange.action, exchange.params, data)
    return dataclasses.replace(exchange, body=_dump(answer)), view.problems
