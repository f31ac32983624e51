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
from smmkit.contract_tests import spending, watch
from smmkit.contract_tests.catalogue import KitService, parse_catalogue, parse_decimal
from smmkit.contract_tests.checks import check_expected_error, classify_error_text, finding
from smmkit.contract_tests.exchange import NO_JSON, Exchange
from smmkit.contract_tests.strategies import InvalidRequest, invalid_requests
from smmkit.contract_tests.targets import TargetError
from smmkit.contract_tests.violation import Violation

SPENDING = frozenset({"add", "refill", "cancel"})


class CheckError(Exception):
    """The check could not run (bad configuration, target unreachable)."""


@dataclass(frozen=True)
class LedgerEntry:
    action: str
    order: str
    service: int | None
    quantity: int | None
    expected_charge: Decimal
    balance_after: Decimal | None
    note: str = ""


@dataclass(frozen=True)
class Expectation:
    """`exchange` must carry catalogue error `code` — at top level, or for `item` (an order or
    refill id) of a multi answer. `check` names the finding when it does not."""

    exchange: Exchange
    code: str
    limit: int | None = None
    item: str | None = None
    name: str = "expected_error"

    def check(self, dialect: str) -> list[Violation]:
        if self.exchange.status == 0:
            return []  # no answer at all: a transport finding already says so
        if self.item is None:
            return check_expected_error(self.exchange, self.code, dialect=dialect,
                                        limit=self.limit, name=self.name)
        value = _item_value(self.exchange, self.item)
        text = value.get("error") if isinstance(value, dict) else None
        if isinstance(text, str) and classify_error_text(text, dialect)[1] == self.code:
            return []
        return [finding(self.name, "probe",
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


class Stop(Exception):
    """The panel cannot be checked (unreachable, not an API, key refused): `headline` says why."""

    def __init__(self, headline: str) -> None:
        super().__init__(headline)
        self.headline = headline


class Session:
    """One conversation with a target; collects exchanges, expectations, findings, the spend
    ledger, what was not run (and why), and the watch timeline of every order."""

    def __init__(self, target: Any, *, seed: int, budget: Decimal, allow_orders: bool,
                 examples: int, max_orders: int,
                 on_step: Callable[[str], None] | None = None,
                 enabled: frozenset[str] | None = None, other: Any = None,
                 clock: Callable[[float], Any] | None = None, watch: float = 60.0,
                 poll: float = 5.0) -> None:
        self.target, self.seed, self.budget = target, seed, budget
        self.allow_orders, self.examples, self.max_orders = allow_orders, examples, max_orders
        self.on_step = on_step or (lambda step: None)
        self.enabled = enabled
        self.other, self.clock, self.watch_for, self.poll = other, clock, watch, poll
        self.rng = random.Random(seed)
        self.exchanges: list[Exchange] = []
        self.expectations: list[Expectation] = []
        self.findings: list[Violation] = []
        self.ledger: list[LedgerEntry] = []
        self.not_run: dict[str, str] = {}  # check -> why it was not run
        self.timeline: dict[str, list[dict[str, Any]]] = {}  # order -> observations
        self.catalogue: list[KitService] = []
        self.orders: list[tuple[str, KitService | None]] = []
        self.refills: list[str] = []
        self.placed: dict[str, tuple[int, Decimal]] = {}  # order -> (quantity, charge) expected
        self.last_status: dict[str, str] = {}
        self.last_value: dict[str, dict[str, Any]] = {}
        self.committed = Decimal(0)  # the most the kit's spending requests can have cost
        self.opening: Decimal | None = None
        self.closing: Decimal | None = None

    def wants(self, check: str) -> bool:
        return self.enabled is None or check in self.enabled

    def skip(self, check: str, why: str) -> None:
        self.not_run.setdefault(check, why)

    # ------------------------------------------------------------------ sending
    def send(self, params: dict[str, str], *, note: str = "", transport: str = "form",
             url: str | None = None, target: Any = None) -> Exchange:
        if params.get("action") in SPENDING and not self.allow_orders:
            raise AssertionError(f"refusing to send {params['action']!r} without allow_orders")
        try:
            exchange = (target or self.target).send(params, transport=transport, note=note,
                                                    url=url)
        except TargetError as exc:  # a target that raises instead of answering status 0
            exchange = Exchange.build(params, status=0, headers={}, body=b"", note=note,
                                      transport=transport, extra={"transport_error": str(exc)})
        self.exchanges.append(exchange)
        self._transport_findings(exchange)
        return exchange

    def _transport_findings(self, exchange: Exchange) -> None:
        what = exchange.note or exchange.action or "request"
        if exchange.status == 0:
            self.findings.append(finding("transport_error", "transport",
                                         f"{what}: {exchange.extra.get('transport_error')}",
                                         exchange))
        if exchange.extra.get("redirect"):
            self.findings.append(finding(
                "redirect", "transport", f"{what}: HTTP {exchange.status} redirect to another "
                f"origin ({exchange.extra['redirect']}), not followed", exchange))
        if exchange.json_problem:
            self.findings.append(finding("number_range", "transport",
                                         f"{what}: {exchange.json_problem}", exchange))

    def expect(self, exchange: Exchange, code: str, limit: int | None = None,
               item: str | None = None, name: str = "expected_error") -> None:
        self.expectations.append(Expectation(exchange, code, limit, item, name))

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
        """Every step in order; raises `Stop` when the panel cannot be checked at all."""
        self.on_step("catalogue")
        services = self.send({"action": "services"}, note="catalogue")
        self.on_step("balance")
        opening = self.send({"action": "balance"}, note="opening balance")
        self.diagnose(services, opening)
        self.catalogue = parse_catalogue(services.json())
        self._note_balance(opening)
        self.on_step("unknown and given ids")
        self.ids(list(order_ids), list(refill_ids))
        self.on_step("bad key and bad action")
        self.bad_requests()
        self.on_step("transports")
        self.transports()
        self.orders += [(ident, None) for ident in order_ids[:20]]
        if self.allow_orders:  # the budget goes to the cheapest orders first: the watch needs them
            self.on_step("orders")
            spending.place_orders(self)
            self.on_step("invalid requests")
            spending.always_on(self)
            self.invalid(spending=True)
            spending.cancel(self)
        else:
            self.on_step("invalid requests")
            self.invalid(spending=False)
        self.on_step("watch")
        watch.watch(self)
        if self.allow_orders:
            self.on_step("refills")
            spending.refills(self)
        self.on_step("other key")
        spending.other_key(self)
        self.on_step("money")
        self.money_bracket()

    def _note_balance(self, exchange: Exchange) -> None:
        data = exchange.json()
        amount = parse_decimal(data.get("balance")) if isinstance(data, dict) else None
        if amount is not None:
            self.opening = self.closing = amount

    def diagnose(self, services: Exchange, balance: Exchange) -> None:
        """One headline instead of a flood when the URL is no API v2 or the key is refused."""
        both = (services, balance)
        if all(ex.status == 0 for ex in both):
            raise Stop(f"could not reach the panel: {services.extra.get('transport_error')}")
        if all(ex.status == 404 for ex in both):
            raise Stop("the URL answers HTTP 404: it is not an API v2 endpoint "
                       "(it usually ends in /api/v2)")
        if all(ex.json() is NO_JSON and ex.status != 0 for ex in both):
            kind = "HTML" if "html" in services.content_type.lower() else "something not JSON"
            raise Stop(f"the URL answers {kind} (HTTP {services.status}), not the JSON of an "
                       "API v2 endpoint: is it the API URL (…/api/v2)?")
        texts = [ex.error_text for ex in both]
        if all(t is not None and classify_error_text(t, "perfectpanel")[1] == "invalid_key"
               for t in texts):
            raise Stop(f"the key is refused: the panel answers {texts[0]!r} to services and "
                       "balance")
        if not any(isinstance(ex.json(), (dict, list)) for ex in both):
            raise Stop("neither services nor balance answered a JSON object or list: this is "
                       "not an API v2 endpoint")

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
        if not self.wants("transport_variants"):
            return
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
            if want is not NO_JSON and variant.status != 0 and not same:
                self.findings.append(finding(
                    "transport_variants", "transport",
                    f"{variant.note} answers {variant.text(160)!r}, POST form answered "
                    f"{base.text(160)!r}", variant))

    def invalid(self, *, spending: bool) -> None:
        """A seeded Hypothesis run of invalid requests; a spending one is reserved at its worst
        case before it is sent, so a panel that accepts it cannot take the run over budget."""
        if not self.examples:
            return
        strategy = invalid_requests(self.catalogue, spending=spending)

        @hypothesis_seed(self.seed)
        @settings(max_examples=self.examples, database=None, phases=[Phase.generate],
                  deadline=None, suppress_health_check=list(HealthCheck))
        @given(strategy)
        def probe(invalid: InvalidRequest) -> None:
            if invalid.spends and not self.reserve(invalid.cost_if_accepted):
                return
            exchange = self.send(dict(invalid.params), note=invalid.name)
            self.expect(exchange, invalid.code, invalid.limit)
            data = exchange.json()
            if invalid.params.get("action") == "add" and isinstance(data, dict) \
                    and "order" in data:
                self.orders.append((str(data["order"]), None))
                self.record("add", str(data["order"]), None, None, invalid.cost_if_accepted,
                            f"invalid request accepted: {invalid.name}")

        probe()

    # ------------------------------------------------------------------ spending
    def spent(self) -> Decimal:
        """The most the run can have cost so far: reservations, or the balance's drop."""
        spent = self.committed
        if self.opening is not None and self.closing is not None:
            spent = max(spent, self.opening - self.closing)
        return spent

    def affordable(self, cost: Decimal) -> bool:
        return self.spent() + cost <= self.budget

    def reserve(self, cost: Decimal) -> bool:
        """Count `cost` (a worst case) against the budget before sending; False if it would
        not fit. Reservations are never given back: a refused request may still have cost."""
        if cost < 0 or not self.affordable(cost):
            return False
        self.committed += cost
        return True

    def record(self, action: str, order: str, service: int | None, quantity: int | None,
               cost: Decimal, note: str = "") -> None:
        self.ledger.append(LedgerEntry(action, order, service, quantity, cost, self.closing,
                                       note))

    def money_bracket(self) -> None:
        """balance, a status of every order, balance: History checks conservation on it."""
        ids = list(dict.fromkeys(order for order, _ in self.orders))
        self.balance("balance (bracket start)")
        for start in range(0, len(ids), 100):
            self.send({"action": "status", "orders": ",".join(ids[start:start + 100])},
                      note="status of every order")
        self.balance("balance (bracket end)")
