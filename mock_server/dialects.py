"""The wire format, in one place: how the panel's answers look as JSON, per dialect.

Decimal → money strings, ints → strings where panels send strings, which fields each dialect
sends, and the error text style. Nothing else in the project shapes a response body.

Dialects (PROTOCOL.md §7): `perfectpanel` (canonical), `seed` (the api-docs template: no
`cancel` in services, no `currency` in status, `Incorrect refill ID`), and `raw-keys`
(canonical shapes, untranslated i18n error keys).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .catalog import Service
from .errors import PanelError
from .money import format_money
from .panel import OrderView

DIALECTS = ("perfectpanel", "seed", "raw-keys")

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
        return {"balance": format_money(amount), "currency": currency}

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


def encode(body: Body) -> bytes:
    """Compact JSON, as PHP's json_encode writes it (non-ASCII escaped)."""
    return json.dumps(body, separators=(",", ":")).encode("ascii")
