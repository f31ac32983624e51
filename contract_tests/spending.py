"""The spending half of a run (`--allow-orders`): always-on probes, the cheapest orders, a
cancel, refills end to end, and another key's view of it all.

Everything here is deterministic (no Hypothesis draw decides *whether* a probe runs), and every
request that could spend is reserved at its worst case before it is sent (`Session.reserve`), so
a panel that wrongly accepts everything still cannot take the run over its budget. A probe that
does not fit is reported as not run, with the reason.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from smmkit.contract_tests.catalogue import QUANTITY_RULES, KitService, charge_for
from smmkit.contract_tests.strategies import _add_for
from smmkit.contract_tests.violation import finding

from smmkit import schemas

if TYPE_CHECKING:
    from smmkit.contract_tests.probes import Session

ORDERABLE = frozenset({"param", "lines:comments", "lines:usernames", "package"})
BASE_FIELDS = frozenset({"key", "action", "service", "link", "quantity"})


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


def _valid_add(session: Session, service: KitService, tag: str) -> dict[str, str]:
    quantity = max(service.min, 1)
    params = dict(draw_once(_add_for(service, quantity), session.seed))
    if "quantity" in params:
        params["quantity"] = str(quantity)
    if "link" in params:
        params["link"] += f"-{session.seed}-{tag}"
    return params


def _accepted(data: Any) -> bool:
    return isinstance(data, dict) and "order" in data and "error" not in data


def _keyed(session: Session) -> list[KitService]:
    return sorted((s for s in session.catalogue if QUANTITY_RULES.get(s.type) == "param"
                   and 1 <= max(s.min, 1) <= s.max), key=lambda s: (s.rate, s.service))


# ------------------------------------------------------------------ always-on probes
def invalid_adds(session: Session) -> list[tuple[str, dict[str, str], Any, Decimal]]:
    """(name, params, accepted codes, worst-case cost) of every invalid add the kit sends.
    "*" accepts any catalogue error: docs/PROTOCOL.md leaves the text to the panel (choice)."""
    keyed = _keyed(session)
    if not keyed:
        return []
    service = keyed[0]
    low = max(service.min, 1)
    at = lambda q: charge_for(service.rate, q)  # noqa: E731 - a local shorthand
    base = _valid_add(session, service, "invalid")
    # A panel that wrongly takes an unknown service can only price it by some service's rate
    # (per unit: packages need a package service); a quantity it cannot parse, by the minimum.
    priciest = max((charge_for(s.rate, low) for s in session.catalogue if not s.package),
                   default=Decimal(0))
    top = max(s.service for s in session.catalogue)
    probes: list[tuple[str, dict[str, str], Any, Decimal]] = [
        ("non-numeric quantity", {**base, "quantity": "abc"}, "*", at(low)),
        ("negative quantity", {**base, "quantity": f"-{low}"},
         {"min_quantity", "incorrect_request"}, at(low)),
        ("fractional quantity", {**base, "quantity": f"{low}.5"}, "*", at(low + 1)),
        ("huge quantity", {**base, "quantity": "9" * 20}, {"max_quantity", "incorrect_request"},
         at(10**20)),
        ("empty quantity", {**base, "quantity": ""}, "*", at(low)),
        ("unknown service", {**base, "service": str(top + 1000)}, {"incorrect_service"},
         priciest),
        ("non-numeric service", {**base, "service": "abc"},
         {"incorrect_service", "incorrect_request"}, priciest),
        ("missing link", {k: v for k, v in base.items() if k != "link"},
         {"incorrect_link", "incorrect_request"}, at(low)),
    ]
    for other in sorted(session.catalogue, key=lambda s: (s.cheapest_charge(), s.service)):
        if other.type not in schemas.SERVICE_TYPES or QUANTITY_RULES.get(other.type) not in \
                ORDERABLE or other.min > other.max:
            continue
        required = schemas.request_validator("add", other.type).schema.get("required", [])
        extra = [name for name in required if name not in BASE_FIELDS]
        if extra:
            params = _valid_add(session, other, "field")
            cost = other.charge_of(params) or other.cheapest_charge()
            params.pop(extra[0], None)
            probes.append((f"{other.type} without {extra[0]}", params, "*", cost))
            break
    return probes


def always_on(session: Session) -> None:
    """The invalid adds and the funds check, in every `--allow-orders` run."""
    if session.wants("invalid_add"):
        probes = invalid_adds(session)
        if not probes:
            session.skip("invalid_add", "no service with a quantity in the catalogue")
        before = session.balance("balance before invalid adds")
        accepted = False
        for name, params, codes, worst in probes:
            if not session.reserve(worst):
                session.skip(f"invalid_add ({name})",
                             f"worst-case cost {worst} is above the remaining budget")
                continue
            exchange = session.send(params, note=f"invalid add: {name}")
            session.expect(exchange, codes, name="invalid_add")
            if _accepted(exchange.json()):
                accepted = True
                order = str(exchange.json()["order"])
                session.orders.append((order, None))
                session.record("add", order, None, None, worst, f"invalid add accepted: {name}")
        after = session.balance("balance after invalid adds")
        if not accepted and before is not None and after is not None and after < before:
            session.findings.append(finding(
                "invalid_add", "probe", f"refused invalid adds cost {before - after}: the "
                f"balance went from {before} to {after}", session.exchanges[-1]))
    if session.wants("funds"):
        funds(session)


def funds(session: Session) -> None:
    """An order that costs more than the balance must get "Not enough funds on balance"."""
    balance = session.balance("balance before the funds check")
    if balance is None:
        session.skip("funds", "the balance could not be read")
        return
    room = session.budget - session.spent()
    if balance >= room:
        session.skip("funds", f"not run: balance {balance} above the remaining budget {room}")
        return
    for service in _keyed(session):
        if service.rate <= 0:
            continue
        quantity = int(balance * 1000 / service.rate) + 1
        while charge_for(service.rate, quantity) <= balance:
            quantity += 1
        cost = charge_for(service.rate, max(quantity, service.min))
        if max(quantity, service.min) > service.max or cost > room:
            continue
        params = {**_valid_add(session, service, "funds"),
                  "quantity": str(max(quantity, service.min))}
        session.reserve(cost)
        exchange = session.send(params, note="add above the balance")
        session.expect(exchange, "not_enough_funds", name="funds")
        if _accepted(exchange.json()):
            order = str(exchange.json()["order"])
            session.orders.append((order, service))
            session.placed[order] = (max(quantity, service.min), cost)
            session.record("add", order, service.service, max(quantity, service.min), cost,
                           "add above the balance accepted")
        return
    session.skip("funds", "no service can cost more than the balance within the budget")


# ------------------------------------------------------------------ orders
def place_orders(session: Session) -> None:
    candidates = sorted((s for s in session.catalogue if QUANTITY_RULES.get(s.type) in ORDERABLE
                         and s.min <= s.max), key=lambda s: (s.cheapest_charge(), s.service))
    chosen = candidates[: session.max_orders]
    refillable = [s for s in candidates if s.refill]
    if refillable and not any(s.refill for s in chosen):  # refills need a refillable order
        chosen = [*chosen[: max(session.max_orders - 1, 0)], refillable[0]]
    for number, service in enumerate(chosen):
        params = _valid_add(session, service, str(number))
        cost = service.charge_of(params)
        if cost is None:
            continue
        session.balance("balance before add")
        if not session.reserve(cost):
            session.record("add", "", service.service, service.quantity_of(params), cost,
                           "skipped: over budget")
            break
        data = session.send(params, note=f"cheapest add #{number + 1}").json()
        if not _accepted(data):
            continue
        order = str(data["order"])
        session.orders.append((order, service))
        session.placed[order] = (service.quantity_of(params) or 0, cost)
        session.balance("balance after add")
        session.record("add", order, service.service, service.quantity_of(params), cost)
        if session.opening is not None and session.closing is not None \
                and session.opening - session.closing > session.budget:
            session.findings.append(finding(
                "budget", "money", f"the panel took {session.opening - session.closing}, more "
                f"than the budget {session.budget} the kit's orders should cost", None))
            break
    for order, _ in session.orders:
        session.send({"action": "status", "order": order}, note="status of the kit's order")


def cancel(session: Session) -> None:
    """Cancel what should not run: orders accepted by mistake, and one order per rule (a
    cancellable one is canceled — never the only refillable one, the refill flow needs it —
    and a non-cancellable one must refuse); the rest are watched to their end."""
    placed = [(o, s) for o, s in session.orders if s is not None and o in session.placed]
    refillable = [o for o, s in placed if s.refill]
    for order, service in list(session.orders):
        if order not in session.placed and service is None:
            session.send({"action": "cancel", "orders": order}, note="cancel a wrong accept")
    yes = [o for o, s in placed if s.cancel and (len(placed) > 1)
           and not (s.refill and len(refillable) == 1)]
    if yes:
        session.send({"action": "cancel", "orders": yes[0]}, note="cancel")
    else:
        session.skip("cancel_rules (cancel)", "no order the kit could spare to cancel")
    no = [o for o, s in placed if not s.cancel]
    if no:
        exchange = session.send({"action": "cancel", "orders": no[0]}, note="cancel")
        session.expect(exchange, "cancel_unavailable", item=no[0])


# ------------------------------------------------------------------ refills
def refills(session: Session) -> None:
    """After an order on a refill service completes: refill (single and multi form), then
    refill_status of the new id in both forms."""
    if not session.wants("refill_flow"):
        return
    done = [order for order, service in session.orders if service is not None
            and service.refill and session.last_status.get(order) == "Completed"]
    if not done:
        session.skip("refill_flow", "no order on a refill service completed during the watch")
        return
    order = done[0]
    single = session.send({"action": "refill", "order": order}, note="refill")
    data = single.json()
    refill = data.get("refill") if isinstance(data, dict) else None
    if not isinstance(refill, (str, int)) or isinstance(refill, bool):
        session.findings.append(finding("refill_flow", "semantics",
                                        f"refill of completed order {order} answered "
                                        f"{single.text(160)!r}, not a refill id", single))
        return
    session.refills.append(str(refill))
    session.send({"action": "refill", "orders": order}, note="refill (multi form, in flight)")
    one = session.send({"action": "refill_status", "refill": str(refill)}, note="refill_status")
    multi = session.send({"action": "refill_status", "refills": str(refill)},
                         note="refill_status (multi form)")
    for exchange in (one, multi):
        if exchange.error_text is not None:
            session.findings.append(finding(
                "refill_flow", "semantics", f"refill {refill} just given out is unknown to "
                f"refill_status: {exchange.text(160)!r}", exchange))


# ------------------------------------------------------------------ another key
def other_key(session: Session) -> None:
    """Every id-taking action asked with the other key about this key's ids must answer
    exactly as for an unknown id (History judges the answers)."""
    if session.other is None:
        session.skip("foreign_ids_invisible", "no --other-key given")
        return
    if not session.wants("foreign_ids_invisible"):
        return
    orders = [order for order, _ in session.orders][:3]
    if not orders:
        session.skip("foreign_ids_invisible", "this key has no orders to ask about")
        return
    other = session.other
    for order in orders:
        session.send({"action": "status", "order": order}, note="other key: status",
                     target=other)
    session.send({"action": "status", "orders": ",".join(orders)},
                 note="other key: multi status", target=other)
    if session.allow_orders:
        session.send({"action": "refill", "order": orders[0]}, note="other key: refill",
                     target=other)
        session.send({"action": "refill", "orders": ",".join(orders)},
                     note="other key: multi refill", target=other)
        session.send({"action": "cancel", "orders": ",".join(orders)},
                     note="other key: cancel", target=other)
    for refill in session.refills[:3]:
        session.send({"action": "refill_status", "refill": refill},
                     note="other key: refill_status", target=other)
        session.send({"action": "refill_status", "refills": refill},
                     note="other key: multi refill_status", target=other)
