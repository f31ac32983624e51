"""What the control plane does to a panel: the clock, accounts, forced outcomes, catalogue
edits, listings, reset and snapshots. Plain Python over `Panel`'s public face; no HTTP, no SQL.

Every operation validates everything first, then runs as one write transaction: a refused call
raises ControlError and changes nothing. Money stays conserved: forcing an order to a final
status books the refund the status implies (`panel.book_final`), setting a balance books the
difference as a top-up (`ops.move_money`, the one door money goes through).
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

from smmkit.mock_server.core import lifecycle as lc
from smmkit.mock_server.core.catalog import Service, service_from_json
from smmkit.mock_server.core.clock import MAX_SPEED, MIN_SPEED
from smmkit.mock_server.core.money import (
    MONEY_LIMIT,
    ZERO,
    format_money,
    parse_amount,
    parse_currency,
)
from smmkit.mock_server.core.panel import (
    MAX_ID,
    AccountSpec,
    Panel,
    book_final,
    refill_status,
)
from smmkit.mock_server.core.snapshots import SNAPSHOT_FORMAT, check_snapshot
from smmkit.mock_server.storage.tables import BalanceRefused

MAX_SECONDS = 100 * 366 * 86400  # a clock move of more than a century is a typo, not a test


class ControlError(ValueError):
    """A control request that cannot be carried out; the message says why."""


class NotFound(ControlError):
    pass


def parse_id(value: Any, what: str) -> int:
    """An id from a URL or JSON: ASCII digits only (not '²' or '٣'), below 2^62."""
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) >= MAX_ID:
        raise NotFound(f"unknown {what} {text[:40]!r}")
    return int(text)


def parse_count(value: str, what: str, *, high: int = 100_000) -> int:
    """A count from a query string: ASCII digits, at most `high`."""
    if not (value.isascii() and value.isdigit()) or len(value) > 9 or int(value) > high:
        raise ControlError(f"{what} must be a whole number up to {high}, got {value[:40]!r}")
    return int(value)


def _m(amount: str | Decimal) -> str:
    """Money in control answers is written like on the wire: exact, trimmed, no exponent."""
    return format_money(Decimal(amount))


def _amount(value: Any, what: str, *, allow_negative: bool = False) -> Decimal:
    try:
        return parse_amount(value, what, allow_negative=allow_negative)
    except ValueError as exc:
        raise ControlError(str(exc)) from None


def _currency(value: Any) -> str:
    try:
        return parse_currency(value.upper() if isinstance(value, str) else value)
    except ValueError:
        raise ControlError(f"bad currency {value!r}: three letters") from None  # as in 0.1


# ---------------------------------------------------------------- clock


def _clock(panel: Panel, change: Any) -> None:
    try:
        panel.change_clock(change)
    except ValueError as exc:
        raise ControlError(str(exc)) from None


def advance_clock(panel: Panel, seconds: float) -> None:
    if not 0 <= seconds <= MAX_SECONDS:
        raise ControlError(f"a clock advance must be between 0 and {MAX_SECONDS} seconds "
                           f"(a century), got {seconds:g}")
    _clock(panel, lambda c, wall: c.advanced(wall, seconds))


def set_clock(panel: Panel, target: float) -> None:
    if not target == target or target in (float("inf"), float("-inf")):  # float ok: NaN, ±Inf
        raise ControlError(f"bad time {target!r}: a finite epoch second")
    if target < panel.now():
        raise ControlError("the clock cannot go backwards (orders already settled)")
    _clock(panel, lambda c, wall: c.set_to(wall, target))


def set_speed(panel: Panel, speed: Any) -> None:
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) \
            or not MIN_SPEED <= speed <= MAX_SPEED:
        raise ControlError(f"speed must be a number in [{MIN_SPEED:g}, {MAX_SPEED:g}], "
                           f"got {speed!r}")
    _clock(panel, lambda c, wall: c.with_speed(wall, float(speed)))  # float ok: speed


def freeze_clock(panel: Panel) -> None:
    _clock(panel, lambda c, wall: c.frozen_at(wall))


def resume_clock(panel: Panel) -> None:
    _clock(panel, lambda c, wall: c.resumed(wall))


# ---------------------------------------------------------------- accounts


def _account_json(row: Any) -> dict[str, Any]:
    return {"key": row.key, "balance": _m(row.balance), "currency": row.currency,
            "enabled": bool(row.enabled), "opening": _m(row.opening),
            "topups": _m(row.topups)}


def list_accounts(panel: Panel) -> list[dict[str, Any]]:
    panel.settle()
    return [_account_json(row) for row in panel.ops.accounts(panel.store.connection())]


def get_account(panel: Panel, key: str) -> dict[str, Any]:
    """One account with its kept charges, read in one snapshot: balance + charges always equal
    opening + top-ups, whatever the API does meanwhile."""
    try:
        terms = panel.audit(key)
    except ValueError:
        raise NotFound(f"unknown account {key!r}") from None
    view = {"key": key, "balance": _m(terms["balance"]), "opening": _m(terms["opening"]),
            "topups": _m(terms["topups"]), "charges": _m(terms["charges"])}
    row = panel.ops.account_by_key(panel.store.connection(), key)
    if row is None:
        raise NotFound(f"unknown account {key!r}")
    return {**view, "currency": row.currency, "enabled": bool(row.enabled),
            "key": key}


def update_account(panel: Panel, key: str, changes: Any) -> dict[str, Any]:
    """Apply any of balance (set), top_up (add), currency, enabled — all or none — and give the
    account as `get_account` shows it."""
    change_account(panel, key, changes)
    return get_account(panel, key)


def change_account(panel: Panel, key: str, changes: Any) -> None:
    """`update_account` without the view: start-up applies an accounts file this way (the view's
    audit reads every order of the account: 1.7 s of a 2.2 s start at 1,000,000 orders)."""
    if not isinstance(changes, dict):
        raise ControlError("the changes must be a JSON object")
    unknown = set(changes) - {"balance", "top_up", "currency", "enabled"}
    if unknown:
        raise ControlError(f"unknown account fields: {', '.join(sorted(map(str, unknown)))}")
    target = _amount(changes["balance"], "balance") if "balance" in changes else None
    top_up = (_amount(changes["top_up"], "top_up", allow_negative=True)
              if "top_up" in changes else ZERO)
    currency = _currency(changes["currency"]) if "currency" in changes else None
    enabled = changes.get("enabled")
    if "enabled" in changes and not isinstance(enabled, bool):
        raise ControlError(f"enabled must be true or false, got {enabled!r}")
    with panel.store.transaction() as db:
        row = panel.ops.account_by_key(db, key)
        if row is None:
            raise NotFound(f"unknown account {key!r}")
        delta = top_up + (target - Decimal(row.balance) if target is not None else ZERO)
        if delta:
            try:
                panel.ops.move_money(db, row.id, delta, kind="topup", at=panel.now(),
                                     topup=True)
            except BalanceRefused as exc:
                after = exc.balance + exc.delta
                raise ControlError(f"balance would become negative ({after})" if after < 0 else
                                   f"balance would be above {MONEY_LIMIT - 1} ({after})") from None
        panel.ops.set_account_flags(db, row.id, currency=currency, enabled=enabled)


def create_account(panel: Panel, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ControlError("an account must be a JSON object")
    key = data.get("key")
    if not isinstance(key, str) or not key.strip() or len(key) > 256:
        raise ControlError("an account needs a non-empty string key")
    balance = _amount(data.get("balance", "0"), "balance")
    currency = _currency(data.get("currency", "USD"))
    try:
        panel.create_account(key, balance, currency)
    except ValueError as exc:
        raise ControlError(str(exc)) from None
    return get_account(panel, key)


def delete_account(panel: Panel, key: str) -> None:
    """The account and its history go in one transaction (API requests racing it see the
    account whole or not at all); its order ids stay used."""
    with panel.store.transaction() as db:
        row = panel.ops.account_by_key(db, key)
        if row is None:
            raise NotFound(f"unknown account {key!r}")
        panel.ops.delete_account(db, row.id)


def reset_account(panel: Panel, key: str) -> dict[str, Any]:
    """Forget one account's orders and refills; its balance goes back to its opening."""
    with panel.store.transaction() as db:
        row = panel.ops.account_by_key(db, key)
        if row is None:
            raise NotFound(f"unknown account {key!r}")
        panel.ops.forget_history(db, row.id)
        panel.ops.reopen_account(db, row.id)
    return get_account(panel, key)


