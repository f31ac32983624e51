"""What the control plane does to a panel: accounts, forced outcomes, catalogue edits,
listings, reset and snapshots. Plain Python over `Panel`; no HTTP.

Every operation is one write transaction: it validates first and changes everything or nothing.
Money stays conserved: forcing an order to a final status applies (or reverses) the refund the
status implies, and setting a balance books the difference as a top-up.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from decimal import Decimal
from typing import Any

from smmkit.mock_server.core import lifecycle as lc
from smmkit.mock_server.core.catalog import Service, service_from_json
from smmkit.mock_server.core.money import ZERO, format_money, parse_money, refund_for
from smmkit.mock_server.core.panel import _PLAN_COLUMNS, AccountSpec, Panel, _plan


class ControlError(ValueError):
    """A control request that cannot be carried out; the message says why."""


class NotFound(ControlError):
    pass


# ---------------------------------------------------------------- accounts


def list_accounts(panel: Panel) -> list[dict[str, Any]]:
    panel.settle()
    rows = panel.store.connection().execute(
        "SELECT key, balance, currency, enabled, opening, topups FROM accounts ORDER BY id")
    return [{"key": k, "balance": _m(b), "currency": c, "enabled": bool(e), "opening": _m(o),
             "topups": _m(t)} for k, b, c, e, o, t in rows]


def _m(amount: str | Decimal) -> str:
    """Money in control answers is written like on the wire: exact, trimmed, no exponent."""
    return format_money(Decimal(amount))


def get_account(panel: Panel, key: str) -> dict[str, Any]:
    for account in list_accounts(panel):
        if account["key"] == key:
            terms = panel.audit(key)
            return {**account, "charges": _m(terms["charges"])}
    raise NotFound(f"unknown account {key!r}")


def update_account(panel: Panel, key: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply any of balance (set), top_up (add), currency, enabled — all or none."""
    unknown = set(changes) - {"balance", "top_up", "currency", "enabled"}
    if unknown:
        raise ControlError(f"unknown account fields: {', '.join(sorted(unknown))}")
    with panel.store.transaction() as db:
        row = db.execute("SELECT id, balance, topups FROM accounts WHERE key = ?",
                         (key,)).fetchone()
        if row is None:
            raise NotFound(f"unknown account {key!r}")
        balance, topups = Decimal(row[1]), Decimal(row[2])
        delta = ZERO
        if "balance" in changes:
            delta = _amount(changes["balance"], "balance") - balance
        if "top_up" in changes:
            delta += _amount(changes["top_up"], "top_up", allow_negative=True)
        if balance + delta < 0:
            raise ControlError(f"balance would become negative ({balance + delta})")
        if "currency" in changes:
            currency = changes["currency"]
            if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
                raise ControlError(f"bad currency {currency!r}: three letters")
            db.execute("UPDATE accounts SET currency = ? WHERE id = ?", (currency.upper(), row[0]))
        if "enabled" in changes:
            if not isinstance(changes["enabled"], bool):
                raise ControlError(f"enabled must be true or false, got {changes['enabled']!r}")
            db.execute("UPDATE accounts SET enabled = ? WHERE id = ?",
                       (int(changes["enabled"]), row[0]))
        if delta:
            db.execute("UPDATE accounts SET balance = ?, topups = ? WHERE id = ?",
                       (str(balance + delta), str(topups + delta), row[0]))
            db.execute("INSERT INTO ledger (account_id, at, kind, amount) VALUES (?, ?, ?, ?)",
                       (row[0], panel.now(), "topup", str(delta)))
    return get_account(panel, key)


def create_account(panel: Panel, data: dict[str, Any]) -> dict[str, Any]:
    key = data.get("key")
    if not isinstance(key, str) or not key.strip() or len(key) > 256:
        raise ControlError("an account needs a non-empty string key")
    balance = _amount(data.get("balance", "0"), "balance")
    currency = data.get("currency", "USD")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        raise ControlError(f"bad currency {currency!r}: three letters")
    try:
        panel.create_account(key, balance, currency.upper())
    except ValueError as exc:
        raise ControlError(str(exc)) from None
    return get_account(panel, key)


