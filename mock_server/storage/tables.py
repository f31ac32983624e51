"""Named operations over the panel's tables: every SQL statement the core runs, in one place.

The core never writes SQL: it opens a transaction (`store.transaction()`, `store.snapshot()`)
or takes `store.connection()` for a lone read, and hands that handle to these functions. Rows
come back as small named records (namedtuples named after the columns: read by name, as
cheap as tuples on the hot path). Parameter style (`?`), SQL dialect and DDL
(schema.py) are SQLite's and live only in this package, so a second engine can sit behind the
same names (a `Store` for it carries its own `ops` module) without touching the core.

Money has one door: `move_money` changes a balance and writes its ledger row in the caller's
transaction, and refuses a balance that would go negative or past what money can hold.
"""

from __future__ import annotations

import json
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

Db = sqlite3.Connection
Row = Any  # one of the records below

PLAN_COLUMNS = ("total, per_run, runs, interval, created_at, start_at, unit_seconds, outcome, "
                "delivered_final, start_count, cancel_at")
ORDER_COLUMNS = (f"id, account_id, service_id, link, charge, refunded, {PLAN_COLUMNS}, "
                 "final_status, final_remains, final_start_count, final_at, due_at, params")
# What status, cancel, refill and settling read: everything but link and params.
ACTIVE_COLUMNS = (f"id, account_id, service_id, charge, refunded, {PLAN_COLUMNS}, "
                  "final_status, final_remains, final_start_count, final_at, due_at")
REFILL_COLUMNS = "id, order_id, account_id, created_at, rejected, forced_status"
ACCOUNT_COLUMNS = "id, key, balance, currency, enabled, opening, topups"
FAULT_COLUMNS = "id, kind, action, key, remaining, probability, params, seen"


def _record(name: str, columns: str) -> Any:
    return namedtuple(name, [c.strip() for c in columns.split(",")])


OrderRow = _record("OrderRow", ORDER_COLUMNS)
ActiveOrderRow = _record("ActiveOrderRow", ACTIVE_COLUMNS)
RefillRow = _record("RefillRow", REFILL_COLUMNS)
AccountRow = _record("AccountRow", ACCOUNT_COLUMNS)
FaultRow = _record("FaultRow", FAULT_COLUMNS)
Pulse = _record("Pulse", "now, due, faults")
ClockRow = _record("ClockRow", "anchor_wall, anchor_panel, speed, frozen")
Charges = _record("Charges", "charge, refunded")
Funds = _record("Funds", "balance, topups")
Balance = _record("Balance", "balance, currency")
TableColumn = _record("TableColumn", "cid, name, type, notnull, default, pk")
MONEY_LIMIT = Decimal(10) ** 15  # 15 integer digits: what a balance column may hold
# Tables a snapshot carries, in the order a restore writes them.
SNAPSHOT_TABLES = ("state", "accounts", "services", "orders", "refills", "ledger")
RESET_TABLES = SNAPSHOT_TABLES  # faults, meta and the id sequences survive a reset

# One query per request: the panel's now (same arithmetic as ClockState.now), whether any
# order is due for settling by then, and whether any fault rule is armed.
_PULSE = ("SELECT n AS now, EXISTS(SELECT 1 FROM orders WHERE due_at <= n) AS due, "
          "EXISTS(SELECT 1 FROM faults) AS faults "
          "FROM (SELECT CASE WHEN frozen THEN anchor_panel "
          "ELSE anchor_panel + (? - anchor_wall) * speed END AS n FROM state)")


class NoSuchAccount(LookupError):
    """The account was deleted (or reset away) while the request was under way."""


class BalanceRefused(ValueError):
    """A balance change that would leave the balance negative or beyond what money holds."""

    def __init__(self, balance: Decimal, delta: Decimal) -> None:
        after = balance + delta
        why = "negative" if after < 0 else f"above {MONEY_LIMIT - 1}"
        super().__init__(f"balance {balance} {'+' if delta >= 0 else '-'} {abs(delta)} would be "
                         f"{why}")
        self.balance, self.delta = balance, delta


def _one(db: Db, record: Any, sql: str, args: Sequence[Any] = ()) -> Row | None:
    """The first row as a `record`, with the statement finished: a statement left stepping
    would hold its read snapshot open on this thread's connection."""
    rows = db.execute(sql, args).fetchall()
    return record._make(rows[0]) if rows else None


