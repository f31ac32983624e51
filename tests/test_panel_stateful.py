"""A model-based test of the core: random adds, cancels, refills, clock moves and polls, with
the money law and the lifecycle rules checked after every step (docs/PROTOCOL.md §5, §6)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)
from smmkit.mock_server.core import lifecycle as lc
from smmkit.mock_server.core.errors import PanelError
from support import KEYS, manual_panel

# Services with different knobs: refill+cancel (1), neither (2), cancel only (3), refill only
# (18), package (15), custom comments (5), drip-feed capable (16), subscriptions (14).
SERVICES = [1, 2, 3, 18, 15, 5, 16, 14]
LINKS = [f"https://instagram.com/p/{i}" for i in range(4)]


class PanelMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    @initialize()
    def start(self) -> None:
        self.panel = manual_panel(seed=3)
        self.known: dict[int, tuple[str, int]] = {}  # order id -> (key, total)
        self.last: dict[int, tuple[str, int]] = {}  # order id -> last (status, remains)

    def teardown(self) -> None:
        if hasattr(self, "panel"):
            self.panel.store.close()

    @rule(target=orders, key=st.sampled_from(sorted(KEYS)), service=st.sampled_from(SERVICES),
          link=st.sampled_from(LINKS),
          quantity=st.one_of(st.integers(-5, 60_000), st.sampled_from(["", "x", "1.5", "100"])),
          runs=st.sampled_from([None, None, "2", "3", "0"]))
    def add(self, key: str, service: int, link: str, quantity: int | str,
            runs: str | None) -> object:
        params = {"service": str(service), "link": link, "quantity": str(quantity),
                  "comments": "\n".join(f"c{i}" for i in range(int(link[-1]) * 3 + 2)),
                  "username": "alice", "min": "100", "max": str(quantity), "delay": "0"}
        if runs is not None:
            params.update(runs=runs, interval="5")
        before = self.panel.balance(key)[0]
        try:
            order = self.panel.add_order(key, params)
        except PanelError:
            assert self.panel.balance(key)[0] == before  # a refused add costs nothing
            return multiple()
        view = self.panel.order_status(key, order)
        assert view.status == lc.PENDING
        assert self.panel.balance(key)[0] == before - view.charge
        assert order not in self.known
        self.known[order] = (key, view.remains)
        self.last[order] = (view.status, view.remains)
        return order

    @rule(order=orders, own=st.booleans())
    def cancel(self, order: int, own: bool) -> None:
        key, _ = self.known[order]
        other = next(k for k in KEYS if k != key)
        result = self.panel.cancel(key if own else other, [order])[order]
        if not own:
            assert isinstance(result, PanelError) and result.text() == "Incorrect order ID"
        elif result is not None:
            assert result.text() == "Cancel is not available for this order"

    @rule(order=orders)
    def refill(self, order: int) -> None:
        key, _ = self.known[order]
        status = self.panel.order_status(key, order).status
        result = self.panel.refill(key, [order])[order]
        if isinstance(result, PanelError):
            assert result.text() in ("Refill is disabled for this service",
                                     "Refill is not available for this order")
        else:
            assert status in (lc.COMPLETED, lc.PARTIAL)
            assert self.panel.refill_statuses(key, [result])[result] == lc.REFILL_PENDING

    @rule(seconds=st.sampled_from([1, 5, 10, 15, 30, 60, 120, 600, 3600, 86_400]))
    def advance_clock(self, seconds: int) -> None:
        self.panel.advance(seconds)

    @rule(order=consumes(orders))
    def forget(self, order: int) -> None:
        """Stop polling one order (keeps the bundle small); it still counts for money."""

    @rule()
    def status(self) -> None:
        for key in KEYS:
            mine = [o for o, (k, _) in self.known.items() if k == key]
            if not mine:
                continue
            for order, view in self.panel.order_statuses(key, mine).items():
                assert not isinstance(view, PanelError)
                self.check_view(order, view.status, view.remains, view.charge)

    def check_view(self, order: int, status: str, remains: int, charge: Decimal) -> None:
        _, total = self.known[order]
        before_status, before_remains = self.last[order]
        assert lc.reachable(before_status, status), (order, before_status, status)
        assert remains <= before_remains
        if status in (lc.PENDING, lc.PROCESSING, lc.CANCELED):
            assert remains == total, (order, status, remains, total)
        if status == lc.COMPLETED:
            assert remains <= 0
        if status == lc.PARTIAL:
            assert 0 < remains < total
        if status == lc.IN_PROGRESS:
            assert 0 <= remains <= total
        if status == lc.CANCELED:
            assert charge == 0
        assert charge >= 0
        self.last[order] = (status, remains)

    @invariant()
    def money_is_conserved(self) -> None:
        if not hasattr(self, "panel"):
            return
        for key in KEYS:
            audit = self.panel.audit(key)
            assert audit["balance"] + audit["charges"] == audit["opening"] + audit["topups"]
            assert audit["balance"] >= 0
            reported = sum((self.panel.order_status(key, o).charge
                            for o, (k, _) in self.known.items() if k == key), Decimal(0))
            assert reported == audit["charges"]


TestPanelMachine = PanelMachine.TestCase
TestPanelMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
