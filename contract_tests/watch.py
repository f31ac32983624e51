"""Watching the orders a run placed (and the `--order` ids given) until they are final.

One run places its orders and would stop looking; the behaviour that matters happens later: a
Partial whose refund never reaches the balance, a final order that changes again, remains that
grow. So the watch polls every order (multi status, then single) until all are final — and each
final one at least twice more — or `--watch` runs out. When the session has a clock (our fake
driven through its control API with the admin token) it advances the clock instead of waiting.

Judged here, with the timeline: `refund_in_balance` — the balance against the ledger of what the
kit did (a live account may have other activity, so a difference the kit cannot explain is
reported as "could not attribute", never failed). The transitions, remains and kept charges are
judged by `History` from the same exchanges.
"""

from __future__ import annotations

import time
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from smmkit.contract_tests.catalogue import parse_decimal, parse_int
from smmkit.contract_tests.violation import finding
from smmkit.schemas import contract

if TYPE_CHECKING:
    from smmkit.contract_tests.probes import Session

FIVE_PLACES = Decimal("0.00001")
FINAL_POLLS = 2  # polls of an order after it was first seen final
# Panel seconds per poll when the clock is driven: small first (to see orders in flight), then
# large (to reach their end).
CLOCK_STEPS = (5, 10, 15, 30, 30, 60, 120, 600, 3_600, 6 * 3_600, 86_400, 3 * 86_400,
               7 * 86_400)


def kept(charge: Decimal, quantity: int, status: str, remains: int | None) -> Decimal | None:
    """What the panel keeps of `charge` for a final order (docs/PROTOCOL.md §6): all when Completed,
    nothing when Canceled, charge − charge × remains / quantity (half-up) when Partial."""
    if status == "Completed":
        return charge
    if status == "Canceled":
        return Decimal(0)
    if status == "Partial" and remains is not None and quantity > 0:
        refund = (charge * max(remains, 0) / quantity).quantize(FIVE_PLACES, ROUND_HALF_UP)
        return charge - refund
    return None


def watch(session: Session) -> None:
    ids = list(dict.fromkeys(order for order, _ in session.orders))
    if not ids:
        return
    if session.watch_for <= 0:
        session.skip("watch", "--watch 0")
        return
    deadline = time.monotonic() + session.watch_for
    finals: dict[str, int] = {}
    step = 0
    while True:
        due = [i for i in ids if finals.get(i, 0) <= FINAL_POLLS]
        if not due:
            break
        for start in range(0, len(due), 100):
            _observe(session, session.send(
                {"action": "status", "orders": ",".join(due[start:start + 100])},
                note="watch: status of the kit's orders"), finals)
        if all(finals.get(i, 0) > FINAL_POLLS for i in ids) or time.monotonic() >= deadline:
            break
        if session.clock is not None:
            if step >= len(CLOCK_STEPS) + FINAL_POLLS:
                break  # weeks of panel time: what is not final now never will be
            session.clock(CLOCK_STEPS[min(step, len(CLOCK_STEPS) - 1)])
            step += 1
        else:
            time.sleep(max(0.0, min(session.poll, deadline - time.monotonic())))
    for order in ids:
        _observe(session, session.send({"action": "status", "order": order},
                                       note="watch: single status"), finals, single=order)
    unfinished = [i for i in ids if i not in finals]
    if unfinished:
        session.skip("watch (final)", f"orders {', '.join(unfinished[:5])} not final within "
                     f"--watch {session.watch_for:g}s")
    if session.wants("refund_in_balance"):
        reconcile(session)


def _observe(session: Session, exchange: Any, finals: dict[str, int],
             single: str | None = None) -> None:
    data = exchange.json()
    if single is not None:
        items = {single: data} if isinstance(data, dict) and "status" in data else {}
    else:
        items = data if isinstance(data, dict) and "error" not in data else {}
    for ident, value in items.items():
        if not isinstance(value, dict) or not isinstance(value.get("status"), str):
            continue
        status = value["status"]
        session.timeline.setdefault(str(ident), []).append({
            "seq": len(session.exchanges), "status": status,
            "remains": value.get("remains"), "charge": value.get("charge")})
        session.last_status[str(ident)] = status
        session.last_value[str(ident)] = value
        if status in contract.FINAL_STATUSES:
            finals[str(ident)] = finals.get(str(ident), 0) + 1


def reconcile(session: Session) -> None:
    """Every refund the watch saw must show up in the balance."""
    if session.opening is None:
        return
    balance = session.balance("balance after the watch")
    if balance is None:
        return
    expected_keep, refunds = Decimal(0), Decimal(0)
    unknown = []
    for order, (quantity, charge) in session.placed.items():
        value = session.last_value.get(order, {})
        status = value.get("status", "")
        keep = kept(charge, quantity, status, parse_int(value.get("remains")))
        if keep is None:
            if status in contract.FINAL_STATUSES:
                unknown.append(order)
            keep = charge
        expected_keep += keep
        refunds += charge - keep
    for entry in session.ledger:
        if entry.order and entry.order not in session.placed:
            reported = parse_decimal(session.last_value.get(entry.order, {}).get("charge"))
            if reported is None:
                unknown.append(entry.order)
            expected_keep += reported if reported is not None else Decimal(0)
    expected = session.opening - expected_keep
    diff = balance - expected
    if diff == 0:
        return
    if refunds > 0 and -refunds <= diff < 0:
        session.findings.append(finding(
            "refund_in_balance", "money", f"refunds of {refunds} are due for the kit's final "
            f"orders, but the balance is {balance}: {-diff} short of opening "
            f"{session.opening} − kept {expected_keep} = {expected}", session.exchanges[-1]))
        return
    session.findings.append(finding(
        "refund_in_balance", "money", f"could not attribute a balance difference of {diff} "
        f"(balance {balance}, expected {expected} from the kit's own orders"
        + (f"; orders {', '.join(unknown[:5])} unknown" if unknown else "")
        + "): other activity on the account?", session.exchanges[-1], severity="note"))