def _all(db: Db, record: Any, sql: str, args: Sequence[Any] = ()) -> list[Row]:
    make: Callable[[Any], Row] = record._make
    return [make(r) for r in db.execute(sql, args).fetchall()]


def _value(db: Db, sql: str, args: Sequence[Any] = ()) -> Any:
    """The one value a one-column, one-row query answers (None when it has no row)."""
    rows = db.execute(sql, args).fetchall()
    return rows[0][0] if rows else None


# ---------------------------------------------------------------- clock and pulse


def pulse(db: Db, wall: float) -> Row | None:
    return _one(db, Pulse, _PULSE, (wall,))


def pulse_parts(db: Db) -> tuple[Any, ...] | None:
    """What the pulse is computed from, for a cache (read_cache.py): the clock's anchors, the
    earliest due_at of an unsettled order (None: none), and whether any fault is armed."""
    rows = db.execute("SELECT anchor_wall, anchor_panel, speed, frozen, "
                      "(SELECT MIN(due_at) FROM orders WHERE due_at IS NOT NULL), "
                      "EXISTS(SELECT 1 FROM faults) FROM state").fetchall()
    return tuple(rows[0]) if rows else None


def clock_row(db: Db) -> Row | None:
    return _one(db, ClockRow, "SELECT anchor_wall, anchor_panel, speed, frozen FROM state")


def init_state(db: Db, anchor_wall: float, anchor_panel: float, speed: float, frozen: bool,
               catalog_version: int) -> None:
    db.execute("INSERT INTO state (id, anchor_wall, anchor_panel, speed, frozen, catalog_version) "
               "VALUES (1, ?, ?, ?, ?, ?)",
               (anchor_wall, anchor_panel, speed, int(frozen), catalog_version))


def write_clock(db: Db, anchor_wall: float, anchor_panel: float, speed: float,
                frozen: bool) -> None:
    db.execute("UPDATE state SET anchor_wall = ?, anchor_panel = ?, speed = ?, frozen = ?",
               (anchor_wall, anchor_panel, speed, int(frozen)))


def has_state(db: Db) -> bool:
    return _value(db, "SELECT 1 FROM state") is not None


def any_due(db: Db, now: float) -> bool:
    return bool(_value(db, "SELECT EXISTS(SELECT 1 FROM orders WHERE due_at <= ?)", (now,)))


def reset_all(db: Db) -> None:
    advance_sequences(db)
    for table in RESET_TABLES:
        db.execute(f"DELETE FROM {table}")


# ---------------------------------------------------------------- catalogue


def catalog_version(db: Db) -> int | None:
    version = _value(db, "SELECT catalog_version FROM state")
    return None if version is None else int(version)


def set_catalog_version(db: Db, version: int) -> None:
    db.execute("UPDATE state SET catalog_version = ?", (version,))


def service_data(db: Db) -> list[dict[str, Any]]:
    return [json.loads(data) for (data,) in
            db.execute("SELECT data FROM services ORDER BY position, id").fetchall()]


def replace_services(db: Db, services: Iterable[tuple[int, dict[str, Any]]]) -> None:
    db.execute("DELETE FROM services")
    db.executemany("INSERT INTO services (id, position, data) VALUES (?, ?, ?)",
                   [(sid, pos, json.dumps(data)) for pos, (sid, data) in enumerate(services)])


def upsert_service(db: Db, service_id: int, data: dict[str, Any]) -> None:
    db.execute("INSERT INTO services (id, position, data) VALUES "
               "(?, (SELECT COALESCE(MAX(position), -1) + 1 FROM services), ?) "
               "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
               (service_id, json.dumps(data)))


def delete_service(db: Db, service_id: int) -> bool:
    return db.execute("DELETE FROM services WHERE id = ?", (service_id,)).rowcount > 0


# ---------------------------------------------------------------- accounts and money


def insert_account(db: Db, key: str, balance: Decimal, currency: str) -> int | None:
    """The new account's id, or None when the key is taken."""
    try:
        cur = db.execute("INSERT INTO accounts (key, balance, currency, opening) "
                         "VALUES (?, ?, ?, ?)", (key, str(balance), currency, str(balance)))
    except sqlite3.IntegrityError:
        return None
    return int(cur.lastrowid or 0)


