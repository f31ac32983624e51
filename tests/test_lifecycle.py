"""lifecycle.py: order and refill histories as functions of time (docs/PROTOCOL.md §5)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smmkit.mock_server.core import lifecycle as lc
from smmkit.schemas import contract

T0 = 1_767_225_600.0


@st.composite
def plans(draw: st.DrawFn) -> lc.Plan:
    runs = draw(st.sampled_from([1, 1, 1, 2, 3, 7]))
    per_run = draw(st.integers(1, 5000))
    plan = lc.plan_order(
        seed=draw(st.integers(0, 2**32)), order_id=draw(st.integers(1, 10**9)),
        total=per_run * runs, per_run=per_run, runs=runs,
        interval_minutes=draw(st.integers(1, 120)) if runs > 1 else 0,
        created_at=T0 + draw(st.integers(0, 10**6)), start_delay=draw(st.integers(0, 300)),
        units_per_minute=draw(st.integers(1, 10_000)),
        outcome=draw(st.sampled_from([None, *lc.OUTCOMES])),
    )
    if draw(st.booleans()):  # a cancel accepted some time after creation (as the panel does)
        accepted = plan.created_at + draw(st.floats(0, 4000, allow_nan=False))
        plan = replace(plan, cancel_at=accepted + lc.CANCEL_DELAY)
    return plan


def sample_times(draw: st.DrawFn, plan: lc.Plan) -> list[float]:
    span = max(plan.final_at - plan.created_at, 1.0) * 1.5
    offsets = draw(st.lists(st.floats(0, span, allow_nan=False), min_size=1, max_size=40))
    interesting = [plan.start_at, plan.final_at, plan.natural_end, plan.final_at - 1e-6,
                   plan.start_at - 1e-6, plan.created_at]
    return sorted({plan.created_at + o for o in offsets} | {t for t in interesting
                                                            if t >= plan.created_at})


@given(st.data())
def test_statuses_follow_transitions_and_remains_never_grow(data: st.DataObject) -> None:
    plan = data.draw(plans())
    times = sample_times(data.draw, plan)
    previous = None
    for t in times:
        view = lc.view_at(plan, t)
        assert view.status in lc.ORDER_STATUSES
        if t < plan.start_at and t < plan.final_at:
            assert view.remains == plan.total
            assert view.status in (lc.PENDING, lc.PROCESSING)
            assert view.start_count == 0
        if view.status == lc.COMPLETED:
            assert view.remains <= 0
        else:
            assert 0 <= view.remains <= plan.total
        if view.status in (lc.PENDING, lc.PROCESSING, lc.CANCELED):
            assert view.remains == plan.total
        if view.status == lc.PARTIAL:
            assert 0 < view.remains < plan.total
        if previous is not None:
            assert lc.reachable(previous.status, view.status), (previous, view, t)
            assert view.remains <= previous.remains, (previous, view, t)
        previous = view
    assert lc.view_at(plan, plan.final_at) == lc.final_state(plan)
    assert lc.view_at(plan, plan.final_at + 10**7) == lc.final_state(plan)


@given(plans())
def test_final_state_matches_outcome(plan: lc.Plan) -> None:
    final = lc.final_state(plan)
    assert final.status in lc.FINAL
    canceled_early = plan.cancel_at is not None and plan.cancel_at < plan.natural_end
    if canceled_early:
        assert final.status in (lc.CANCELED, lc.PARTIAL)
        assert final.remains == plan.total - plan.delivered(plan.cancel_at)
    elif plan.outcome == "normal":
        assert (final.status, final.remains) == (lc.COMPLETED, 0)
    elif plan.outcome == "over":
        assert final.status == lc.COMPLETED and final.remains < 0
    elif plan.outcome == "partial":
        assert final.status == lc.PARTIAL and 0 < final.remains < plan.total
    else:
        assert (final.status, final.remains, final.start_count) == (lc.CANCELED, plan.total, 0)
    if final.status == lc.CANCELED:
        assert final.remains == plan.total
    if final.status == lc.PARTIAL:
        assert 0 < final.remains < plan.total
    if final.status in (lc.COMPLETED, lc.PARTIAL):
        assert final.start_count == plan.start_count


@given(seed=st.integers(0, 2**40), order_id=st.integers(1, 2**40), total=st.integers(1, 10**6))
def test_same_seed_and_id_same_plan(seed: int, order_id: int, total: int) -> None:
    args = dict(seed=seed, order_id=order_id, total=total, per_run=total, runs=1,
                interval_minutes=0, created_at=T0, start_delay=30, units_per_minute=600)
    assert lc.plan_order(**args) == lc.plan_order(**args)
    assert 120 <= lc.plan_order(**args).start_count <= 48_000


def test_seed_changes_outcomes() -> None:
    def outcomes(seed: int) -> list[str]:
        return [lc.plan_order(seed=seed, order_id=i, total=1000, per_run=1000, runs=1,
                              interval_minutes=0, created_at=T0, start_delay=30,
                              units_per_minute=600).outcome for i in range(200)]
    assert outcomes(1) == outcomes(1)
    assert outcomes(1) != outcomes(2)
    # Every outcome shows up among 200 orders; most complete normally.
    assert set(outcomes(1)) == set(lc.OUTCOMES)
    assert outcomes(1).count("normal") > 100


def test_transition_table_shape() -> None:
    assert set(lc.TRANSITIONS) == set(lc.ORDER_STATUSES)
    for final in lc.FINAL:
        assert lc.TRANSITIONS[final] == frozenset()
    assert lc.reachable(lc.PENDING, lc.COMPLETED)
    assert lc.reachable(lc.PENDING, lc.PENDING)
    assert not lc.reachable(lc.IN_PROGRESS, lc.PENDING)
    assert not lc.reachable(lc.COMPLETED, lc.PARTIAL)
    assert not lc.reachable(lc.CANCELED, lc.IN_PROGRESS)
    assert not lc.reachable(lc.PROCESSING, lc.PENDING)


def test_the_lifecycle_names_are_the_contract_data() -> None:
    """The handles are unpacked from contract.json by position: each must name its own text,
    and the outcomes the plans draw from are the contract's (what `ctl --outcome` offers)."""
    names = {lc.PENDING: "Pending", lc.PROCESSING: "Processing", lc.IN_PROGRESS: "In progress",
             lc.COMPLETED: "Completed", lc.PARTIAL: "Partial", lc.CANCELED: "Canceled"}
    assert all(value == text for value, text in names.items()) and len(names) == 6
    assert (lc.REFILL_PENDING, lc.REFILL_IN_PROGRESS, lc.REFILL_COMPLETED,
            lc.REFILL_REJECTED) == ("Pending", "In progress", "Completed", "Rejected")
    assert lc.FINAL == {lc.COMPLETED, lc.PARTIAL, lc.CANCELED} == contract.FINAL_STATUSES
    assert lc.REFILL_FINAL == {lc.REFILL_COMPLETED, lc.REFILL_REJECTED}
    assert dict(lc.TRANSITIONS) == dict(contract.ORDER_TRANSITIONS)
    assert set(lc.REFILL_TRANSITIONS) == set(lc.REFILL_STATUSES)
    for final in lc.REFILL_FINAL:
        assert lc.REFILL_TRANSITIONS[final] == frozenset()
    assert lc.OUTCOMES == contract.OUTCOMES == ("normal", "partial", "over", "provider_cancel")
    assert len(lc.OUTCOMES) == len(lc.OUTCOME_WEIGHTS)