# ---------------------------------------------------------------- orders and refills


def _order_dict(row: Any, keys: dict[int, str], now: float) -> dict[str, Any]:
    plan = lc.plan_of(row)
    if row.final_status:
        view = lc.View(row.final_status, row.final_remains, row.final_start_count)
    else:
        view = lc.view_at(plan, now)
    return {
        "order": row.id, "key": keys.get(row.account_id), "service": row.service_id,
        "link": row.link, "status": view.status, "remains": view.remains,
        "start_count": view.start_count, "quantity": plan.total,
        "charge": _m(Decimal(row.charge) - Decimal(row.refunded)),
        "charged": _m(row.charge), "refunded": _m(row.refunded), "outcome": plan.outcome,
        "created_at": plan.created_at, "final_at": plan.final_at,
        "active": row.due_at is not None, "params": json.loads(row.params),
    }


def list_orders(panel: Panel, *, key: str | None = None, status: str | None = None,
                service: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    now = panel.settle()
    with panel.store.snapshot() as db:
        keys = panel.ops.account_keys(db)
        account_id = None
        if key is not None:
            ids = [i for i, k in keys.items() if k == key]
            if not ids:
                raise NotFound(f"unknown account {key!r}")
            account_id = ids[0]
        rows = panel.ops.orders(db, account_id=account_id, service_id=service)
    result = []
    for row in rows:
        order = _order_dict(row, keys, now)
        if status is None or order["status"].lower() == status.lower():
            result.append(order)
            if len(result) >= limit:
                break
    return result


def get_order(panel: Panel, order_id: int) -> dict[str, Any]:
    now = panel.settle()
    with panel.store.snapshot() as db:
        row = panel.ops.order(db, order_id)
        if row is None:
            raise NotFound(f"unknown order {order_id}")
        keys = panel.ops.account_keys(db)
    return _order_dict(row, keys, now)


def force_order(panel: Panel, order_id: int, changes: Any) -> dict[str, Any]:
    """Steer one order: `outcome` (where it will end), or `status` with `remains` /
    `start_count` now. Only legal transitions unless `force: true`; refunds follow."""
    if not isinstance(changes, dict):
        raise ControlError("the changes must be a JSON object")
    unknown = set(changes) - {"status", "remains", "start_count", "outcome", "force"}
    if unknown:
        raise ControlError(f"unknown order fields: {', '.join(sorted(map(str, unknown)))}")
    force = changes.get("force", False)
    if not isinstance(force, bool):
        raise ControlError("force must be true or false")
    remains = _int_or_none(changes.get("remains"), "remains")
    start_count = None
    if "start_count" in changes:
        start_count = _int_or_none(changes["start_count"], "start_count")
        if start_count is None or start_count < 0:
            raise ControlError("start_count must be a non-negative integer")
    now = panel.settle()
    with panel.store.transaction() as db:
        row = panel.ops.order(db, order_id)
        if row is None:
            raise NotFound(f"unknown order {order_id}")
        plan = lc.plan_of(row)
        current = row.final_status or lc.view_at(plan, now).status
        if "outcome" in changes:
            if row.due_at is None:
                raise ControlError(f"order {order_id} is already {current}; its outcome is set")
            try:
                plan = lc.with_outcome(plan, str(changes["outcome"]), remains=remains)
            except ValueError as exc:
                raise ControlError(str(exc)) from None
            _write_plan(panel, db, order_id, plan)
        elif "status" in changes or "remains" in changes:
            status = changes.get("status", current)
            _force_status(panel, db, row, plan, current, status, remains,
                          "remains" in changes, force, now)
        if start_count is not None:
            panel.ops.set_start_count(db, order_id, start_count)
    panel.settle()
    return get_order(panel, order_id)


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ControlError(f"{what} must be an integer, got {value!r}")
    text = str(value).strip()
    body = text[1:] if text[:1] == "-" else text
    if not (body.isascii() and body.isdigit()) or len(body) > 18:
        raise ControlError(f"{what} must be an integer, got {value!r}")
    return int(text)


def _write_plan(panel: Panel, db: Any, order_id: int, plan: lc.Plan) -> None:
    panel.ops.write_plan(db, order_id, per_run=plan.per_run, runs=plan.runs,
                         interval=plan.interval, created_at=plan.created_at,
                         start_at=plan.start_at, unit_seconds=plan.unit_seconds,
                         outcome=plan.outcome, delivered_final=plan.delivered_final,
                         cancel_at=plan.cancel_at, due_at=plan.final_at)


def _force_status(panel: Panel, db: Any, row: Any, plan: lc.Plan, current: str, status: Any,
                  remains: int | None, remains_given: bool, force: bool, now: float) -> None:
    order_id = row.id
    if status not in lc.ORDER_STATUSES:
        raise ControlError(f"unknown status {status!r}; one of {', '.join(lc.ORDER_STATUSES)}")
    if status != current and not force and not lc.reachable(current, status):
        raise ControlError(f"illegal transition {current} -> {status} for order {order_id} "
                           "(send force: true to override)")
    if status == current and current in lc.FINAL and not force and remains_given:
        raise ControlError(f"order {order_id} is already {current} (send force: true)")
    total = plan.total
    if status in lc.FINAL:
        if status == lc.COMPLETED:
            if remains is not None and remains > 0:
                raise ControlError("a Completed order has remains <= 0")
            remains = 0 if remains is None else remains
        elif status == lc.CANCELED:
            remains = total
        else:
            remains = remains if remains is not None else max(1, total // 2)
            if not 0 < remains < total:
                raise ControlError(f"a Partial order needs 0 < remains < {total}, got {remains}")
        final = lc.View(status, remains, 0 if status == lc.CANCELED else plan.start_count)
        try:
            book_final(panel.ops, db, row, final, now, at=now)
        except BalanceRefused as exc:
            raise ControlError(f"reversing the refund refused: {exc}") from None
        return
    # Back to a non-final status: the order becomes active again, on a plan that shows it now.
    delay = max(plan.start_at - plan.created_at, 1.0)
    created_at = min(plan.created_at, now)
    if status == lc.IN_PROGRESS:
        left = total if remains is None else remains
        if not 0 < left <= total:
            raise ControlError(f"an In progress order needs 0 < remains <= {total}, got {left}")
        start_at = now - (total - left) * plan.unit_seconds
    elif status == lc.PROCESSING:
        # Processing shows in the last PROCESSING_SHARE of the start delay: an order placed
        # this very instant has no such past, so its plan is placed a whole delay back
        created_at = min(created_at, now - delay)
        start_at = now + lc.PROCESSING_SHARE * delay / 2
    else:
        start_at = now + delay
    new_plan = replace(plan, created_at=created_at, start_at=start_at,
                       runs=1, per_run=total, interval=0.0, cancel_at=None)
    delivered_now = total - (total if remains is None else remains)
    if plan.outcome == "provider_cancel" or (
            plan.outcome == "partial" and plan.delivered_final <= delivered_now):
        new_plan = replace(new_plan, outcome="normal", delivered_final=total)
    refunded = Decimal(row.refunded)
    if refunded:
        try:
            panel.ops.move_money(db, row.account_id, -refunded, kind="refund", at=now,
                                 order_id=order_id)
        except BalanceRefused as exc:
            raise ControlError(f"reversing the refund refused: {exc}") from None
    panel.ops.unbook_final(db, order_id)
    _write_plan(panel, db, order_id, new_plan)


def list_refills(panel: Panel, *, key: str | None = None) -> list[dict[str, Any]]:
    now = panel.now()
    with panel.store.snapshot() as db:
        keys = panel.ops.account_keys(db)
        rows = panel.ops.refills(db)
    return [{"refill": r.id, "order": r.order_id, "key": keys.get(r.account_id),
             "created_at": r.created_at, "status": refill_status(r, now)}
            for r in rows if key is None or keys.get(r.account_id) == key]


def force_refill(panel: Panel, refill_id: int, changes: Any) -> dict[str, Any]:
    if not isinstance(changes, dict):
        raise ControlError("the changes must be a JSON object")
    status, force = changes.get("status"), changes.get("force", False)
    if status not in lc.REFILL_STATUSES:
        raise ControlError(f"unknown refill status {status!r}; one of "
                           f"{', '.join(lc.REFILL_STATUSES)}")
    with panel.store.transaction() as db:
        row = panel.ops.refill(db, refill_id)
        if row is None:
            raise NotFound(f"unknown refill {refill_id}")
        current = refill_status(row, panel.now())
        if not force and not lc.reachable(current, status, lc.REFILL_TRANSITIONS):
            raise ControlError(f"illegal refill transition {current} -> {status} "
                               "(send force: true to override)")
        panel.ops.force_refill(db, refill_id, status)
    return next(r for r in list_refills(panel) if r["refill"] == refill_id)


# ---------------------------------------------------------------- catalogue

SERVICE_BOUNDS = {"service": MAX_ID - 1, "min": 10**12, "max": 10**12, "speed": 10**9,
                  "start_delay": 10 * 366 * 86400, "refill_days": 3660}


def check_service(service: Service) -> Service:
    """A service whose every number the panel can compute with: rate with at most 15 integer
    digits and 10 decimals, the largest order's charge within what money holds."""
    for name, high in SERVICE_BOUNDS.items():
        if not 0 <= getattr(service, name) <= high:
            raise ControlError(f"service {service.service}: {name} must be in [0, {high}], "
                               f"got {getattr(service, name)}")
    rate = service.rate
    exponent = rate.as_tuple().exponent
    if not rate.is_finite() or rate.adjusted() >= 15 or (isinstance(exponent, int)
                                                          and exponent < -10):
        raise ControlError(f"service {service.service}: rate {rate} must have at most 15 digits "
                           "before the point and 10 after")
    largest = rate if service.priced_per_package else rate * service.max / 1000
    if largest >= MONEY_LIMIT:
        raise ControlError(f"service {service.service}: an order of max {service.max} would "
                           f"cost {largest}, more than money holds")
    return service


def upsert_service(panel: Panel, service_id: int | None, data: Any) -> dict[str, Any]:
    """Add a service (service_id None) or change fields of one; orders keep their price."""
    if not isinstance(data, dict):
        raise ControlError("a service must be a JSON object")
    current = panel.catalog().get(service_id) if service_id is not None else None
    if service_id is not None and current is None:
        raise NotFound(f"unknown service {service_id}")
    merged = {**(current.to_json() if current else {}), **data}
    if current is not None:
        merged["service"] = service_id
    try:
        service = service_from_json(merged)
    except (ValueError, ArithmeticError) as exc:
        raise ControlError(str(exc)) from None
    check_service(service)
    if current is None and service.service in panel.catalog():
        raise ControlError(f"service {service.service} already exists")
    with panel.store.transaction() as db:
        panel.ops.upsert_service(db, service.service, service.to_json())
        panel.catalog_changed(db)
    return service.to_json()


def remove_service(panel: Panel, service_id: int) -> None:
    with panel.store.transaction() as db:
        if not panel.ops.delete_service(db, service_id):
            raise NotFound(f"unknown service {service_id}")
        panel.catalog_changed(db)


def list_services(panel: Panel) -> list[dict[str, Any]]:
    return [s.to_json() for s in panel.catalog().values()]


def replace_catalog(panel: Panel, services: list[Service]) -> None:
    with panel.store.transaction() as db:
        panel.ops.replace_services(db, [(s.service, s.to_json()) for s in services])
        panel.catalog_changed(db)


# ---------------------------------------------------------------- snapshots and reset


def snapshot(panel: Panel) -> dict[str, Any]:
    """The whole state as JSON-ready data (a consistent read inside one transaction)."""
    data: dict[str, Any] = {"format": SNAPSHOT_FORMAT, "seed": panel.seed}
    with panel.store.snapshot() as db:
        for table in panel.ops.SNAPSHOT_TABLES:
            columns, rows = panel.ops.dump(db, table)
            data[table] = {"columns": columns, "rows": rows}
    return data


def restore(panel: Panel, data: Any) -> None:
    """Replace the whole state with a snapshot. The whole snapshot is checked first (shape,
    types, money, a clock row); a bad one is refused and nothing changes. Id sequences only
    move forward, so ids handed out before the restore are not handed out again."""
    with panel.store.snapshot() as db:
        schema = {t: panel.ops.column_types(db, t) for t in panel.ops.SNAPSHOT_TABLES}
    try:
        tables = check_snapshot(data, schema, wall=panel.wall())
    except ValueError as exc:
        raise ControlError(f"snapshot refused: {exc}") from None
    with panel.store.transaction() as db:
        for table, (columns, rows) in tables.items():
            panel.ops.load(db, table, columns, rows)
        panel.ops.advance_sequences(db)
        panel.catalog_changed(db)


def reset(panel: Panel) -> None:
    panel.reset()


def specs_missing(panel: Panel, specs: list[AccountSpec]) -> list[AccountSpec]:
    db = panel.store.connection()
    return [s for s in specs if panel.ops.account_by_key(db, s.key) is None]

