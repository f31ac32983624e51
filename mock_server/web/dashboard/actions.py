"""Every call the dashboard makes into the core, in one place.

The dashboard does what the control API does, through the same operations (`core.steering`,
`Panel`, `FaultBook`, `Journal`); nothing here knows HTTP. Form fields arrive as strings and are
turned into the values those operations expect; whatever they refuse comes back as a
`ControlError` / `FaultError` whose message the page shows. Keeping the calls together lets the
core's operations change shape in one file.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from smmkit.mock_server.core import lifecycle as lc
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.clock import parse_duration
from smmkit.mock_server.core.errors import TEXTS_BY_STYLE
from smmkit.mock_server.core.faults import ACTIONS, KINDS, FaultBook, FaultError
from smmkit.mock_server.core.money import format_money, parse_money
from smmkit.mock_server.core.panel import MAX_ID, Panel
from smmkit.mock_server.storage.engines import AnyJournal

ControlError = steering.ControlError
REFUSED = (steering.ControlError, FaultError)  # what a form can be told "no" with
MAX_ADVANCE_SECONDS = 10 * 366 * 86400
MAX_SPEED = 1_000_000.0
MAX_AMOUNT = Decimal(10) ** 12  # far beyond any test balance, well inside what money can hold
FAULT_KINDS = KINDS
FAULT_ACTIONS = ACTIONS
FAULT_ERRORS = tuple(TEXTS_BY_STYLE["perfectpanel"])
ORDER_STATUSES = lc.ORDER_STATUSES
OUTCOMES = lc.OUTCOMES


def iso(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def known_id(value: int, what: str) -> int:
    """An id from a URL; larger than any id can be, it is simply unknown (never sent to SQLite)."""
    if not 0 <= value <= MAX_ID:
        raise steering.NotFound(f"unknown {what} {value}")
    return value


def amount(text: str, what: str, *, negative: bool = False) -> str:
    """A money amount from a form, checked before it reaches the store."""
    try:
        value = parse_money(text.strip())
    except ValueError:
        raise ControlError(f"{what} is not an amount: {text.strip()!r}") from None
    if abs(value) > MAX_AMOUNT or (value < 0 and not negative):
        low = f"-{format_money(MAX_AMOUNT)}" if negative else "0"
        raise ControlError(f"{what} must be between {low} and {format_money(MAX_AMOUNT)}, "
                           f"got {text.strip()!r}")
    return format_money(value)


# ---------------------------------------------------------------- clock


def clock(panel: Panel) -> dict[str, Any]:
    state = panel.clock_state()
    now = state.now(panel.wall())
    return {"now": now, "iso": iso(now), "speed": state.speed, "frozen": state.frozen}


def clock_change(panel: Panel, verb: str, value: str = "") -> None:
    if verb == "freeze":
        panel.change_clock(lambda c, wall: c.frozen_at(wall))
    elif verb == "resume":
        panel.change_clock(lambda c, wall: c.resumed(wall))
    elif verb == "advance":
        try:
            seconds = float(parse_duration(value.strip()))  # float ok: panel seconds, not money
        except (ValueError, TypeError):
            raise ControlError(f"bad duration {value!r}: e.g. 90s, 2h, 3d") from None
        if not 0 < seconds <= MAX_ADVANCE_SECONDS:
            raise ControlError(f"advance by more than 0 and at most 10 years, got {value!r}")
        panel.change_clock(lambda c, wall: c.advanced(wall, seconds))
    elif verb == "speed":
        try:
            speed = float(value)  # float ok: a clock speed, not money
        except ValueError:
            raise ControlError(f"speed must be a number, got {value!r}") from None
        if not 0 < speed <= MAX_SPEED:
            raise ControlError(f"speed must be in (0, {MAX_SPEED:g}], got {value!r}")
        panel.change_clock(lambda c, wall: c.with_speed(wall, speed))
    else:
        raise ControlError(f"unknown clock operation {verb!r}")


# ---------------------------------------------------------------- accounts and money


def accounts(panel: Panel) -> list[dict[str, Any]]:
    """Every account with the conservation law's terms and whether it holds."""
    result = []
    for account in steering.list_accounts(panel):
        try:
            terms = panel.audit(account["key"])
        except ValueError:  # deleted between the two reads
            continue
        left = terms["balance"] + terms["charges"]
        right = terms["opening"] + terms["topups"]
        result.append({**account, "charges": format_money(terms["charges"]),
                       "left": format_money(left), "right": format_money(right),
                       "conserved": left == right})
    return result