def account_by_key(db: Db, key: str) -> Row | None:
    return _one(db, AccountRow, f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE key = ?", (key,))


def account_by_id(db: Db, account_id: int) -> Row | None:
    return _one(db, AccountRow, f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?",
                (account_id,))


def balance_of(db: Db, account_id: int) -> Row | None:
    """Balance and currency only: the `balance` action's one read."""
    return _one(db, Balance, "SELECT balance, currency FROM accounts WHERE id = ?", (account_id,))


def accounts(db: Db) -> list[Row]:
    return _all(db, AccountRow, f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id")


def account_keys(db: Db) -> dict[int, str]:
    return dict(db.execute("SELECT id, key FROM accounts").fetchall())


def move_money(db: Db, account_id: int, delta: Decimal, *, kind: str, at: float,
               order_id: int | None = None, topup: bool = False) -> Decimal:
    """THE balance change: add `delta` (negative: a debit) and book the ledger row with it, in
    the caller's transaction; top-ups also count in `topups`. The new balance."""
    row = _one(db, Funds, "SELECT balance, topups FROM accounts WHERE id = ?", (account_id,))
    if row is None:
        raise NoSuchAccount(account_id)
    balance = Decimal(row.balance)
    after = balance + delta
    if after < 0 or after >= MONEY_LIMIT:
        raise BalanceRefused(balance, delta)
    if topup:
        db.execute("UPDATE accounts SET balance = ?, topups = ? WHERE id = ?",
                   (str(after), str(Decimal(row.topups) + delta), account_id))
    else:
        db.execute("UPDATE accounts SET balance = ? WHERE id = ?", (str(after), account_id))
    db.execute("INSERT INTO ledger (account_id, at, kind, amount, order_id) VALUES (?, ?, ?, ?, ?)",
               (account_id, at, kind, str(delta), order_id))
    return after


def set_account_flags(db: Db, account_id: int, *, currency: str | None = None,
                      enabled: bool | None = None) -> None:
    if currency is not None:
        db.execute("UPDATE accounts SET currency = ? WHERE id = ?", (currency, account_id))
    if enabled is not None:
        db.execute("UPDATE accounts SET enabled = ? WHERE id = ?", (int(enabled), account_id))


def forget_history(db: Db, account_id: int) -> None:
    """Delete one account's orders, refills and ledger rows (their ids stay used)."""
    advance_sequences(db)
    for table in ("orders", "refills", "ledger"):
        db.execute(f"DELETE FROM {table} WHERE account_id = ?", (account_id,))


def reopen_account(db: Db, account_id: int) -> None:
    """Back to its opening balance, no top-ups, enabled (after `forget_history`)."""
    db.execute("UPDATE accounts SET balance = opening, topups = '0', enabled = 1 WHERE id = ?",
               (account_id,))


def delete_account(db: Db, account_id: int) -> None:
    forget_history(db, account_id)
    db.execute("DELETE FROM accounts WHERE id = ?", (account_id,))


def kept_charges(db: Db, account_id: int) -> list[Row]:
    """Each order's charge and refund; with the balance read in the same snapshot they satisfy
    the conservation law."""
    return _all(db, Charges, "SELECT charge, refunded FROM orders WHERE account_id = ?",
                (account_id,))


# ---------------------------------------------------------------- orders


SEQUENCED = ("orders", "refills")  # tables whose ids come from `next_id`


def next_id(db: Db, sequence: str) -> int:
    """The next id of `sequence` ("orders", "refills"); never handed out twice: past every
    stored id, and past the sequence's floor, which `advance_sequences` raises past every
    id before any row goes. Nothing is written: a row in `sequences` rewritten by every add was
    a page more in each commit."""
    if sequence not in SEQUENCED:
        raise LookupError(f"no sequence {sequence!r}")
    value = _value(db, f"SELECT MAX(next, COALESCE((SELECT MAX(id) FROM {sequence}), 0) + 1) "
                       "FROM sequences WHERE name = ?", (sequence,))
    if value is None:
        raise LookupError(f"no sequence {sequence!r}")
    return int(value)


def active_order_exists(db: Db, account_id: int, service_id: int, link: str) -> bool:
    return _value(db, "SELECT 1 FROM orders WHERE account_id = ? AND service_id = ? AND link = ? "
                      "AND due_at IS NOT NULL LIMIT 1", (account_id, service_id, link)) is not None


def insert_order(db: Db, *, order_id: int, account_id: int, service_id: int, link: str,
                 charge: Decimal, plan: Sequence[Any], due_at: float,
                 params: dict[str, Any]) -> None:
    """`plan`: the values of PLAN_COLUMNS, in that order."""
    db.execute(f"INSERT INTO orders (id, account_id, service_id, link, charge, {PLAN_COLUMNS}, "
               "due_at, params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (order_id, account_id, service_id, link, str(charge), *plan, due_at,
                json.dumps(params)))


def orders_of(db: Db, account_id: int, ids: Sequence[int]) -> dict[int, Row]:
    """The account's orders among `ids`, by id (others' orders and unknown ids are absent)."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = _all(db, ActiveOrderRow, f"SELECT {ACTIVE_COLUMNS} FROM orders WHERE id IN ({marks}) "
                "AND account_id = ?", (*ids, account_id))
    return {row.id: row for row in rows}


def order(db: Db, order_id: int) -> Row | None:
    return _one(db, OrderRow, f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?", (order_id,))


def orders(db: Db, *, account_id: int | None = None, service_id: int | None = None) -> list[Row]:
    """Orders newest first, optionally of one account and/or one service."""
    where, args = [], []
    if account_id is not None:
        where.append("account_id = ?")
        args.append(account_id)
    if service_id is not None:
        where.append("service_id = ?")
        args.append(service_id)
    sql = (f"SELECT {ORDER_COLUMNS} FROM orders" + (" WHERE " + " AND ".join(where) if where
                                                    else "") + " ORDER BY id DESC")
    return _all(db, OrderRow, sql, args)


def due_orders(db: Db, now: float, account_id: int | None = None) -> list[Row]:
    """Orders whose final time has passed but whose final state is not yet booked."""
    if account_id is None:
        return _all(db, ActiveOrderRow, f"SELECT {ACTIVE_COLUMNS} FROM orders WHERE due_at <= ? "
                    "ORDER BY due_at, id", (now,))
    return _all(db, ActiveOrderRow, f"SELECT {ACTIVE_COLUMNS} FROM orders WHERE account_id = ? "
                "AND due_at <= ?", (account_id, now))


def set_cancel(db: Db, order_id: int, cancel_at: float, due_at: float) -> None:
    db.execute("UPDATE orders SET cancel_at = ?, due_at = ? WHERE id = ?",
               (cancel_at, due_at, order_id))


def book_final(db: Db, order_id: int, *, status: str, remains: int, start_count: int,
               final_at: float, refunded: Decimal) -> None:
    db.execute("UPDATE orders SET final_status = ?, final_remains = ?, final_start_count = ?, "
               "final_at = ?, refunded = ?, due_at = NULL WHERE id = ?",
               (status, remains, start_count, final_at, str(refunded), order_id))


def write_plan(db: Db, order_id: int, *, per_run: int, runs: int, interval: float,
               created_at: float, start_at: float, unit_seconds: float, outcome: str,
               delivered_final: int, cancel_at: float | None, due_at: float) -> None:
    db.execute("UPDATE orders SET per_run = ?, runs = ?, interval = ?, created_at = ?, "
               "start_at = ?, unit_seconds = ?, outcome = ?, delivered_final = ?, cancel_at = ?, "
               "due_at = ? WHERE id = ?",
               (per_run, runs, interval, created_at, start_at, unit_seconds, outcome,
                delivered_final, cancel_at, due_at, order_id))


def unbook_final(db: Db, order_id: int) -> None:
    db.execute("UPDATE orders SET final_status = NULL, final_remains = NULL, "
               "final_start_count = NULL, final_at = NULL, refunded = '0' WHERE id = ?",
               (order_id,))


def set_start_count(db: Db, order_id: int, start_count: int) -> None:
    db.execute("UPDATE orders SET start_count = ?, final_start_count = CASE WHEN "
               "final_status IS NULL THEN NULL ELSE ? END WHERE id = ?",
               (start_count, start_count, order_id))


# ---------------------------------------------------------------- refills


def insert_refill(db: Db, refill_id: int, order_id: int, account_id: int, created_at: float,
                  rejected: bool) -> None:
    db.execute("INSERT INTO refills (id, order_id, account_id, created_at, rejected) "
               "VALUES (?, ?, ?, ?, ?)", (refill_id, order_id, account_id, created_at,
                                          int(rejected)))


def refills_of_order(db: Db, order_id: int) -> list[Row]:
    return _all(db, RefillRow, f"SELECT {REFILL_COLUMNS} FROM refills WHERE order_id = ?",
                (order_id,))


def refills_of(db: Db, account_id: int, ids: Sequence[int]) -> dict[int, Row]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = _all(db, RefillRow, f"SELECT {REFILL_COLUMNS} FROM refills WHERE id IN ({marks}) "
                "AND account_id = ?", (*ids, account_id))
    return {row.id: row for row in rows}


def refill(db: Db, refill_id: int) -> Row | None:
    return _one(db, RefillRow, f"SELECT {REFILL_COLUMNS} FROM refills WHERE id = ?",
                (refill_id,))


def refills(db: Db) -> list[Row]:
    return _all(db, RefillRow, f"SELECT {REFILL_COLUMNS} FROM refills ORDER BY id DESC")


def force_refill(db: Db, refill_id: int, status: str) -> None:
    db.execute("UPDATE refills SET forced_status = ? WHERE id = ?", (status, refill_id))


# ---------------------------------------------------------------- faults


def insert_fault(db: Db, *, kind: str, action: str, key: str | None, remaining: int | None,
                 probability: float | None, params: dict[str, Any]) -> int:
    cur = db.execute("INSERT INTO faults (kind, action, key, remaining, probability, params) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     (kind, action, key, remaining, probability, json.dumps(params)))
    return int(cur.lastrowid or 0)


def faults(db: Db, action: str | None = None, key: str | None = None) -> list[Row]:
    """Every rule, or those that match a request's action and key, oldest first."""
    sql = f"SELECT {FAULT_COLUMNS} FROM faults"
    if action is None:
        return _all(db, FaultRow, sql + " ORDER BY id")
    return _all(db, FaultRow, sql + " WHERE (action = '*' OR action = ?) AND (key IS NULL OR "
                "key = ?) ORDER BY id", (action, key))


def delete_faults(db: Db, fault_id: int | None = None) -> int:
    if fault_id is None:
        return db.execute("DELETE FROM faults").rowcount
    return db.execute("DELETE FROM faults WHERE id = ?", (fault_id,)).rowcount


def use_fault(db: Db, fault_id: int, remaining: int | None) -> None:
    """Count one strike: a counted rule loses one (and goes at zero), a random one a draw."""
    if remaining is None:
        db.execute("UPDATE faults SET seen = seen + 1 WHERE id = ?", (fault_id,))
    elif remaining <= 1:
        db.execute("DELETE FROM faults WHERE id = ?", (fault_id,))
    else:
        db.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (fault_id,))


