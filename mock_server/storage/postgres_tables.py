"""The named table operations of tables.py, for PostgreSQL: same names, same arguments, same
results, same exceptions — the core cannot tell the engines apart.

Differences kept inside this module: `%s` parameters; money bound and read as NUMERIC
(Decimal), and turned into strings where a snapshot is dumped, as SQLite stores them; `= ANY`
for id lists. Every write transaction of the PostgreSQL store holds one advisory lock
(postgres.py), the equivalent of SQLite's BEGIN IMMEDIATE, so the read-check-write sequences
here (the balance check, the one-active-order check, the id sequence) run one at a time across
every server on the database. The balance is still read `FOR UPDATE`, so even a writer that
bypassed the lock could not spend the same money twice.

Row ids of accounts, ledger rows and fault rules are SQLite's rowid rule (largest + 1), taken
under that lock, so both engines number them alike (fault ids are shown by the control API).
Order and refill ids come from the transactional `sequences` table, as on SQLite: a refused
add rolls its id back (PostgreSQL's nextval() would burn it and make the ids differ).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from smmkit.mock_server.storage.tables import (  # noqa: F401 - shared with SQLite's ops
    ACCOUNT_COLUMNS,
    ACTIVE_COLUMNS,
    FAULT_COLUMNS,
    MONEY_LIMIT,
    ORDER_COLUMNS,
    PLAN_COLUMNS,
    REFILL_COLUMNS,
    RESET_TABLES,
    SNAPSHOT_TABLES,
    AccountRow,
    ActiveOrderRow,
    Balance,
    BalanceRefused,
    Charges,
    ClockRow,
    FaultRow,
    Funds,
    NoSuchAccount,
    OrderRow,
    Pulse,
    RefillRow,
)

Db = Any  # a psycopg connection inside a transaction, or the store's lone-statement handle
Row = Any  # one of tables.py's records: the core reads the same rows from both engines
_PULSE = ("SELECT n AS now, EXISTS(SELECT 1 FROM orders WHERE due_at <= n) AS due, "
          "EXISTS(SELECT 1 FROM faults) AS faults "
          "FROM (SELECT CASE WHEN frozen <> 0 THEN anchor_panel "
          "ELSE anchor_panel + (%s - anchor_wall) * speed END AS n FROM state) AS clock")
_NEXT_ROWID = "(SELECT COALESCE(MAX(id), 0) + 1 FROM {table})"
# PostgreSQL type -> the declared type SQLite's table_info reports for the same column.
_DECLARED = {"bigint": "INTEGER", "integer": "INTEGER", "smallint": "INTEGER",
             "double precision": "REAL", "real": "REAL", "numeric": "TEXT", "text": "TEXT"}


def _one(db: Db, record: Any, sql: str, args: Sequence[Any] = ()) -> Row | None:
    rows = db.execute(sql, args).fetchall()
    return record._make(rows[0]) if rows else None


def _all(db: Db, record: Any, sql: str, args: Sequence[Any] = ()) -> list[Row]:
    make = record._make
    return [make(r) for r in db.execute(sql, args).fetchall()]


def _value(db: Db, sql: str, args: Sequence[Any] = ()) -> Any:
    rows = db.execute(sql, args).fetchall()
    return rows[0][0] if rows else None


def _many(db: Db, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    rows = list(rows)
    if rows:
        db.cursor().executemany(sql, rows)


# ---------------------------------------------------------------- clock and pulse


def pulse(db: Db, wall: float) -> Row | None:
    return _one(db, Pulse, _PULSE, (wall,))


def pulse_parts(db: Db) -> tuple[Any, ...] | None:
    """What the pulse is computed from (tables.pulse_parts, for SQLite's read cache; kept here
    so the two engines offer the same operations): the clock's anchors, the earliest due_at of
    an unsettled order (None: none), and whether any fault is armed."""
    rows = db.execute("SELECT anchor_wall, anchor_panel, speed, frozen, "
                      "(SELECT MIN(due_at) FROM orders WHERE due_at IS NOT NULL), "
                      "EXISTS(SELECT 1 FROM faults) FROM state").fetchall()
    return tuple(rows[0]) if rows else None


def clock_row(db: Db) -> Row | None:
    return _one(db, ClockRow, "SELECT anchor_wall, anchor_panel, speed, frozen FROM state")


def init_state(db: Db, anchor_wall: float, anchor_panel: float, speed: float, frozen: bool,
               catalog_version: int) -> None:
    db.execute("INSERT INTO state (id, anchor_wall, anchor_panel, speed, frozen, catalog_version) "
               "VALUES (1, %s, %s, %s, %s, %s)",
               (anchor_wall, anchor_panel, speed, int(frozen), catalog_version))


def write_clock(db: Db, anchor_wall: float, anchor_panel: float, speed: float,
                frozen: bool) -> None:
    db.execute("UPDATE state SET anchor_wall = %s, anchor_panel = %s, speed = %s, frozen = %s",
               (anchor_wall, anchor_panel, speed, int(frozen)))


def has_state(db: Db) -> bool:
    return _value(db, "SELECT 1 FROM state") is not None


def any_due(db: Db, now: float) -> bool:
    return bool(_value(db, "SELECT EXISTS(SELECT 1 FROM orders WHERE due_at <= %s)", (now,)))


def reset_all(db: Db) -> None:
    for table in RESET_TABLES:
        db.execute(f"DELETE FROM {table}")


# ---------------------------------------------------------------- catalogue


def catalog_version(db: Db) -> int | None:
    version = _value(db, "SELECT catalog_version FROM state")
    return None if version is None else int(version)


def set_catalog_version(db: Db, version: int) -> None:
    db.execute("UPDATE state SET catalog_version = %s", (version,))


def service_data(db: Db) -> list[dict[str, Any]]:
    return [json.loads(data) for (data,) in
            db.execute("SELECT data FROM services ORDER BY position, id").fetchall()]


def replace_services(db: Db, services: Iterable[tuple[int, dict[str, Any]]]) -> None:
    db.execute("DELETE FROM services")
    _many(db, "INSERT INTO services (id, position, data) VALUES (%s, %s, %s)",
          [(sid, pos, json.dumps(data)) for pos, (sid, data) in enumerate(services)])


def upsert_service(db: Db, service_id: int, data: dict[str, Any]) -> None:
    db.execute("INSERT INTO services (id, position, data) VALUES "
               "(%s, (SELECT COALESCE(MAX(position), -1) + 1 FROM services), %s) "
               "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
               (service_id, json.dumps(data)))


def delete_service(db: Db, service_id: int) -> bool:
    return db.execute("DELETE FROM services WHERE id = %s", (service_id,)).rowcount > 0


# ---------------------------------------------------------------- accounts and money


def insert_account(db: Db, key: str, balance: Decimal, currency: str) -> int | None:
    """The new account's id, or None when the key is taken (the transaction stays usable)."""
    new_id = _value(db, "INSERT INTO accounts (id, key, balance, currency, opening) VALUES "
                        f"({_NEXT_ROWID.format(table='accounts')}, %s, %s, %s, %s) "
                        "ON CONFLICT (key) DO NOTHING RETURNING id",
                    (key, balance, currency, balance))
    return None if new_id is None else int(new_id)


