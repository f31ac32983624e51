"""The wire format, in one place: how the panel's answers look as JSON, per dialect.

Decimal → money strings, ints → strings where panels send strings, which fields each dialect
sends, and the error text style. Nothing else in the project shapes a response body.

Dialects (docs/PROTOCOL.md §7): `perfectpanel` (canonical), `seed` (the api-docs template: no
`cancel` in services, no `currency` in status, `Incorrect refill ID`), and `raw-keys`
(canonical shapes, untranslated i18n error keys).
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smmkit.mock_server.core.catalog import Service
from smmkit.mock_server.core.errors import PanelError
from smmkit.mock_server.core.money import format_money
from smmkit.mock_server.core.panel import OrderView

DIALECTS = ("perfectpanel", "seed", "raw-keys")
_STATUS_VARIANTS = {"Canceled": ("Cancelled", "canceled", "CANCELED"),
                    "In progress": ("In Progress", "in progress", "Inprogress"),
                    "Completed": ("completed", "COMPLETED"), "Pending": ("pending",),
                    "Partial": ("partial",), "Processing": ("processing",)}

Body = Any  # JSON-ready: dicts, lists, str, int, bool


@dataclass(frozen=True)
class Dialect:
    name: str = "perfectpanel"

    def __post_init__(self) -> None:
        if self.name not in DIALECTS:
            raise ValueError(f"unknown dialect {self.name!r}; one of {', '.join(DIALECTS)}")

    @property
    def seed(self) -> bool:
        return self.name == "seed"

    def error(self, exc: PanelError) -> Body:
        return {"error": exc.text(self.name)}

    def services(self, services: list[Service]) -> Body:
        items = []
        for s in services:
            item: dict[str, Any] = {
                "service": s.service, "name": s.name, "type": s.type, "category": s.category,
                "rate": str(s.rate), "min": str(s.min), "max": str(s.max), "refill": s.refill,
            }
            if not self.seed:
                item["cancel"] = s.cancel
            items.append(item)
        return items

    def order(self, order_id: int) -> Body:
        return {"order": order_id}

    def status(self, view: OrderView) -> Body:
        body: dict[str, Any] = {
            "charge": format_money(view.charge),
            "start_count": str(view.start_count),
            "status": view.status,
            "remains": str(view.remains),
        }
        if not self.seed:
            body["currency"] = view.currency
        return body

    def statuses(self, views: Mapping[int, OrderView | PanelError]) -> Body:
        return {str(i): self.error(v) if isinstance(v, PanelError) else self.status(v)
                for i, v in views.items()}

    def balance(self, amount: Any, currency: str) -> Body:
        # The seed template is a Vietnamese panel: its balance is always in VND (§7).
        return {"balance": format_money(amount), "currency": "VND" if self.seed else currency}

    def refill(self, refill_id: int) -> Body:
        return {"refill": str(refill_id)}

    def refills(self, results: Mapping[int, int | PanelError]) -> Body:
        return [{"order": i, "refill": self.error(r) if isinstance(r, PanelError) else r}
                for i, r in results.items()]

    def refill_status(self, status: str) -> Body:
        return {"status": status}

    def refill_statuses(self, results: Mapping[int, str | PanelError]) -> Body:
        return [{"refill": i, "status": self.error(r) if isinstance(r, PanelError) else r}
                for i, r in results.items()]

    def cancels(self, results: Mapping[int, PanelError | None]) -> Body:
        return [{"order": i, "cancel": 1 if r is None else self.error(r)}
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
    from smmkit.mock_server.core.errors import CANONICAL_TEXTS, RAW_KEY_TEXTS

    return {text: RAW_KEY_TEXTS[code] for code, text in CANONICAL_TEXTS.items()
            if "{" not in text and RAW_KEY_TEXTS[code] != text}


_RAW_BY_TEXT = _raw_by_text()


def encode(body: Body) -> bytes:
    """Compact JSON, as PHP's json_encode writes it (non-ASCII escaped)."""
    return json.dumps(body, separators=(",", ":")).encode("ascii")
