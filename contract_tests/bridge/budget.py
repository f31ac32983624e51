"""What an `add` costs before it is sent, and a budget no run of the proxy can pass.

The price comes from the upstream's own `services` (fetched with the client's key, kept per
account) and the kit's reading of docs/PROTOCOL.md §2–3 (`KitService.charge_of`: rate × quantity /
1000 half-up to 5 places, drip-feed runs included, a package priced at its rate, comment lists
counted by their lines). An `add` the proxy cannot price is refused: forwarding it could spend
money the budget never saw.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from smmkit.contract_tests.catalogue import KitService, by_id, parse_catalogue


class Refusal(Exception):
    """An `add` the proxy will not forward; the message is the text sent to the client."""


class Budget:
    """Reserve an add's price before forwarding, keep it when the order may exist, release it
    when the panel refused. `spent + reserved` never passes `limit`, whatever the threads do."""

    def __init__(self, limit: Decimal) -> None:
        if not isinstance(limit, Decimal) or not limit.is_finite() or limit < 0:
            raise ValueError(f"budget must be a non-negative Decimal, got {limit!r}")
        self.limit = limit
        self.spent = Decimal(0)
        self._reserved = Decimal(0)
        self._lock = threading.Lock()

    def reserve(self, price: Decimal) -> None:
        with self._lock:
            if self.spent + self._reserved + price > self.limit:
                raise Refusal(f"smmkit proxy: this add costs {price} and would pass the budget "
                              f"(spent {self.spent} of {self.limit})")
            self._reserved += price

    def settle(self, price: Decimal, *, spent: bool) -> None:
        """The reservation ends: counted as spent (order created, or perhaps created: no
        answer came) or given back (the panel answered with an error)."""
        with self._lock:
            self._reserved -= price
            if spent:
                self.spent += price

    @property
    def left(self) -> Decimal:
        with self._lock:
            return self.limit - self.spent - self._reserved


class PriceList:
    """The upstream's services per account, fetched on first need and once more when an
    `add` names a service not seen yet (the catalogue may have grown)."""

    def __init__(self, fetch: Callable[[str], Any]) -> None:
        self._fetch = fetch  # key -> parsed `services` answer
        self._by_account: dict[str, dict[int, KitService]] = {}
        self._lock = threading.Lock()

    def price(self, key: str, account: str, params: Mapping[str, str]) -> Decimal:
        try:
            sid = int(str(params.get("service", "")).strip())
        except ValueError:
            raise Refusal("smmkit proxy: cannot price an add without a numeric service id") \
                from None
        service = self._service(key, account, sid)
        if service is None:
            raise Refusal(f"smmkit proxy: service {sid} is not in the panel's services, "
                          f"so this add cannot be priced")
        price = service.charge_of(params)
        if price is None:
            raise Refusal(f"smmkit proxy: cannot price this add on service {sid} "
                          f"({service.type}): its quantity is missing or not an integer")
        return price

    def _service(self, key: str, account: str, sid: int) -> KitService | None:
        with self._lock:
            known = self._by_account.get(account)
            if known is None or sid not in known:
                known = by_id(parse_catalogue(self._fetch(key)))
                self._by_account[account] = known
            return known.get(sid)