# ---------------------------------------------------------------- snapshots


def columns_of(db: Db, table: str) -> list[str]:
    return [c.name for c in _all(db, TableColumn, f"PRAGMA table_info({table})")]


def column_types(db: Db, table: str) -> dict[str, tuple[str, bool]]:
    """Each column's declared type and whether it may be NULL."""
    return {c.name: (c.type.upper(), not c.notnull and not c.pk)
            for c in _all(db, TableColumn, f"PRAGMA table_info({table})")}


def dump(db: Db, table: str) -> tuple[list[str], list[list[Any]]]:
    cur = db.execute(f"SELECT * FROM {table} ORDER BY rowid")
    columns = [c[0] for c in cur.description]
    return columns, [list(r) for r in cur.fetchall()]


def load(db: Db, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Replace a table's rows. `columns` must be names `columns_of` listed (checked by the
    caller: they are spliced into the statement)."""
    if table in SEQUENCED:
        advance_sequences(db)
    db.execute(f"DELETE FROM {table}")
    marks = ",".join("?" * len(columns))
    db.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)


def advance_sequences(db: Db) -> None:
    """Move each id sequence's floor past every stored id, never backwards: before rows of a
    sequenced table are deleted (a reset, a forgotten account, a restore), so their ids stay
    used, and after rows were written around the store (a restore, bench/populate.py)."""
    for table in SEQUENCED:
        db.execute(f"UPDATE sequences SET next = MAX(next, (SELECT COALESCE(MAX(id) + 1, 0) "
                   f"FROM {table})) WHERE name = ?", (table,))