def account_by_key(db: Db, key: str) -> Row | None:
    return _one(db, AccountRow, f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE key = %s",
                (key,))


def account_by_id(db: Db, account_id: int) -> Row | None:
    return _one(db, AccountRow, f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = %s",
                (account_id,))


def balance_of(db: Db, account_id: int) -> Row | None:
    return _one(db, Balance, "SELECT balance, currency FROM accounts WHERE id = %s",
                (account_id,))


def accounts(db: Db) -> list[Row]:
    return _all(db, AccountRow, f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id")


def account_keys(db: Db) -> dict[int, str]:
    return {int(i): k for i, k in db.execute("SELECT id, key FROM accounts").fetchall()}


def move_money(db: Db, account_id: int, delta: Decimal, *, kind: str, at: float,
               order_id: int | None = None, topup: bool = False) -> Decimal:
    """THE balance change (see tables.move_money): the balance is read FOR UPDATE, checked,
    written with its ledger row in the caller's transaction. The new balance."""
    row = _one(db, Funds, "SELECT balance, topups FROM accounts WHERE id = %s FOR UPDATE",
               (account_id,))
    if row is None:
        raise NoSuchAccount(account_id)
    balance = Decimal(row.balance)
    after = balance + delta
    if after < 0 or after >= MONEY_LIMIT:
        raise BalanceRefused(balance, delta)
    if topup:
        db.execute("UPDATE accounts SET balance = %s, topups = %s WHERE id = %s",
                   (after, Decimal(row.topups) + delta, account_id))
    else:
        db.execute("UPDATE accounts SET balance = %s WHERE id = %s", (after, account_id))
    db.execute("INSERT INTO ledger (id, account_id, at, kind, amount, order_id) VALUES "
               f"({_NEXT_ROWID.format(table='ledger')}, %s, %s, %s, %s, %s)",
               (account_id, at, kind, delta, order_id))
    return after


def set_account_flags(db: Db, account_id: int, *, currency: str | None = None,
                      enabled: bool | None = None) -> None:
    if currency is not None:
        db.execute("UPDATE accounts SET currency = %s WHERE id = %s", (currency, account_id))
    if enabled is not None:
        db.execute("UPDATE accounts SET enabled = %s WHERE id = %s", (int(enabled), account_id))


def forget_history(db: Db, account_id: int) -> None:
    for table in ("orders", "refills", "ledger"):
        db.execute(f"DELETE FROM {table} WHERE account_id = %s", (account_id,))


def reopen_account(db: Db, account_id: int) -> None:
    db.execute("UPDATE accounts SET balance = opening, topups = 0, enabled = 1 WHERE id = %s",
               (account_id,))


def delete_account(db: Db, account_id: int) -> None:
    forget_history(db, account_id)
    db.execute("DELETE FROM accounts WHERE id = %s", (account_id,))


def kept_charges(db: Db, account_id: int) -> list[Row]:
    return _all(db, Charges, "SELECT charge, refunded FROM orders WHERE account_id = %s",
                (account_id,))


# ---------------------------------------------------------------- orders


def next_id(db: Db, sequence: str) -> int:
    """The next id of `sequence` ("orders", "refills"); never handed out twice."""
    value = _value(db, "UPDATE sequences SET next = next + 1 WHERE name = %s "
                       "RETURNING next - 1", (sequence,))
    if value is None:
        raise LookupError(f"no sequence {sequence!r}")
    return int(value)


def active_order_exists(db: Db, account_id: int, service_id: int, link: str) -> bool:
    return _value(db, "SELECT 1 FROM orders WHERE account_id = %s AND service_id = %s AND "
                    "link = %s AND due_at IS NOT NULL LIMIT 1",
                (account_id, service_id, link)) is not None


def insert_order(db: Db, *, order_id: int, account_id: int, service_id: int, link: str,
                 charge: Decimal, plan: Sequence[Any], due_at: float,
                 params: dict[str, Any]) -> None:
    marks = ", ".join(["%s"] * 18)
    db.execute(f"INSERT INTO orders (id, account_id, service_id, link, charge, {PLAN_COLUMNS}, "
               f"due_at, params) VALUES ({marks})",
               (order_id, account_id, service_id, link, charge, *plan, due_at,
                json.dumps(params)))


def orders_of(db: Db, account_id: int, ids: Sequence[int]) -> dict[int, Row]:
    if not ids:
        return {}
    rows = _all(db, ActiveOrderRow, f"SELECT {ACTIVE_COLUMNS} FROM orders WHERE id = ANY(%s) "
                "AND account_id = %s", (list(ids), account_id))
    return {row.id: row for row in rows}


def order(db: Db, order_id: int) -> Row | None:
    return _one(db, OrderRow, f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = %s", (order_id,))


def orders(db: Db, *, account_id: int | None = None, service_id: int | None = None) -> list[Row]:
    where, args = [], []
    if account_id is not None:
        where.append("account_id = %s")
        args.append(account_id)
    if service_id is not None:
        where.append("service_id = %s")
        args.append(service_id)
    sql = (f"SELECT {ORDER_COLUMNS} FROM orders" + (" WHERE " + " AND ".join(where) if where
                                                    else "") + " ORDER BY id DESC")
    return _all(db, OrderRow, sql, args)


def due_orders(db: Db, now: float, account_id: int | None = None) -> list[Row]:
    if account_id is None:
        return _all(db, ActiveOrderRow, f"SELECT {ACTIVE_COLUMNS} FROM orders "
                    "WHERE due_at <= %s ORDER BY due_at, id", (now,))
    return _all(db, ActiveOrderRow, f"SELECT {ACTIVE_COLUMNS} FROM orders WHERE account_id = %s "
                "AND due_at <= %s", (account_id, now))


def set_cancel(db: Db, order_id: int, cancel_at: float, due_at: float) -> None:
    db.execute("UPDATE orders SET cancel_at = %s, due_at = %s WHERE id = %s",
               (cancel_at, due_at, order_id))


def book_final(db: Db, order_id: int, *, status: str, remains: int, start_count: int,
               final_at: float, refunded: Decimal) -> None:
    db.execute("UPDATE orders SET final_status = %s, final_remains = %s, "
               "final_start_count = %s, final_at = %s, refunded = %s, due_at = NULL "
               "WHERE id = %s", (status, remains, start_count, final_at, refunded, order_id))


def write_plan(db: Db, order_id: int, *, per_run: int, runs: int, interval: float,
               created_at: float, start_at: float, unit_seconds: float, outcome: str,
               delivered_final: int, cancel_at: float | None, due_at: float) -> None:
    db.execute("UPDATE orders SET per_run = %s, runs = %s, interval = %s, created_at = %s, "
               "start_at = %s, unit_seconds = %s, outcome = %s, delivered_final = %s, "
               "cancel_at = %s, due_at = %s WHERE id = %s",
               (per_run, runs, interval, created_at, start_at, unit_seconds, outcome,
                delivered_final, cancel_at, due_at, order_id))


def unbook_final(db: Db, order_id: int) -> None:
    db.execute("UPDATE orders SET final_status = NULL, final_remains = NULL, "
               "final_start_count = NULL, final_at = NULL, refunded = 0 WHERE id = %s",
               (order_id,))


def set_start_count(db: Db, order_id: int, start_count: int) -> None:
    db.execute("UPDATE orders SET start_count = %s, final_start_count = CASE WHEN "
               "final_status IS NULL THEN NULL ELSE %s END WHERE id = %s",
               (start_count, start_count, order_id))


# ---------------------------------------------------------------- refills


def insert_refill(db: Db, refill_id: int, order_id: int, account_id: int, created_at: float,
                  rejected: bool) -> None:
    db.execute("INSERT INTO refills (id, order_id, account_id, created_at, rejected) "
               "VALUES (%s, %s, %s, %s, %s)",
               (refill_id, order_id, account_id, created_at, int(rejected)))


def refills_of_order(db: Db, order_id: int) -> list[Row]:
    return _all(db, RefillRow, f"SELECT {REFILL_COLUMNS} FROM refills WHERE order_id = %s",
                (order_id,))


def refills_of(db: Db, account_id: int, ids: Sequence[int]) -> dict[int, Row]:
    if not ids:
        return {}
    rows = _all(db, RefillRow, f"SELECT {REFILL_COLUMNS} FROM refills WHERE id = ANY(%s) "
                "AND account_id = %s", (list(ids), account_id))
    return {row.id: row for row in rows}


def refill(db: Db, refill_id: int) -> Row | None:
    return _one(db, RefillRow, f"SELECT {REFILL_COLUMNS} FROM refills WHERE id = %s",
                (refill_id,))


def refills(db: Db) -> list[Row]:
    return _all(db, RefillRow, f"SELECT {REFILL_COLUMNS} FROM refills ORDER BY id DESC")


def force_refill(db: Db, refill_id: int, status: str) -> None:
    db.execute("UPDATE refills SET forced_status = %s WHERE id = %s", (status, refill_id))


# ---------------------------------------------------------------- faults


def insert_fault(db: Db, *, kind: str, action: str, key: str | None, remaining: int | None,
                 probability: float | None, params: dict[str, Any]) -> int:
    new_id = _value(db, "INSERT INTO faults (id, kind, action, key, remaining, probability, "
                        f"params) VALUES ({_NEXT_ROWID.format(table='faults')}, %s, %s, %s, "
                        "%s, %s, %s) RETURNING id",
                    (kind, action, key, remaining, probability, json.dumps(params)))
    return int(new_id)


def faults(db: Db, action: str | None = None, key: str | None = None) -> list[Row]:
    sql = f"SELECT {FAULT_COLUMNS} FROM faults"
    if action is None:
        return _all(db, FaultRow, sql + " ORDER BY id")
    return _all(db, FaultRow, sql + " WHERE (action = '*' OR action = %s) AND (key IS NULL OR "
                "key = %s) ORDER BY id", (action, key))


def delete_faults(db: Db, fault_id: int | None = None) -> int:
    if fault_id is None:
        return int(db.execute("DELETE FROM faults").rowcount)
    return int(db.execute("DELETE FROM faults WHERE id = %s", (fault_id,)).rowcount)


def use_fault(db: Db, fault_id: int, remaining: int | None) -> None:
    if remaining is None:
        db.execute("UPDATE faults SET seen = seen + 1 WHERE id = %s", (fault_id,))
    elif remaining <= 1:
        db.execute("DELETE FROM faults WHERE id = %s", (fault_id,))
    else:
        db.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = %s", (fault_id,))


# ---------------------------------------------------------------- snapshots


def _table_info(db: Db, table: str) -> list[tuple[str, str, bool]]:
    return db.execute(
        "SELECT c.column_name AS name, c.data_type AS type, c.is_nullable = 'YES' AS nullable "
        "FROM information_schema.columns c WHERE c.table_schema = current_schema() "
        "AND c.table_name = %s ORDER BY c.ordinal_position", (table,)).fetchall()


def columns_of(db: Db, table: str) -> list[str]:
    return [name for name, _, _ in _table_info(db, table)]


def column_types(db: Db, table: str) -> dict[str, tuple[str, bool]]:
    """Each column's type, named as SQLite declares the same column, and whether it may be
    NULL (a primary key never may: it is NOT NULL here)."""
    return {name: (_DECLARED.get(kind, kind.upper()), bool(nullable))
            for name, kind, nullable in _table_info(db, table)}


def dump(db: Db, table: str) -> tuple[list[str], list[list[Any]]]:
    """Rows in id order, money as the strings SQLite stores, so snapshots of both engines are
    the same JSON."""
    cur = db.execute(f"SELECT * FROM {table} ORDER BY id")
    columns = [c.name for c in cur.description]
    return columns, [[str(v) if isinstance(v, Decimal) else v for v in r]
                     for r in cur.fetchall()]


def load(db: Db, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Replace a table's rows (`columns` checked by the caller against `columns_of`)."""
    db.execute(f"DELETE FROM {table}")
    marks = ", ".join(["%s"] * len(columns))
    _many(db, f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def advance_sequences(db: Db) -> None:
    for table in ("orders", "refills"):
        db.execute(f"UPDATE sequences SET next = GREATEST(next, (SELECT COALESCE(MAX(id) + 1, 0) "
                   f"FROM {table})) WHERE name = %s", (table,))
