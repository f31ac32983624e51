"""Issue 11 item 10: a cancel the fake acknowledges is honoured. Once `cancel` answered
`{"cancel": 1}` the order ends Canceled (nothing delivered when the cancel takes effect, the
whole charge back) or Partial (the undelivered part back) — never Completed. Only an order
already final when the cancel arrives is refused.

On main, an order finishing within the cancel delay ended Completed (at --speed 3600 almost
always); the properties below find that at once."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from smmkit.mock_server.core import lifecycle as lc
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.catalog import load_catalog
from smmkit.mock_server.core.clock import real_clock
from smmkit.mock_server.core.errors import PanelError
from smmkit.mock_server.core.money import refund_for
from smmkit.mock_server.core.panel import AccountSpec, Panel
from smmkit.mock_server.storage import engines

KEY = "cancel-key"
CANCELABLE = [s for s in load_catalog() if s.cancel]


@st.composite
def plans(draw: st.DrawFn) -> lc.Plan:
    total_runs = draw(st.integers(1, 4))
    per_run = draw(st.integers(1, 20_000))
    return lc.plan_order(
        seed=draw(st.integers(0, 50)), order_id=draw(st.integers(23501, 99999)),
        total=per_run * total_runs, per_run=per_run, runs=total_runs,
        interval_minutes=draw(st.integers(1, 90)), created_at=1_767_225_600.0,
        start_delay=draw(st.integers(0, 3600)), units_per_minute=draw(st.integers(1, 200_000)),
        outcome=draw(st.sampled_from(lc.OUTCOMES)))


@settings(max_examples=300, deadline=None)
@given(plan=plans(), when=st.floats(0, 1, exclude_max=True))
def test_an_accepted_cancel_never_ends_completed(plan: lc.Plan, when: float) -> None:
    now = plan.created_at + when * (plan.final_at - plan.created_at)
    assume(now < plan.final_at)
    effect = lc.cancel_effect_at(plan, now)
    shown = lc.view_at(plan, now)
    if effect is None:  # refused only when every unit is already there
        assert shown.remains <= 0
        return
    canceled = replace(plan, cancel_at=effect)
    final = lc.final_state(canceled)
    assert final.status in (lc.CANCELED, lc.PARTIAL)
    assert effect >= now and canceled.final_at >= now
    if final.status == lc.PARTIAL:
        assert 0 < final.remains < plan.total
    else:
        assert final.remains == plan.total
    # What status showed at the cancel is never taken back: remains only shrink until the end.
    assert final.remains <= shown.remains
    previous = shown.remains
    for step in range(1, 9):
        t = now + (canceled.final_at - now) * step / 8
        view = lc.view_at(canceled, t)
        assert view.remains <= previous
        previous = view.remains


class Wall:
    """A wall clock the test moves: the panel runs a real clock at `speed` over it."""

    def __init__(self) -> None:
        self.t = 1_767_225_600.0

    def __call__(self) -> float:
        return self.t


@settings(max_examples=60, deadline=None)
@given(service=st.sampled_from(CANCELABLE), quantity=st.integers(1, 6000),
       speed=st.sampled_from([1.0, 60.0, 3600.0, 86_400.0]),
       when=st.floats(0, 1.2), late=st.floats(0, 20), seed=st.integers(0, 10**6))
def test_acknowledged_cancels_end_canceled_or_partial_at_every_speed(
        service, quantity: int, speed: float, when: float, late: float, seed: int) -> None:
    wall = Wall()
    store = engines.open_store(":memory:")  # the engine under test (tests/engines.py)
    panel = Panel(store, seed=seed, accounts=[AccountSpec(KEY, Decimal("100000"))],
                  catalog=load_catalog(), clock=real_clock(speed, wall=wall), wall=wall)
    try:
        quantity = max(service.min, min(quantity, service.max))
        try:
            order = panel.add_order(KEY, {"service": str(service.service),
                                          "link": "https://a.com/c", "quantity": str(quantity)})
        except PanelError:
            assume(False)  # a type that needs more parameters (comments, usernames, ...)
        placed = steering.get_order(panel, order)
        wall.t += when * (placed["final_at"] - placed["created_at"]) / speed  # wall seconds
        before = panel.order_status(KEY, order)
        answer = panel.cancel(KEY, [order])[order]
        wall.t += (late * lc.CANCEL_DELAY + 86_400) / speed  # long after it took effect
        after = panel.order_status(KEY, order)
        if answer is not None:  # refused: only an order final (or fully delivered) by then
            assert answer.text() == "Cancel is not available for this order"
            assert before.status in lc.FINAL or before.remains <= 0, before
            return
        assert after.status in (lc.CANCELED, lc.PARTIAL), (before, after)
        charge = Decimal(placed["charged"])
        assert after.charge == charge - refund_for(charge, after.remains, quantity)
        assert after.remains <= before.remains
        terms = panel.audit(KEY)
        assert terms["balance"] + terms["charges"] == terms["opening"] + terms["topups"]
    finally:
        store.close()