def _forget_history(db: Any, key: str) -> int:
    """Delete one account's orders, refills and ledger inside `db`'s transaction; its id."""
    row = db.execute("SELECT id FROM accounts WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise NotFound(f"unknown account {key!r}")
    for table in ("orders", "refills", "ledger"):
        db.execute(f"DELETE FROM {table} WHERE account_id = ?", (row[0],))
    return int(row[0])


def delete_account(panel: Panel, key: str) -> None:
    with panel.store.transaction() as db:
        db.execute("DELETE FROM accounts WHERE id = ?", (_forget_history(db, key),))


def reset_account(panel: Panel, key: str) -> dict[str, Any]:
    """Forget one account's orders and refills; its balance goes back to its opening."""
    with panel.store.transaction() as db:
        db.execute("UPDATE accounts SET balance = opening, topups = '0', enabled = 1 "
                   "WHERE id = ?", (_forget_history(db, key),))
    return get_account(panel, key)


def _amount(value: Any, what: str, *, allow_negative: bool = False) -> Decimal:
    if isinstance(value, float):
        raise ControlError(f"{what} must be a decimal string or an integer, not a float")
    try:
        amount = parse_money(value)
    except ValueError:
        raise ControlError(f"{what} is not an amount: {value!r}") from None
    if amount < 0 and not allow_negative:
        raise ControlError(f"{what} cannot be negative: {value!r}")
    return amount


# ---------------------------------------------------------------- orders and refills

_ORDER_SELECT = (f"SELECT {_PLAN_COLUMNS}, id, account_id, charge, refunded, final_status, "
                 "final_remains, final_start_count, service_id, link, params, due_at FROM orders")


def _order_dict(panel: Panel, row: tuple, keys: dict[int, str], now: float) -> dict[str, Any]:
    plan = _plan(row)
    view = lc.View(row[15], row[16], row[17]) if row[15] else lc.view_at(plan, now)
    return {
        "order": row[11], "key": keys.get(row[12]), "service": row[18], "link": row[19],
        "status": view.status, "remains": view.remains, "start_count": view.start_count,
        "quantity": plan.total, "charge": _m(Decimal(row[13]) - Decimal(row[14])),
        "charged": _m(row[13]), "refunded": _m(row[14]), "outcome": plan.outcome,
        "created_at": plan.created_at, "final_at": plan.final_at, "active": row[21] is not None,
        "params": json.loads(row[20]),
    }


def list_orders(panel: Panel, *, key: str | None = None, status: str | None = None,
                service: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    now = panel.settle()
    db = panel.store.connection()
    keys = dict(db.execute("SELECT id, key FROM accounts").fetchall())
    where, args = [], []
    if key is not None:
        ids = [i for i, k in keys.items() if k == key]
        if not ids:
            raise NotFound(f"unknown account {key!r}")
        where.append("account_id = ?")
        args.append(ids[0])
    if service is not None:
        where.append("service_id = ?")
        args.append(service)
    sql = _ORDER_SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
    result = []
    for row in db.execute(sql, args):
        order = _order_dict(panel, row, keys, now)
        if status is None or order["status"].lower() == status.lower():
            result.append(order)
            if len(result) >= limit:
                break
    return result


def get_order(panel: Panel, order_id: int) -> dict[str, Any]:
    now = panel.settle()
    db = panel.store.connection()
    row = db.execute(_ORDER_SELECT + " WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        raise NotFound(f"unknown order {order_id}")
    return _order_dict(panel, row, dict(db.execute("SELECT id, key FROM accounts").fetchall()),
                       now)


def force_order(panel: Panel, order_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Steer one order: `outcome` (where it will end), or `status` with `remains` /
    `start_count` now. Only legal transitions unless `force: true`; refunds follow."""
    unknown = set(changes) - {"status", "remains", "start_count", "outcome", "force"}
    if unknown:
        raise ControlError(f"unknown order fields: {', '.join(sorted(unknown))}")
    force = changes.get("force", False)
    if not isinstance(force, bool):
        raise ControlError("force must be true or false")
    now = panel.settle()
    with panel.store.transaction() as db:
        row = db.execute(_ORDER_SELECT + " WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown order {order_id}")
        plan, charge, refunded = _plan(row), Decimal(row[13]), Decimal(row[14])
        current = row[15] or lc.view_at(plan, now).status
        if "outcome" in changes:
            if row[21] is None:
                raise ControlError(f"order {order_id} is already {current}; its outcome is set")
            remains = _int_or_none(changes.get("remains"), "remains")
            try:
                plan = lc.with_outcome(plan, str(changes["outcome"]), remains=remains)
            except ValueError as exc:
                raise ControlError(str(exc)) from None
            _write_plan(db, order_id, plan)
        elif "status" in changes:
            _force_status(db, panel, row, plan, charge, refunded, current, changes, force, now)
        elif "remains" in changes:
            _force_status(db, panel, row, plan, charge, refunded, current,
                          {**changes, "status": current}, force, now)
        if "start_count" in changes:
            start_count = _int_or_none(changes["start_count"], "start_count")
            if start_count is None or start_count < 0:
                raise ControlError("start_count must be a non-negative integer")
            db.execute("UPDATE orders SET start_count = ?, final_start_count = CASE WHEN "
                       "final_status IS NULL THEN NULL ELSE ? END WHERE id = ?",
                       (start_count, start_count, order_id))
    panel.settle()
    return get_order(panel, order_id)


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ControlError(f"{what} must be an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ControlError(f"{what} must be an integer, got {value!r}") from None


def _write_plan(db: Any, order_id: int, plan: lc.Plan) -> None:
    db.execute("UPDATE orders SET start_at = ?, unit_seconds = ?, outcome = ?, "
               "delivered_final = ?, cancel_at = ?, due_at = ? WHERE id = ?",
               (plan.start_at, plan.unit_seconds, plan.outcome, plan.delivered_final,
                plan.cancel_at, plan.final_at, order_id))


def _force_status(db: Any, panel: Panel, row: tuple, plan: lc.Plan, charge: Decimal,
                  refunded: Decimal, current: str, changes: dict[str, Any], force: bool,
                  now: float) -> None:
    order_id, account_id = row[11], row[12]
    status = changes["status"]
    if status not in lc.ORDER_STATUSES:
        raise ControlError(f"unknown status {status!r}; one of {', '.join(lc.ORDER_STATUSES)}")
    if status != current and not force and not lc.reachable(current, status):
        raise ControlError(f"illegal transition {current} -> {status} for order {order_id} "
                           "(send force: true to override)")
    if status == current and current in lc.FINAL and not force and "remains" in changes:
        raise ControlError(f"order {order_id} is already {current} (send force: true)")
    remains = _int_or_none(changes.get("remains"), "remains")
    total = plan.total
    if status in lc.FINAL:
        remains = {lc.COMPLETED: 0, lc.CANCELED: total}.get(status, remains)
        if status == lc.COMPLETED and changes.get("remains") is not None:
            remains = _int_or_none(changes["remains"], "remains")
            if remains is not None and remains > 0:
                raise ControlError("a Completed order has remains <= 0")
        if status == lc.PARTIAL:
            remains = remains if remains is not None else max(1, total // 2)
            if not 0 < remains < total:
                raise ControlError(f"a Partial order needs 0 < remains < {total}, got {remains}")
        new_refund = (refund_for(charge, remains or 0, total)
                      if status in (lc.PARTIAL, lc.CANCELED) else ZERO)
        start_count = 0 if status == lc.CANCELED else plan.start_count
        _move_money(db, account_id, order_id, new_refund - refunded, now)
        db.execute("UPDATE orders SET final_status = ?, final_remains = ?, final_start_count = ?, "
                   "final_at = ?, refunded = ?, due_at = NULL WHERE id = ?",
                   (status, remains, start_count, now, str(new_refund), order_id))
        return
    # Back to a non-final status: the order becomes active again, on a plan that shows it now.
    delay = max(plan.start_at - plan.created_at, 1.0)
    if status == lc.IN_PROGRESS:
        left = total if remains is None else remains
        if not 0 < left <= total:
            raise ControlError(f"an In progress order needs 0 < remains <= {total}, got {left}")
        start_at = now - (total - left) * plan.unit_seconds
    elif status == lc.PROCESSING:
        start_at = now + lc.PROCESSING_SHARE * delay / 2
    else:
        start_at = now + delay
    new_plan = replace(plan, created_at=min(plan.created_at, now), start_at=start_at,
                       runs=1, per_run=total, interval=0.0, cancel_at=None)
    delivered_now = total - (total if remains is None else remains)
    if plan.outcome == "provider_cancel" or (
            plan.outcome == "partial" and plan.delivered_final <= delivered_now):
        new_plan = replace(new_plan, outcome="normal", delivered_final=total)
    _move_money(db, account_id, order_id, -refunded, now)
    db.execute("UPDATE orders SET per_run = ?, runs = ?, interval = ?, created_at = ?, "
               "final_status = NULL, final_remains = NULL, final_start_count = NULL, "
               "final_at = NULL, refunded = '0' WHERE id = ?",
               (new_plan.per_run, new_plan.runs, new_plan.interval, new_plan.created_at,
                order_id))
    _write_plan(db, order_id, new_plan)


def _move_money(db: Any, account_id: int, order_id: int, refund_delta: Decimal,
                now: float) -> None:
    """Credit (or, reversing a refund, debit) an account; never below zero."""
    if not refund_delta:
        return
    balance = Decimal(db.execute("SELECT balance FROM accounts WHERE id = ?",
                                 (account_id,)).fetchone()[0])
    if balance + refund_delta < 0:
        raise ControlError(f"reversing the refund would make the balance negative "
                           f"({balance + refund_delta})")
    db.execute("UPDATE accounts SET balance = ? WHERE id = ?",
               (str(balance + refund_delta), account_id))
    db.execute("INSERT INTO ledger (account_id, at, kind, amount, order_id) VALUES (?, ?, ?, ?, ?)",
               (account_id, now, "refund", str(refund_delta), order_id))


def list_refills(panel: Panel, *, key: str | None = None) -> list[dict[str, Any]]:
    now = panel.now()
    db = panel.store.connection()
    keys = dict(db.execute("SELECT id, key FROM accounts").fetchall())
    rows = db.execute("SELECT id, order_id, account_id, created_at, rejected, forced_status "
                      "FROM refills ORDER BY id DESC").fetchall()
    return [{"refill": r[0], "order": r[1], "key": keys.get(r[2]), "created_at": r[3],
             "status": Panel._refill_status(r[3:], now)}
            for r in rows if key is None or keys.get(r[2]) == key]


def force_refill(panel: Panel, refill_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    status, force = changes.get("status"), changes.get("force", False)
    if status not in lc.REFILL_STATUSES:
        raise ControlError(f"unknown refill status {status!r}; one of "
                           f"{', '.join(lc.REFILL_STATUSES)}")
    with panel.store.transaction() as db:
        row = db.execute("SELECT created_at, rejected, forced_status FROM refills WHERE id = ?",
                         (refill_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown refill {refill_id}")
        current = Panel._refill_status(row, panel.now())
        if not force and not lc.reachable(current, status, lc.REFILL_TRANSITIONS):
            raise ControlError(f"illegal refill transition {current} -> {status} "
                               "(send force: true to override)")
        db.execute("UPDATE refills SET forced_status = ? WHERE id = ?", (status, refill_id))
    return next(r for r in list_refills(panel) if r["refill"] == refill_id)


# ---------------------------------------------------------------- catalogue


def upsert_service(panel: Panel, service_id: int | None, data: dict[str, Any]) -> dict[str, Any]:
    """Add a service (service_id None) or change fields of one; orders keep their price."""
    current = panel.catalog().get(service_id) if service_id is not None else None
    if service_id is not None and current is None:
        raise NotFound(f"unknown service {service_id}")
    base = current.to_json() if current else {}
    merged = {**base, **data}
    if current is not None:
        merged["service"] = service_id
    try:
        service = service_from_json(merged)
    except ValueError as exc:
        raise ControlError(str(exc)) from None
    if current is None and service.service in panel.catalog():
        raise ControlError(f"service {service.service} already exists")
    with panel.store.transaction() as db:
        position = db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM services").fetchone()[0]
        db.execute("INSERT INTO services (id, position, data) VALUES (?, ?, ?) ON CONFLICT(id) "
                   "DO UPDATE SET data = excluded.data",
                   (service.service, position, json.dumps(service.to_json())))
    panel.catalog_changed()
    return service.to_json()


def remove_service(panel: Panel, service_id: int) -> None:
    with panel.store.transaction() as db:
        if db.execute("DELETE FROM services WHERE id = ?", (service_id,)).rowcount == 0:
            raise NotFound(f"unknown service {service_id}")
    panel.catalog_changed()


def list_services(panel: Panel) -> list[dict[str, Any]]:
    return [s.to_json() for s in panel.catalog().values()]


def replace_catalog(panel: Panel, services: list[Service]) -> None:
    with panel.store.transaction() as db:
        db.execute("DELETE FROM services")
        for position, service in enumerate(services):
            db.execute("INSERT INTO services VALUES (?, ?, ?)",
                       (service.service, position, json.dumps(service.to_json())))
    panel.catalog_changed()


# ---------------------------------------------------------------- snapshots

SNAPSHOT_TABLES = ("state", "accounts", "services", "orders", "refills", "ledger")


def snapshot(panel: Panel) -> dict[str, Any]:
    """The whole state as JSON-ready data (a consistent read inside one transaction)."""
    with panel.store.transaction() as db:
        data: dict[str, Any] = {"format": "smmkit-snapshot/1", "seed": panel.seed}
        for table in SNAPSHOT_TABLES:
            cur = db.execute(f"SELECT * FROM {table} ORDER BY rowid")
            columns = [c[0] for c in cur.description]
            data[table] = {"columns": columns, "rows": [list(r) for r in cur.fetchall()]}
    return data


def restore(panel: Panel, data: Any) -> None:
    """Replace the whole state with a snapshot; nothing changes if the snapshot is bad."""
    if not isinstance(data, dict) or data.get("format") != "smmkit-snapshot/1":
        raise ControlError("not an smmkit snapshot (format smmkit-snapshot/1)")
    try:
        with panel.store.transaction() as db:
            for table in SNAPSHOT_TABLES:
                db.execute(f"DELETE FROM {table}")
                part = data[table]
                columns = part["columns"]
                marks = ",".join("?" * len(columns))
                db.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})",
                               part["rows"])
    except (KeyError, TypeError, ValueError, sqlite3.Error) as exc:
        raise ControlError(f"snapshot could not be restored: {exc}") from None
    panel.catalog_changed()


def reset(panel: Panel) -> None:
    panel.reset()


def specs_missing(panel: Panel, specs: list[AccountSpec]) -> list[AccountSpec]:
    db = panel.store.connection()
    return [s for s in specs
            if db.execute("SELECT 1 FROM accounts WHERE key = ?", (s.key,)).fetchone() is None]