def test_walk_through_a_normal_order() -> None:
    plan = lc.plan_order(seed=1, order_id=1, total=600, per_run=600, runs=1, interval_minutes=0,
                         created_at=T0, start_delay=100, units_per_minute=600, outcome="normal")
    assert lc.view_at(plan, T0).status == lc.PENDING
    assert lc.view_at(plan, T0 + 69).status == lc.PENDING
    assert lc.view_at(plan, T0 + 70).status == lc.PROCESSING  # last 30% of the delay
    view = lc.view_at(plan, T0 + 100 + 30)  # 10 units per second
    assert (view.status, view.remains, view.start_count) == (lc.IN_PROGRESS, 300,
                                                             plan.start_count)
    assert lc.view_at(plan, T0 + 160) == lc.View(lc.COMPLETED, 0, plan.start_count)


def test_dripfeed_delivers_run_by_run() -> None:
    plan = lc.plan_order(seed=1, order_id=1, total=300, per_run=100, runs=3, interval_minutes=10,
                         created_at=T0, start_delay=0, units_per_minute=600, outcome="normal")
    start = plan.start_at
    assert lc.view_at(plan, start + 10).remains == 200  # first run done after 10 s
    assert lc.view_at(plan, start + 599).remains == 200  # waiting for the next run
    assert lc.view_at(plan, start + 610).remains == 100
    assert lc.view_at(plan, start + 1210) == lc.View(lc.COMPLETED, 0, plan.start_count)


def test_cancel_before_start_is_full_cancel() -> None:
    plan = lc.plan_order(seed=1, order_id=1, total=1000, per_run=1000, runs=1,
                         interval_minutes=0, created_at=T0, start_delay=60,
                         units_per_minute=600, outcome="normal")
    canceled = replace(plan, cancel_at=T0 + 10)
    assert lc.final_state(canceled) == lc.View(lc.CANCELED, 1000, 0)
    midway = replace(plan, cancel_at=T0 + 60 + 30)
    assert lc.final_state(midway).status == lc.PARTIAL
    assert lc.final_state(midway).remains == 700


@pytest.mark.parametrize("outcome", lc.OUTCOMES)
def test_with_outcome_steers(outcome: str) -> None:
    plan = lc.plan_order(seed=1, order_id=5, total=1000, per_run=1000, runs=1,
                         interval_minutes=0, created_at=T0, start_delay=10,
                         units_per_minute=600)
    steered = lc.with_outcome(plan, outcome)
    final = lc.final_state(steered)
    expected = {"normal": lc.COMPLETED, "over": lc.COMPLETED, "partial": lc.PARTIAL,
                "provider_cancel": lc.CANCELED}[outcome]
    assert final.status == expected
    with pytest.raises(ValueError):
        lc.with_outcome(plan, "partial", remains=1000)


@given(seed=st.integers(0, 10**6), refill_id=st.integers(1, 10**6),
       offsets=st.lists(st.floats(0, 500, allow_nan=False), min_size=2, max_size=20))
def test_refill_statuses_follow_their_table(seed: int, refill_id: int,
                                            offsets: list[float]) -> None:
    plan = lc.plan_refill(seed=seed, refill_id=refill_id, created_at=T0)
    assert plan == lc.plan_refill(seed=seed, refill_id=refill_id, created_at=T0)
    statuses = [lc.refill_status_at(plan, T0 + o) for o in sorted(offsets)]
    for before, after in zip(statuses, statuses[1:], strict=False):
        assert lc.reachable(before, after, lc.REFILL_TRANSITIONS)
    assert lc.refill_status_at(plan, T0) == lc.REFILL_PENDING
    assert lc.refill_status_at(plan, T0 + 10**6) in lc.REFILL_FINAL