def create_account(panel: Panel, key: str, balance: str, currency: str) -> None:
    steering.create_account(panel, {"key": key, "balance": amount(balance or "0", "balance"),
                                    "currency": currency.strip() or "USD"})


def top_up(panel: Panel, key: str, value: str) -> None:
    if not value.strip():
        raise ControlError("give an amount to top up")
    steering.update_account(panel, key, {"top_up": amount(value, "top_up", negative=True)})


def set_enabled(panel: Panel, key: str, enabled: bool) -> None:
    steering.update_account(panel, key, {"enabled": enabled})


# ---------------------------------------------------------------- orders


def orders(panel: Panel, *, key: str = "", status: str = "", service: str = "",
           limit: int = 200) -> list[dict[str, Any]]:
    if service and not (service.isascii() and service.isdigit()):
        raise ControlError(f"service must be a number, got {service!r}")
    if service and int(service) > MAX_ID:
        return []
    try:
        return steering.list_orders(panel, key=key or None, status=status or None,
                                    service=int(service) if service else None, limit=limit)
    except steering.NotFound:
        return []


def status_counts(panel: Panel) -> list[tuple[str, int]]:
    counts = Counter(o["status"] for o in steering.list_orders(panel, limit=10**9))
    return [(status, counts.get(status, 0)) for status in ORDER_STATUSES]


def order(panel: Panel, order_id: int) -> dict[str, Any]:
    return steering.get_order(panel, known_id(order_id, "order"))


def legal_moves(order_: dict[str, Any]) -> list[str]:
    """Statuses the order may be forced to now (the server checks again)."""
    current = order_["status"]
    return [s for s in ORDER_STATUSES if s != current and lc.reachable(current, s)]


def legal_outcomes(order_: dict[str, Any]) -> list[str]:
    """Where an active order can be steered to end; none once it is final."""
    return [o for o in OUTCOMES if o != order_["outcome"]] if order_["active"] else []


def force_status(panel: Panel, order_id: int, status: str, remains: str = "") -> None:
    changes: dict[str, Any] = {"status": status}
    if remains.strip():
        changes["remains"] = remains.strip()
    steering.force_order(panel, known_id(order_id, "order"), changes)


def force_outcome(panel: Panel, order_id: int, outcome: str) -> None:
    steering.force_order(panel, known_id(order_id, "order"), {"outcome": outcome})


def timeline(panel: Panel, order_: dict[str, Any]) -> list[dict[str, Any]]:
    """What happened to an order, oldest first: placed, money moves, now, and its end."""
    events = [{"at": order_["created_at"], "what": "placed", "status": lc.PENDING,
               "remains": order_["quantity"], "money": ""}]
    # The ledger (charges, refunds) and the settled time are read from the store, read-only:
    # the order view gives the planned end, not when a forced status took effect.
    db = panel.store.connection()
    # -- issue 15: no `?` placeholder (psycopg writes `%s`); the id is an int, inlined as one
    order_id = int(order_["order"])
    rows = db.execute("SELECT at, kind, amount FROM ledger WHERE order_id = "
                      f"{order_id} ORDER BY id").fetchall()
    settled = db.execute(f"SELECT final_at FROM orders WHERE id = {order_id}").fetchone()
    # -- end of issue 15
    for at, kind, amount in rows:
        events.append({"at": at, "what": kind, "status": "", "remains": "",
                       "money": f"{kind} {format_money(Decimal(amount))}"})
    now = panel.now()
    if order_["active"]:
        events.append({"at": now, "what": "now", "status": order_["status"],
                       "remains": order_["remains"], "money": ""})
        events.append({"at": order_["final_at"], "what": f"due to end ({order_['outcome']})",
                       "status": "", "remains": "", "money": ""})
    else:
        final_at = settled[0] if settled and settled[0] is not None else order_["final_at"]
        events.append({"at": final_at, "what": "final", "status": order_["status"],
                       "remains": order_["remains"], "money": f"refunded {order_['refunded']}"})
    events.sort(key=lambda e: e["at"] if e["at"] is not None else float("inf"))  # float ok
    for event in events:
        event["iso"] = iso(event["at"])
    return events


