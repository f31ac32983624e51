"""The wire format, in one place: how the panel's answers look as JSON, per dialect.

Decimal → money text, ints → strings where panels send strings, which fields a dialect sends,
the status spellings and the error texts: all read from a dialect file (`smmkit.schemas.dialects`,
format in docs/dialects.md). Nothing else in the project shapes a response body.

Built-in dialects (docs/PROTOCOL.md §7) are files too: `perfectpanel` (canonical), `seed` (the
api-docs template: no `cancel` in services, no `currency` in status, balance in VND,
`Incorrect refill ID`), and `raw-keys` (canonical shapes, untranslated i18n error keys).
`Dialect(name_or_path)` takes a built-in name or a dialect file's path.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from smmkit.mock_server.core.catalog import Service
from smmkit.mock_server.core.errors import PanelError
from smmkit.mock_server.core.panel import OrderView
from smmkit.schemas import contract
from smmkit.schemas.dialects import DialectError, DialectSpec, load_dialect

_STATUS_VARIANTS = {"Canceled": ("Cancelled", "canceled", "CANCELED"),
                    "In progress": ("In Progress", "in progress", "Inprogress"),
                    "Completed": ("completed", "COMPLETED"), "Pending": ("pending",),
                    "Partial": ("partial",), "Processing": ("processing",)}

Body = Any  # JSON-ready: dicts, lists, str, int, bool, Number

# A Number is marked with a token drawn per process, so no string a client or a catalogue
# supplies can pass for one.
_TOKEN = secrets.token_hex(8)
_NUMBER_MARK = f"\x00{_TOKEN}:"
_NUMBER_SEEN = f"\\u0000{_TOKEN}:".encode()
_NUMBER_OUT = re.compile(b'"' + re.escape(_NUMBER_SEEN) + rb'(-?[0-9]+(?:\.[0-9]+)?)"')


_MARK_REMAINS = 917_305_228_164_903  # `status_bytes`: digits no other field of an answer holds
_MARK_DIGITS = str(_MARK_REMAINS).encode()


class Number(str):
    """A JSON number written with exactly these digits (a Decimal's text): money reaches the
    wire as a number, for dialects that send one, without passing through a float."""

    def __new__(cls, digits: str) -> Number:
        return super().__new__(cls, _NUMBER_MARK + digits)

    @property
    def digits(self) -> str:
        return self[len(_NUMBER_MARK):]


class Dialect:
    """The answers of one dialect. `name` is the nearest built-in (the error style of fault
    pages), `label` the dialect's own name."""

    def __init__(self, name: str | DialectSpec = "perfectpanel") -> None:
        try:
            self.spec = load_dialect(name)
        except DialectError as exc:
            raise ValueError(str(exc)) from None
        self.name = self.spec.builtin
        self.label = self.spec.name
        spec = self.spec
        self._int = {field: kind == "integer" for field, kind in spec.types.items()}
        self._money_number = spec.money["as"] == "number"
        self._rate_number = spec.rate["as"] == "number"
        # polling answers repeat the same few amounts over and over
        self._money_text = functools.lru_cache(maxsize=65_536)(spec.money_text)
        self._statuses: dict[OrderView, Body] = {}
        # an order polled while it moves: its answer around `remains`, per everything else
        self._templates: dict[tuple[Any, ...], tuple[bytes, bytes] | None] = {}

    @property
    def seed(self) -> bool:
        return self.spec.schema_dialect == "seed"

    def _id(self, field: str, value: int) -> int | str:
        return value if self._int[field] else str(value)

    def _money(self, amount: Decimal) -> str:
        text = self._money_text(amount)
        return Number(text) if self._money_number else text

    def error(self, exc: PanelError) -> Body:
        return {"error": self.spec.error_text(exc.code, exc.limit)}

    def services(self, services: list[Service]) -> Body:
        cancel, dripfeed = self.spec.services["cancel"], self.spec.services["dripfeed"]
        items = []
        for s in services:
            rate = str(s.rate)
            item: dict[str, Any] = {
                "service": self._id("services.service", s.service), "name": s.name,
                "type": s.type, "category": s.category,
                "rate": Number(format(s.rate, "f")) if self._rate_number else rate,
                "min": self._id("services.min", s.min), "max": self._id("services.max", s.max),
                "refill": s.refill,
            }
            if cancel:
                item["cancel"] = s.cancel
            if dripfeed:
                item["dripfeed"] = s.dripfeed
            items.append(item)
        return items

    def order(self, order_id: int) -> Body:
        return {"order": self._id("add.order", order_id)}

    def status(self, view: OrderView) -> Body:
        """An order's answer, shaped once per distinct view (polling asks the same again and
        again; the body is never changed after, `Awkward` builds new ones)."""
        body = self._statuses.get(view)
        if body is None:
            if len(self._statuses) >= 100_000:
                self._statuses.clear()
            body = self._statuses[view] = self._status(view)
        return body

    def status_bytes(self, view: OrderView) -> bytes:
        """`encode(self.status(view))`, from a template while only `remains` changes: an order
        being delivered has a new `remains` at nearly every poll, and shaping and encoding
        each one was a sixth of the cost of its answer. The template is this dialect's own
        answer for the view with a marker in `remains`, cut around the marker's digits (none
        when they do not show exactly once: then the answer is shaped as usual)."""
        key = (view.order, view.charge, view.start_count, view.status, view.currency)
        if key not in self._templates:
            if len(self._templates) >= 100_000:
                self._templates.clear()
            self._templates[key] = self._template(view)
        parts = self._templates[key]
        if parts is None:
            return encode(self.status(view))
        return b"".join((parts[0], str(view.remains).encode(), parts[1]))

    def _template(self, view: OrderView) -> tuple[bytes, bytes] | None:
        body = encode(self._status(view._replace(remains=_MARK_REMAINS)))
        parts = body.split(_MARK_DIGITS)
        return (parts[0], parts[1]) if len(parts) == 2 else None

    def _status(self, view: OrderView) -> Body:
        body: dict[str, Any] = {
            "charge": self._money(view.charge),
            "start_count": self._id("status.start_count", view.start_count),
            "status": self.spec.spelling(view.status),
            "remains": self._id("status.remains", view.remains),
        }
        if self.spec.currency["status"]:
            body["currency"] = view.currency
        return body

    def statuses(self, views: Mapping[int, OrderView | PanelError]) -> Body:
        return {str(i): self.error(v) if isinstance(v, PanelError) else self.status(v)
                for i, v in views.items()}

    def balance(self, amount: Any, currency: str) -> Body:
        body: dict[str, Any] = {"balance": self._money(amount)}
        if self.spec.currency["balance"]:
            body["currency"] = self.spec.currency["balance_value"] or currency
        return body

    def refill(self, refill_id: int) -> Body:
        return {"refill": self._id("refill.refill", refill_id)}

    def refills(self, results: Mapping[int, int | PanelError]) -> Body:
        return [{"order": self._id("refills.order", i),
                 "refill": self.error(r) if isinstance(r, PanelError)
                 else self._id("refills.refill", r)} for i, r in results.items()]

    def refill_status(self, status: str) -> Body:
        return {"status": self.spec.spelling(status)}

    def refill_statuses(self, results: Mapping[int, str | PanelError]) -> Body:
        return [{"refill": self._id("refill_statuses.refill", i),
                 "status": self.error(r) if isinstance(r, PanelError) else self.spec.spelling(r)}
                for i, r in results.items()]

    def cancels(self, results: Mapping[int, PanelError | None]) -> Body:
        return [{"order": self._id("cancel.order", i),
                 "cancel": self._id("cancel.cancel", 1) if r is None else self.error(r)}
                for i, r in results.items()]


class Awkward:
    """Robustness mode: schema-valid but awkward answers from the tolerant profile, seeded.

    Each answer is reshaped the way some real panel would send it — numbers instead of strings,
    `null` start_count, order ids as strings, status spelling variants, raw i18n error keys,
    extra fields — so client authors can test their parsing. Same seed, same sequence.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._counter = itertools.count()

    def _rng(self) -> random.Random:
        return random.Random(f"{self.seed}:awkward:{next(self._counter)}")

    def reshape(self, body: Body) -> Body:
        return self._walk(body, self._rng())

    def _walk(self, body: Body, rng: random.Random) -> Body:
        if isinstance(body, list):
            return [self._walk(item, rng) for item in body]
        if not isinstance(body, dict):
            return body
        out: dict[str, Any] = {}
        for name, value in body.items():
            out[name] = self._value(name, value, rng)
        if "service" in out and "rate" in out and rng.random() < 0.5:
            out.update({"dripfeed": rng.random() < 0.5, "desc": ""})
        if "currency" in out and "charge" in out and rng.random() < 0.3:
            del out["currency"]
        return out

    def _value(self, name: str, value: Any, rng: random.Random) -> Any:
        if isinstance(value, Number):
            return value  # already a number on the wire
        if isinstance(value, (dict, list)):
            return self._walk(value, rng)
        coin = rng.random()
        if name == "error" and isinstance(value, str) and coin < 0.5:
            return _RAW_BY_TEXT.get(value, value)
        if name in ("charge", "balance", "rate") and isinstance(value, str) and coin < 0.5:
            return json.loads(value)  # a JSON number, as some panels send money
        if name == "start_count" and coin < 0.4:
            return None if coin < 0.2 else int(value)
        if name in ("remains", "min", "max") and isinstance(value, str) and coin < 0.5:
            return int(value)
        if name == "status" and isinstance(value, str) and value in _STATUS_VARIANTS and coin < 0.6:
            return rng.choice(_STATUS_VARIANTS[value])
        if name in ("order", "refill", "service") and not isinstance(value, bool) \
                and isinstance(value, (int, str)) and coin < 0.5:
            return str(value) if isinstance(value, int) else int(value)
        if name == "cancel" and value == 1 and coin < 0.5:
            return rng.choice(["1", True])
        return value


def _raw_by_text() -> dict[str, str]:
    canonical, raw = contract.error_texts("perfectpanel"), contract.error_texts("raw-keys")
    return {text: raw[code] for code, text in canonical.items()
            if "{" not in text and raw[code] != text}


_RAW_BY_TEXT = _raw_by_text()


def encode(body: Body) -> bytes:
    """Compact JSON, as PHP's json_encode writes it (non-ASCII escaped); `Number` values are
    written as bare JSON numbers.

    orjson writes the same bytes as `json.dumps(body, separators=(",", ":"))` for what answers
    hold (strings, ints, bools, None; money is `Number` text, never a float) fifteen times
    faster, except that it does not escape non-ASCII: such an answer, or anything orjson
    refuses (an int past 64 bits), is written by json (tests/test_hot_path.py proves the two
    agree)."""
    try:
        out = orjson.dumps(body)
        if not out.isascii():
            raise TypeError("non-ASCII: json escapes it")
    except TypeError:
        out = json.dumps(body, separators=(",", ":")).encode("ascii")
    return _NUMBER_OUT.sub(rb"\1", out) if _NUMBER_SEEN in out else out
