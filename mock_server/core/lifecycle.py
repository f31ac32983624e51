"""Order and refill lifecycles as pure functions of the panel clock. No I/O.

An order's whole future is decided when it is placed — start delay, delivery speed, seeded
outcome — and stored as a `Plan`. What `status` shows at time t is `view_at(plan, t)`; the
final state (and so the refund) is `final_state(plan)`. Cancelling or forcing changes the plan,
never the rules. Legal moves between statuses are one table, `TRANSITIONS`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Any

from smmkit.schemas import contract

# The statuses, their legal moves and the outcomes are contract data (smmkit.schemas.contract,
# `_data/contract.json`); the names below are the fake's handles on them.
PENDING, PROCESSING, IN_PROGRESS, COMPLETED, PARTIAL, CANCELED = contract.ORDER_STATUSES
ORDER_STATUSES = contract.ORDER_STATUSES
FINAL = contract.FINAL_STATUSES

TRANSITIONS = contract.ORDER_TRANSITIONS

REFILL_PENDING, REFILL_IN_PROGRESS, REFILL_COMPLETED, REFILL_REJECTED = contract.REFILL_STATUSES
REFILL_STATUSES = contract.REFILL_STATUSES
REFILL_FINAL = contract.FINAL_REFILL_STATUSES
REFILL_TRANSITIONS = contract.REFILL_TRANSITIONS

OUTCOMES = contract.OUTCOMES
# Seeded outcome odds: most orders complete; some stop short, overshoot or are dropped.
OUTCOME_WEIGHTS = (0.75, 0.10, 0.10, 0.05)
PROCESSING_SHARE = 0.3  # the last 30% of the start delay shows "Processing"
PARTIAL_STALL = 30.0  # seconds a stopped delivery waits before the panel marks it Partial
MAX_RUN_SECONDS = 600.0  # keep default deliveries watchable: a run lasts ten minutes at most
CANCEL_DELAY = 10.0  # a cancel request takes effect this long after it was accepted
REFILL_START_DELAY = 30.0
REFILL_DURATION = 60.0
REFILL_REJECT_ODDS = 0.10


reachable = contract.reachable  # whether `end` can follow `start` (polls may skip statuses)


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything that decides an order's history. Times are panel seconds."""

    total: int  # units ordered (quantity × runs)
    per_run: int
    runs: int
    interval: float  # seconds between drip-feed runs
    created_at: float
    start_at: float
    unit_seconds: float  # seconds per delivered unit
    outcome: str
    delivered_final: int  # units delivered by the natural end (may exceed total: over-delivery)
    start_count: int
    cancel_at: float | None = None

    @property
    def run_seconds(self) -> float:
        return self.per_run * self.unit_seconds

    def delivered(self, t: float) -> int:
        """Units delivered by time t on the natural course (never above total)."""
        if self.outcome == "provider_cancel" or t < self.start_at:
            return 0
        elapsed = t - self.start_at
        run = 0 if self.runs == 1 else min(self.runs - 1, int(elapsed // self.interval))
        # epoch-sized floats carry ~2e-7 s of error: the epsilon keeps n units from flooring to n-1
        in_run = min(self.per_run,
                     math.floor((elapsed - run * self.interval) / self.unit_seconds + 1e-4))
        return min(run * self.per_run + in_run, self.total, self.delivered_final)

    def time_to_deliver(self, units: int) -> float:
        """When the `units`-th unit is delivered on the natural course."""
        if units <= 0:
            return self.start_at
        full_runs, rest = divmod(units, self.per_run)
        if rest == 0:
            full_runs, rest = full_runs - 1, self.per_run
        return self.start_at + full_runs * self.interval + rest * self.unit_seconds

    @property
    def natural_end(self) -> float:
        if self.outcome == "provider_cancel":
            return self.start_at
        if self.outcome == "partial":
            return self.time_to_deliver(self.delivered_final) + PARTIAL_STALL
        return self.time_to_deliver(self.total)

    @property
    def final_at(self) -> float:
        if self.cancel_at is not None and self.cancel_at < self.natural_end:
            return self.cancel_at
        return self.natural_end


def plan_of(row: Any) -> Plan:
    """The plan stored in a row (read by column name; the columns carry the field names)."""
    return Plan(row.total, row.per_run, row.runs, row.interval, row.created_at,
                row.start_at, row.unit_seconds, row.outcome, row.delivered_final,
                row.start_count, row.cancel_at)


def cancel_effect_at(plan: Plan, now: float) -> float | None:
    """When a cancel accepted at `now` takes effect, or None when it comes too late (the order
    is final by now, or its last unit is already delivered).

    Normally `CANCEL_DELAY` after it was accepted; but an acknowledged cancel is honoured, so
    when the order would finish within the delay, the cancel takes effect no later than the
    delivery of its second-to-last unit: the order ends Canceled or Partial, never Completed.
    """
    if now >= plan.final_at or plan.delivered(now) >= plan.total:
        return None
    last_unit_but_one = plan.time_to_deliver(plan.total - 1) if plan.total > 1 else plan.start_at
    return max(now, min(now + CANCEL_DELAY, last_unit_but_one))


@dataclass(frozen=True, slots=True)
class View:
    status: str
    remains: int
    start_count: int  # 0 until delivery starts


def plan_order(
    *, seed: int, order_id: int, total: int, per_run: int, runs: int, interval_minutes: int,
    created_at: float, start_delay: float, units_per_minute: int, outcome: str | None = None,
) -> Plan:
    """Draw an order's future from the seeded source: same seed and id → same history."""
    rng = random.Random(f"{seed}:order:{order_id}")
    drawn = rng.choices(OUTCOMES, weights=OUTCOME_WEIGHTS)[0]
    fraction = rng.uniform(0.3, 0.9)
    extra = rng.randint(1, max(1, total // 50))
    start_count = rng.randint(120, 48_000)
    outcome = outcome or drawn
    if outcome == "partial" and total < 2:
        outcome = "normal"
    unit_seconds = 60.0 / units_per_minute
    interval = interval_minutes * 60.0
    cap = min(MAX_RUN_SECONDS, interval) if runs > 1 else MAX_RUN_SECONDS
    if per_run * unit_seconds > cap:
        unit_seconds = cap / per_run
    delivered_final = {
        "normal": total,
        "over": total + extra,
        "partial": min(total - 1, max(1, int(total * fraction))),
        "provider_cancel": 0,
    }[outcome]
    return Plan(
        total=total, per_run=per_run, runs=runs, interval=interval, created_at=created_at,
        start_at=created_at + start_delay, unit_seconds=unit_seconds, outcome=outcome,
        delivered_final=delivered_final, start_count=start_count,
    )


def with_outcome(plan: Plan, outcome: str, *, remains: int | None = None) -> Plan:
    """The same order steered to another outcome (control plane); remains picks Partial's cut."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
    delivered = plan.total if outcome == "normal" else 0  # provider_cancel delivers nothing
    if outcome == "partial":
        cut = remains if remains is not None else max(1, plan.total // 2)
        if not 0 < cut < plan.total:
            raise ValueError(f"a Partial order keeps 0 < remains < {plan.total}, got {cut}")
        delivered = plan.total - cut
    if outcome == "over":
        extra = -remains if remains is not None and remains < 0 else max(1, plan.total // 50)
        delivered = plan.total + extra
    return replace(plan, outcome=outcome, delivered_final=delivered)


def final_state(plan: Plan) -> View:
    """Status and remains the order ends with."""
    if plan.cancel_at is not None and plan.cancel_at < plan.natural_end:
        # a cancel stops the delivery before its last unit (see cancel_effect_at)
        delivered = min(plan.delivered(plan.cancel_at), plan.total - 1)
        status = CANCELED if delivered == 0 else PARTIAL
        return View(status, plan.total - delivered, plan.start_count if delivered else 0)
    if plan.outcome == "provider_cancel":
        return View(CANCELED, plan.total, 0)
    if plan.outcome == "partial":
        return View(PARTIAL, plan.total - plan.delivered_final, plan.start_count)
    return View(COMPLETED, plan.total - plan.delivered_final, plan.start_count)


def view_at(plan: Plan, t: float, final_at: float | None = None) -> View:
    """What `status` shows at panel time t (`final_at`: plan.final_at, when the caller keeps
    it — a poll of many orders should not work it out again for each)."""
    if t >= (plan.final_at if final_at is None else final_at):
        return final_state(plan)
    if t < plan.start_at:
        delay = plan.start_at - plan.created_at
        status = PROCESSING if t >= plan.start_at - PROCESSING_SHARE * delay else PENDING
        return View(status, plan.total, 0)
    return View(IN_PROGRESS, plan.total - plan.delivered(t), plan.start_count)


@dataclass(frozen=True)
class RefillPlan:
    created_at: float
    rejected: bool

    @property
    def start_at(self) -> float:
        return self.created_at + REFILL_START_DELAY

    @property
    def end_at(self) -> float:
        return self.start_at if self.rejected else self.start_at + REFILL_DURATION


def plan_refill(*, seed: int, refill_id: int, created_at: float) -> RefillPlan:
    rng = random.Random(f"{seed}:refill:{refill_id}")
    return RefillPlan(created_at=created_at, rejected=rng.random() < REFILL_REJECT_ODDS)


def refill_status_at(plan: RefillPlan, t: float) -> str:
    if t >= plan.end_at:
        return REFILL_REJECTED if plan.rejected else REFILL_COMPLETED
    return REFILL_PENDING if t < plan.start_at else REFILL_IN_PROGRESS
