"""A Hypothesis `RuleBasedStateMachine` that drives a panel and checks it after every step.

The target is anything with ``send(params) -> Exchange`` (see `targets`); when it also has
``advance(seconds)`` (the fake with a manual clock) the machine moves time too, so orders finish,
get refunded and become refillable. Every exchange goes through the per-exchange checks and one
`History`, so charges, remains, final statuses, another key's ids and money conservation are
checked across the whole run. Spending: this machine places real orders. Against a live panel
give it an `Allowance` (every add reserved at its worst case before it is sent, skipped when it
does not fit), a `Patience` (a wait rule polls instead of moving a clock) and a `sink` (findings
are collected, not raised: a replay of a failing program would spend again).

    from smmkit.contract_tests.stateful import run_stateful
    run_stateful(target, max_examples=5, stateful_step_count=20)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
from smmkit.contract_tests.catalogue import by_id, parse_catalogue, parse_int
from smmkit.contract_tests.checks import exchange_checks
from smmkit.contract_tests.exchange import Exchange, fingerprint
from smmkit.contract_tests.history import History
from smmkit.contract_tests.strategies import UNKNOWN_IDS, add_requests
from smmkit.contract_tests.violation import ContractViolation, Violation, failing


class Allowance:
    """The money a live run may still commit, by the rule of `probes.Session.reserve`: a
    request's worst case is counted before it is sent and never given back (a refused add may
    still have cost)."""

    def __init__(self, budget: Decimal) -> None:
        self.budget, self.committed, self.refused = budget, Decimal(0), 0

    def reserve(self, cost: Decimal | None) -> bool:
        if cost is None or cost < 0 or self.committed + cost > self.budget:
            self.refused += 1
            return False
        self.committed += cost
        return True


class Patience:
    """Seconds a live run may spend waiting for orders to move (`--watch`), `poll` at a time."""

    def __init__(self, seconds: float, poll: float,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        self.left, self.poll, self.sleep = seconds, poll, sleep

    def wait(self) -> None:
        pause = min(self.poll, self.left)
        self.left -= pause
        self.sleep(pause)


class PanelMachine(RuleBasedStateMachine):
    """Configure through `machine_for`; the class attributes below are its knobs."""

    target: ClassVar[Any] = None
    other: ClassVar[Any] = None  # a second key's target, for the invisibility check
    dialect: ClassVar[str] = "perfectpanel"
    quantity_cap: ClassVar[int | None] = 2000
    strict: ClassVar[bool] = False
    allowance: ClassVar[Allowance | None] = None  # live: adds within the budget only
    patience: ClassVar[Patience | None] = None  # live: wait for orders instead of a clock
    sink: ClassVar[list[Violation] | None] = None  # live: collect findings, never replay
    # live: the whole session so far (the checks before, earlier examples), grown by every
    # exchange sent; each example's History replays it, as the account is never reset
    earlier: ClassVar[list[Exchange] | None] = None

    orders = Bundle("orders")
    refills = Bundle("refills")

    def __init__(self) -> None:
        super().__init__()
        self.history = History(dialect=self.dialect)
        self.pending: list[Violation] = []
        self.catalogue: list[Any] = []
        self.mine: list[str] = []

    # ------------------------------------------------------------------ plumbing
    def send(self, params: dict[str, str], target: Any = None) -> Exchange:
        exchange = (target or self.target).send(params)
        if self.earlier is not None:
            self.earlier.append(exchange)
        self.pending += exchange_checks(exchange, dialect=self.dialect)
        self.pending += self.history.observe(exchange)
        return exchange

    @initialize()
    def start(self) -> None:
        reset = getattr(self.target, "reset", None)
        if callable(reset):
            reset()
        for exchange in list(self.earlier or ()):  # orders placed before, and their money
            self.history.observe(exchange)
        self.mine = self.history.orders_of(fingerprint(getattr(self.target, "key", None)))
        self.catalogue = parse_catalogue(self.send({"action": "services"}).json())
        self.send({"action": "balance"})

    # ------------------------------------------------------------------ rules
    @rule(target=orders, data=st.data())
    def add(self, data: st.DataObject) -> Any:
        params = data.draw(add_requests(self.catalogue, quantity_cap=self.quantity_cap))
        if self.allowance is not None and not self.allowance.reserve(self.worst_case(params)):
            return multiple()
        answer = self.send(params).json()
        if isinstance(answer, dict) and "order" in answer and "error" not in answer:
            self.mine.append(str(answer["order"]))
            return str(answer["order"])
        return multiple()

    def worst_case(self, params: dict[str, str]) -> Decimal | None:
        """What the drawn add costs by the catalogue (None: not derivable, so not sent)."""
        service = by_id(self.catalogue).get(parse_int(params.get("service")) or 0)
        return None if service is None else service.charge_of(params)

    @rule(order=orders)
    def status(self, order: str) -> None:
        self.send({"action": "status", "order": order})

    @rule(picked=st.lists(orders, min_size=1, max_size=5), unknown=UNKNOWN_IDS)
    def multi_status(self, picked: list[str], unknown: int) -> None:
        self.send({"action": "status", "orders": ",".join([*dict.fromkeys(picked), str(unknown)])})

    @rule(target=refills, order=orders)
    def refill(self, order: str) -> Any:
        answer = self.send({"action": "refill", "order": order}).json()
        if isinstance(answer, dict) and isinstance(answer.get("refill"), (str, int)):
            return str(answer["refill"])
        return multiple()

    @rule(refill=refills)
    def refill_status(self, refill: str) -> None:
        self.send({"action": "refill_status", "refill": refill})

    @rule(picked=st.lists(refills, min_size=1, max_size=3))
    def multi_refill_status(self, picked: list[str]) -> None:
        self.send({"action": "refill_status", "refills": ",".join(dict.fromkeys(picked))})

    @rule(order=orders)
    def cancel(self, order: str) -> None:
        self.send({"action": "cancel", "orders": order})

    @rule()
    def balance(self) -> None:
        self.send({"action": "balance"})

    @precondition(lambda self: callable(getattr(self.target, "advance", None))
                  and getattr(self.target, "can_advance", True))
    @rule(seconds=st.sampled_from([5, 30, 120, 600, 3600, 86_400]))
    def advance(self, seconds: int) -> None:
        self.target.advance(seconds)

    @precondition(lambda self: self.patience is not None and self.patience.left > 0
                  and bool(self.mine))
    @rule()
    def wait(self) -> None:
        """No clock to move: wait a poll and look at every order again."""
        assert self.patience is not None
        self.patience.wait()
        for start in range(0, len(self.mine), 100):
            self.send({"action": "status", "orders": ",".join(self.mine[start:start + 100])})

    @precondition(lambda self: self.other is not None)
    @rule(order=orders)
    def foreign_status(self, order: str) -> None:
        self.send({"action": "status", "order": order}, target=self.other)

    @rule()
    def money(self) -> None:
        """The conservation bracket: balance, every order's status, balance."""
        self.send({"action": "balance"})
        for start in range(0, len(self.mine), 100):
            self.send({"action": "status", "orders": ",".join(self.mine[start:start + 100])})
        self.send({"action": "balance"})

    # ------------------------------------------------------------------ the invariant
    @invariant()
    def conforms(self) -> None:
        found, self.pending = failing(self.pending, strict=self.strict), []
        if found and self.sink is not None:
            self.sink.extend(found)
        elif found:
            raise ContractViolation(found)

    def teardown(self) -> None:
        if self.mine:
            self.money()
            self.conforms()


