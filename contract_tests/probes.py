"""The talking half of `run_check`: which requests the kit sends, in which order, and what each
probe expects. Judging happens later (runner.judge), so one recording can be judged under every
dialect. The budget guard lives here: nothing that could spend is sent unless the worst it could
cost still fits in the budget.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from smmkit.contract_tests.catalogue import (
    QUANTITY_RULES,
    KitService,
    parse_catalogue,
    parse_decimal,
)
from smmkit.contract_tests.checks import check_expected_error, classify_error_text, finding
from smmkit.contract_tests.exchange import NO_JSON, Exchange
from smmkit.contract_tests.strategies import InvalidRequest, _add_for, invalid_requests
from smmkit.contract_tests.targets import TargetError
from smmkit.contract_tests.violation import Violation

SPENDING = frozenset({"add", "refill", "cancel"})
ORDERABLE = frozenset({"param", "lines:comments", "lines:usernames", "package"})


class CheckError(Exception):
    """The check could not run (bad configuration, target unreachable)."""


@dataclass(frozen=True)
class Expectation:
    """`exchange` must carry catalogue error `code` — at top level, or for `item` (an order or
    refill id) of a multi answer."""

    exchange: Exchange
    code: str
    limit: int | None = None
    item: str | None = None

    def check(self, dialect: str) -> list[Violation]:
        if self.item is None:
            return check_expected_error(self.exchange, self.code, dialect=dialect,
                                        limit=self.limit)
        value = _item_value(self.exchange, self.item)
        text = value.get("error") if isinstance(value, dict) else None
        if isinstance(text, str) and classify_error_text(text, dialect)[1] == self.code:
            return []
        return [finding("expected_error", "probe",
                        f"{self.exchange.note or 'probe'}: id {self.item} should answer error "
                        f"{self.code!r}, got {value!r}", self.exchange)]


def _item_value(exchange: Exchange, item: str) -> Any:
    data = exchange.json()
    if isinstance(data, dict):
        return data.get(item)
    if isinstance(data, list):
        field = {"refill_status": "status"}.get(exchange.action, exchange.action)
        key = "refill" if exchange.action == "refill_status" else "order"
        for entry in data:
            if isinstance(entry, dict) and str(entry.get(key)) == item:
                return entry.get(field)
    return None


def draw_once(strategy: st.SearchStrategy[Any], seed: int) -> Any:
    """One example of `strategy`, reproducible from `seed`."""
    box: list[Any] = []

    @hypothesis_seed(seed)
    @settings(max_examples=1, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def grab(value: Any) -> None:
        box.append(value)

    grab()
    return box[0]


class Session:
    """One conversation with a target; collects exchanges, expectations and the spend ledger."""

    def __init__(self, target: Any, *, seed: int, budget: Decimal, allow_orders: bool,
                 examples: int, max_orders: int,
                 on_step: Callable[[str], None] | None = None) -> None:
        self.target, self.seed, self.budget = target, seed, budget
        self.allow_orders, self.examples, self.max_orders = allow_orders, examples, max_orders
        self.on_step = on_step or (lambda step: None)
        self.rng = random.Random(seed)
        self.exchanges: list[Exchange] = []
        self.expectations: list[Expectation] = []
        self.findings: list[Violation] = []
        self.ledger: list[Any] = []
        self.catalogue: list[KitService] = []
        self.orders: list[tuple[str, KitService]] = []
        self.committed = Decimal(0)  # the most the kit's accepted adds can have cost
        self.opening: Decimal | None = None
        self.closing: Decimal | None = None

    # ------------------------------------------------------------------ sending
    def send(self, params: dict[str, str], *, note: str = "", transport: str = "form",
             url: str | None = None) -> Exchange:
        if params.get("action") in SPENDING and not self.allow_orders:
            raise AssertionError(f"refusing to send {params['action']!r} without allow_orders")
        try:
            exchange = self.target.send(params, transport=transport, note=note, url=url)
        except TargetError as exc:
            raise CheckError(str(exc)) from exc
        self.exchanges.append(exchange)
        return exchange

    def expect(self, exchange: Exchange, code: str, limit: int | None = None,
               item: str | None = None) -> None:
        self.expectations.append(Expectation(exchange, code, limit, item))

    def unknown_id(self) -> str:
        return str(self.rng.randrange(900_000_000, 2_000_000_000))

    def balance(self, note: str = "balance") -> Decimal | None:
        data = self.send({"action": "balance"}, note=note).json()
        amount = parse_decimal(data.get("balance")) if isinstance(data, dict) else None
        if amount is not None:
            self.closing = amount
            if self.opening is None:
                self.opening = amount
        return amount

    # ------------------------------------------------------------------ the run
    def run(self, order_ids: Sequence[str] = (), refill_ids: Sequence[str] = ()) -> None:
        self.on_step("catalogue")
        self.catalogue = parse_catalogue(self.send({"action": "services"}, note="catalogue").json())
        self.on_step("balance")
        self.balance("opening balance")
        self.on_step("unknown and given ids")
        self.ids(list(order_ids), list(refill_ids))
        self.on_step("bad key and bad action")
        self.bad_requests()
        self.on_step("transports")
        self.transports()
        self.on_step("invalid requests")
        self.invalid(spending=self.allow_orders)
        if self.allow_orders:
            self.on_step("orders")
            self.place_orders()
            self.on_step("cancel and refill")
            self.cancel_and_refill()
        self.on_step("money")
        self.money_bracket()

    def ids(self, order_ids: list[str], refill_ids: list[str]) -> None:
        unknown = self.unknown_id()
        self.expect(self.send({"action": "status", "order": unknown}, note="unknown order"),
                    "incorrect_order")
        unknowns = [self.unknown_id(), self.unknown_id()]
        multi = self.send({"action": "status", "orders": ",".join(unknowns + order_ids[:98])},
                          note="multi status with unknown ids")
        for ident in unknowns:
            self.expect(multi, "incorrect_order", item=ident)
        for ident in order_ids[:10]:
            self.send({"action": "status", "order": ident}, note="given order")
        self.expect(self.send({"action": "refill_status", "refill": self.unknown_id()},
                              note="unknown refill"), "refill_not_found")
        unknowns = [self.unknown_id(), self.unknown_id()]
        multi = self.send({"action": "refill_status", "refills": ",".join(unknowns
                                                                           + refill_ids[:98])},
                          note="multi refill_status with unknown ids")
        for ident in unknowns:
            self.expect(multi, "refill_not_found", item=ident)
        for ident in refill_ids[:10]:
            self.send({"action": "refill_status", "refill": ident}, note="given refill")

    def bad_requests(self) -> None:
        probes = [({"key": "smmkit-invalid-key-probe", "action": "services"}, "bad key",
                   "invalid_key"),
                  ({"key": "", "action": "balance"}, "missing key", "invalid_key"),
                  ({"action": "smmkit_no_such_action"}, "bad action", "incorrect_request"),
                  ({}, "missing action", "incorrect_request")]
        for params, note, code in probes:
            self.expect(self.send(dict(params), note=note), code)

    def transports(self) -> None:
        base = self.send({"action": "balance"}, note="POST form")
        base_url = str(getattr(self.target, "url", None) or getattr(self.target, "path", "/api/v2"))
        # The other spelling of the endpoint: with the trailing slash, or without it.
        slash = base_url + "/" if not base_url.endswith("/") else base_url.rstrip("/")
        variants = [self.send({"action": "balance"}, transport="json", note="POST JSON"),
                    self.send({"action": "balance"}, transport="query", note="GET query"),
                    self.send({"action": "balance"}, url=slash, note="trailing slash")]
        want = base.json()
        for variant in variants:
            got = variant.json()
            same = (isinstance(got, dict) and isinstance(want, dict) and set(got) == set(want)
                    and got.get("currency") == want.get("currency"))
            if want is not NO_JSON and not same:
                self.findings.append(finding(
                    "transport_variants", "transport",
                    f"{variant.note} answers {variant.text(160)!r}, POST form answered "
                    f"{base.text(160)!r}", variant))

    def invalid(self, *, spending: bool) -> None:
        strategy = invalid_requests(self.catalogue, spending=spending)

        @hypothesis_seed(self.seed)
        @settings(max_examples=self.examples, database=None, phases=[Phase.generate],
                  deadline=None, suppress_health_check=list(HealthCheck))
        @given(strategy)
        def probe(invalid: InvalidRequest) -> None:
            if invalid.spends and not self.affordable(invalid.cost_if_accepted):
                return
            exchange = self.send(dict(invalid.params), note=invalid.name)
            self.expect(exchange, invalid.code, invalid.limit)
            data = exchange.json()
            if invalid.params.get("action") == "add" and isinstance(data, dict) \
                    and "order" in data:
                self.committed += invalid.cost_if_accepted
                self.record("add", str(data["order"]), None, None, invalid.cost_if_accepted,
                            f"invalid request accepted: {invalid.name}")

        probe()

    # ------------------------------------------------------------------ spending
    def affordable(self, cost: Decimal) -> bool:
        spent = self.committed
        if self.opening is not None and self.closing is not None:
            spent = max(spent, self.opening - self.closing)
        return spent + cost <= self.budget

    def record(self, action: str, order: str, service: int | None, quantity: int | None,
               cost: Decimal, note: str = "") -> None:
        from smmkit.contract_tests.runner import LedgerEntry

        self.ledger.append(LedgerEntry(action, order, service, quantity, cost, self.closing,
                                       note))

    def place_orders(self) -> None:
        candidates = sorted((s for s in self.catalogue if QUANTITY_RULES.get(s.type) in ORDERABLE
                             and s.min <= s.max), key=lambda s: (s.cheapest_charge(), s.service))
        for number, service in enumerate(candidates[: self.max_orders]):
            params = draw_once(_add_for(service, max(service.min, 1)), self.seed + number)
            if "quantity" in params:
                params["quantity"] = str(max(service.min, 1))
            if "link" in params:
                params["link"] += f"-{self.seed}-{number}"
            cost = service.charge_of(params)
            if cost is None:
                continue
            self.balance("balance before add")
            if not self.affordable(cost):
                self.record("add", "", service.service, service.quantity_of(params), cost,
                            "skipped: over budget")
                break
            data = self.send(params, note=f"cheapest add #{number + 1}").json()
            if not (isinstance(data, dict) and "order" in data and "error" not in data):
                continue
            self.committed += cost
            self.orders.append((str(data["order"]), service))
            self.balance("balance after add")
            self.record("add", str(data["order"]), service.service,
                        service.quantity_of(params), cost)
            if self.opening is not None and self.closing is not None \
                    and self.opening - self.closing > self.budget:
                self.findings.append(finding(
                    "budget", "money", f"the panel took {self.opening - self.closing}, more "
                    f"than the budget {self.budget} the kit's orders should cost", None))
                break
        for order, _ in self.orders:
            self.send({"action": "status", "order": order}, note="status of the kit's order")

    def cancel_and_refill(self) -> None:
        for order, service in self.orders:
            exchange = self.send({"action": "cancel", "orders": order}, note="cancel")
            if not service.cancel:
                self.expect(exchange, "cancel_unavailable", item=order)
        for order, service in self.orders:
            if service.refill:
                self.send({"action": "refill", "order": order}, note="refill")
                break

    def money_bracket(self) -> None:
        """balance, a status of every order, balance: History checks conservation on it."""
        ids = [order for order, _ in self.orders] + [
            e.order for e in self.ledger if e.order and e.service is None]
        self.balance("balance (bracket start)")
        for start in range(0, len(ids), 100):
            self.send({"action": "status", "orders": ",".join(ids[start:start + 100])},
                      note="status of every order")
        self.balance("balance (bracket end)")