# ---------------------------------------------------------------- refills and cancels


def refills(panel: Panel) -> list[dict[str, Any]]:
    result = steering.list_refills(panel)
    for refill in result:
        refill["moves"] = [s for s in lc.REFILL_STATUSES if s != refill["status"]
                           and lc.reachable(refill["status"], s, lc.REFILL_TRANSITIONS)]
        refill["iso"] = iso(refill["created_at"])
    return result


def force_refill(panel: Panel, refill_id: int, status: str) -> None:
    steering.force_refill(panel, known_id(refill_id, "refill"), {"status": status})


def canceled_orders(panel: Panel) -> list[dict[str, Any]]:
    """Canceled orders with when they ended (a forced cancel ends before its planned time)."""
    result = steering.list_orders(panel, status=lc.CANCELED, limit=200)
    ended = dict(panel.store.connection().execute(
        "SELECT id, final_at FROM orders WHERE final_status IS NOT NULL").fetchall())
    for order_ in result:
        order_["ended_at"] = ended.get(order_["order"]) or order_["final_at"]
    return result


# ---------------------------------------------------------------- catalogue

SERVICE_FIELDS = ("rate", "min", "max", "start_delay", "speed", "refill_days")


def services(panel: Panel) -> list[dict[str, Any]]:
    return steering.list_services(panel)


def service(panel: Panel, service_id: int) -> dict[str, Any]:
    found = panel.catalog().get(service_id)
    if found is None:
        raise steering.NotFound(f"unknown service {service_id}")
    return found.to_json()


def edit_service(panel: Panel, service_id: int, form: dict[str, str]) -> None:
    """Price (a decimal string) and the integer knobs; an empty field is left as it is."""
    changes: dict[str, Any] = {}
    for name in SERVICE_FIELDS:
        value = form.get(name, "").strip()
        if not value:
            continue
        if name == "rate":
            changes[name] = value
        elif value.isdigit():
            changes[name] = int(value)
        else:
            raise ControlError(f"{name} must be a whole number, got {value!r}")
    for flag in ("enabled", "refill", "cancel"):
        changes[flag] = form.get(flag) == "on"
    steering.upsert_service(panel, service_id, changes)


# ---------------------------------------------------------------- faults


def faults(book: FaultBook) -> list[dict[str, Any]]:
    return [f.to_json() for f in book.list()]


def arm_fault(book: FaultBook, form: dict[str, str]) -> None:
    """A rule from the form: kind, action, key, count or probability, the kind's parameters."""
    spec: dict[str, Any] = {"kind": form.get("kind", ""), "action": form.get("action") or "*"}
    if form.get("key", "").strip():
        spec["key"] = form["key"].strip()
    numbers = {"count": int, "probability": float, "ms": int, "min_ms": int, "max_ms": int,
               "status": int, "retry_after": int}
    for name, kind in numbers.items():
        value = form.get(name, "").strip()
        if value:
            try:
                spec[name] = kind(value)
            except ValueError:
                raise FaultError(f"{name} must be a number, got {value!r}") from None
    if form.get("error", "").strip():
        spec["error"] = form["error"].strip()
    book.add(spec)


def clear_faults(book: FaultBook, fault_id: int | None = None) -> int:
    return book.clear(fault_id)


# ---------------------------------------------------------------- journal


def journal(journal_: AnyJournal | None, *, action: str = "", fingerprint: str = "",
            verdict: str = "", limit: int = 100) -> list[dict[str, Any]]:
    if journal_ is None:
        return []
    entries = journal_.entries(action=action or None, key_fingerprint=fingerprint or None,
                               limit=limit if not verdict else 2000)
    if verdict in ("conforms", "violates"):
        entries = [e for e in entries if e["request_conforms"] == (verdict == "conforms")]
    for entry in entries:
        entry["iso"] = iso(entry["wall"])
    return entries[-limit:]