def machine_for(target: Any, *, other: Any = None, dialect: str = "perfectpanel",
                quantity_cap: int | None = 2000, strict: bool = False,
                **live: Any) -> type[PanelMachine]:
    """A PanelMachine subclass bound to `target` (and a second key's `other` target); `live`
    sets the live knobs (allowance, patience, sink, earlier)."""
    unknown = set(live) - {"allowance", "patience", "sink", "earlier"}
    if unknown:
        raise TypeError(f"unknown machine knob(s) {sorted(unknown)}")
    return type("PanelMachineFor", (PanelMachine,), {
        "target": target, "other": other, "dialect": dialect, "quantity_cap": quantity_cap,
        "strict": strict, **live,
    })


def run_stateful(target: Any, *, other: Any = None, dialect: str = "perfectpanel",
                 max_examples: int = 10, stateful_step_count: int = 20,
                 seed: int | None = None, quantity_cap: int | None = 2000,
                 strict: bool = False, shrink: bool = False, **live: Any) -> None:
    """Run the machine against `target`; raises `ContractViolation` when the panel breaks the
    contract. `seed` reproduces a run. Shrinking is off by default: every shrink attempt replays
    a program over HTTP, which can take minutes; `shrink=True` gives the minimal program."""
    machine = machine_for(target, other=other, dialect=dialect, quantity_cap=quantity_cap,
                          strict=strict, **live)
    test = get_state_machine_test(machine, settings=settings(
        max_examples=max_examples, stateful_step_count=stateful_step_count, deadline=None,
        database=None, suppress_health_check=list(HealthCheck),
        phases=list(Phase) if shrink else [Phase.explicit, Phase.reuse, Phase.generate]))
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    test()
