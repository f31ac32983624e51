"""Status spellings for `smmkit diff`: which contract status a panel's word means, and orders
on the fake in the statuses the live panel's orders are in.

Panels spell statuses their own way ("In Progress", "Complete", "Cancelled", "Partially
completed"). `canonical_status` folds a spelling onto the one contract status it means, or
None when it means none or could mean two. The diff can only compare a spelling when the fake
answers about an order in the same status, so `FakeOrders` steers the in-process fake through
its own control API (its public face, as any user's test would): it places orders in the
statuses seen on the live panel's existing orders, and keeps the fake's copy of each order the
diff places in the status the live panel reports for it (`mirror`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from smmkit.contract_tests.catalogue import KitService, parse_int
from smmkit.contract_tests.exchange import Exchange
from smmkit.schemas import contract

# Every status the contract names, orders then refills ("Rejected"), each once.
STATUSES: tuple[str, ...] = tuple(dict.fromkeys((*contract.ORDER_STATUSES,
                                                 *contract.REFILL_STATUSES)))
MIN_PREFIX = 4  # a shorter word ("in", "par") is no evidence of a status
CONTROL = "/_control"


def fold(text: str) -> str:
    """A status with case, spaces, underscores and the British double l taken out."""
    return re.sub(r"[\s_-]+", "", text).lower().replace("cancelled", "canceled")


def canonical_status(spelling: Any) -> str | None:
    """The contract status `spelling` means: the same letters folded, or one being the other's
    beginning ("Complete" for Completed, "Partially completed" for Partial); None if no status
    or more than one fits."""
    if not isinstance(spelling, str):
        return None
    if spelling in STATUSES:
        return spelling
    folded = fold(spelling)
    same = [s for s in STATUSES if fold(s) == folded]
    if not same and len(folded) >= MIN_PREFIX:
        same = [s for s in STATUSES if fold(s).startswith(folded) or folded.startswith(fold(s))]
    return same[0] if len(same) == 1 else None


def order_views(exchange: Exchange) -> list[tuple[str, dict[str, Any] | None]]:
    """The (order id asked, its status object or None for an error) of a `status` exchange,
    in the order the request named them."""
    data = exchange.json()
    params = exchange.params
    if "order" in params:
        ident = str(params["order"]).strip()
        return [(ident, data if isinstance(data, dict) and "status" in data else None)]
    asked = [i.strip() for i in str(params.get("orders", "")).split(",") if i.strip()]
    answers = data if isinstance(data, dict) else {}
    return [(i, answers[i] if isinstance(answers.get(i), dict) and "status" in answers[i]
             else None) for i in asked]


class FakeOrders:
    """The in-process fake's orders, steered through its control API with its admin token."""

    def __init__(self, app: Any, token: str, key: str) -> None:
        from werkzeug.test import Client

        self.client, self.key = Client(app), key
        self.headers = {"Authorization": f"Bearer {token}"}

    def _control(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        response = self.client.open(f"{CONTROL}{path}", method=method, json=body,
                                    headers=self.headers)
        if response.status_code != 200:
            return None
        return json.loads(response.get_data())

    def status_of(self, order: int) -> str | None:
        found = self._control("GET", f"/orders/{order}")
        return found.get("status") if isinstance(found, dict) else None

    def force(self, order: int, status: str, remains: Any = None) -> bool:
        """Put `order` in `status` (with the live remains when the fake can take them)."""
        changes: dict[str, Any] = {"status": status, "force": True}
        count = parse_int(remains)
        if count is not None and status in ("In progress", "Partial"):
            changes["remains"] = count
        if self._control("POST", f"/orders/{order}/force", changes) is not None:
            return True
        changes.pop("remains", None)  # the live remains do not fit this order: the fake's own
        return self._control("POST", f"/orders/{order}/force", changes) is not None

    def set_balance(self, amount: Decimal) -> None:
        self._control("PATCH", f"/accounts/{self.key}", {"balance": str(amount)})

    def place(self, service: KitService, status: str, remains: Any, n: int) -> int | None:
        """A new order on the fake in `status`, or None if the fake would not take it."""
        quantity = min(max(service.min, 2), service.max)
        answer = self.client.post("/api/v2", data={
            "key": self.key, "action": "add", "service": str(service.service),
            "quantity": str(quantity), "link": f"https://instagram.com/smmkit-diff-mirror-{n}"})
        try:
            placed = json.loads(answer.get_data())
        except ValueError:
            return None
        order = parse_int(placed.get("order")) if isinstance(placed, dict) else None
        if order is None or not self.force(order, status, remains):
            return None
        return order

    def mirror(self, params: Mapping[str, Any], live: Exchange) -> None:
        """Before the fake answers `status` for the orders in `params`, put each in the status
        the live panel reported for its own order at the same step."""
        asked = [i.strip() for i in str(params.get("order", params.get("orders", ""))).split(",")]
        for ident, (_, view) in zip(asked, order_views(live), strict=False):
            order = parse_int(ident)
            status = canonical_status(view.get("status")) if view else None
            if order is None or status not in contract.ORDER_STATUSES:
                continue
            if self.status_of(order) not in (None, status):
                self.force(order, status, view.get("remains") if view else None)
