"""Checking a snapshot before it replaces the panel's state. Pure: no I/O.

A snapshot (`GET /_control/snapshot`) is JSON: per table its column names and rows. Restoring
one that is wrong in any corner — a missing table, a float where money goes, "NaN" as a
balance, an empty clock table — used to half-work and leave the API answering 500. Here the
whole snapshot is checked against the store's own column types and the panel's rules first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from smmkit.mock_server.core import lifecycle as lc
from smmkit.mock_server.core.catalog import service_from_json
from smmkit.mock_server.core.clock import ClockState, check_clock
from smmkit.mock_server.core.money import parse_amount, parse_currency

SNAPSHOT_FORMAT = "smmkit-snapshot/1"
MAX_ROWS = 5_000_000
# (table, column) -> whether the amount may be negative
MONEY_COLUMNS = {("accounts", "balance"): False, ("accounts", "opening"): False,
                 ("accounts", "topups"): True, ("orders", "charge"): False,
                 ("orders", "refunded"): False, ("ledger", "amount"): True}
INTEGER_LIMIT = 2**62


def _typed(value: Any, declared: str, nullable: bool, where: str) -> None:
    if value is None:
        if not nullable:
            raise ValueError(f"{where} cannot be null")
        return
    if declared == "INTEGER":
        ok = isinstance(value, int) and not isinstance(value, bool) and \
            -INTEGER_LIMIT < value < INTEGER_LIMIT
    elif declared == "REAL":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value) and abs(value) < 1e15
    else:
        ok = isinstance(value, str) and len(value) <= 1_000_000
    if not ok:
        raise ValueError(f"{where} must be {declared.lower()}, got {str(value)[:40]!r}")


def check_snapshot(data: Any, schema: Mapping[str, Mapping[str, tuple[str, bool]]], *,
                   wall: float) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Each table's columns and rows, in restore order, when `data` is a whole, valid snapshot
    for tables shaped like `schema` (table → column → (declared type, nullable)); ValueError
    naming the first problem otherwise."""
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"not an smmkit snapshot (format {SNAPSHOT_FORMAT})")
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
    for table, types in schema.items():
        part = data.get(table)
        if not isinstance(part, dict) or not isinstance(part.get("columns"), list) \
                or not isinstance(part.get("rows"), list):
            raise ValueError(f"table {table!r} must be {{\"columns\": [...], \"rows\": [...]}}")
        columns, rows = part["columns"], part["rows"]
        if sorted(map(str, columns)) != sorted(types) or len(set(columns)) != len(columns):
            raise ValueError(f"table {table!r} must have the columns {', '.join(types)}")
        if len(rows) > MAX_ROWS:
            raise ValueError(f"table {table!r} has more than {MAX_ROWS} rows")
        for number, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(columns):
                raise ValueError(f"{table} row {number} must be a list of {len(columns)} values")
            for column, value in zip(columns, row, strict=True):
                _typed(value, *types[column], f"{table} row {number} {column}")
        named = [dict(zip(columns, row, strict=True)) for row in rows]
        _unique(table, named, "id")
        _check_rows(table, named, wall)
        tables[table] = (columns, rows)
    _check_links(tables)
    _check_money(tables)
    return tables


def _unique(table: str, rows: list[dict[str, Any]], column: str) -> None:
    seen: set[Any] = set()
    for row in rows:
        if column in row:
            if row[column] in seen:
                raise ValueError(f"{table}: {column} {row[column]!r} appears twice")
            seen.add(row[column])


def _check_rows(table: str, rows: list[dict[str, Any]], wall: float) -> None:
    for number, row in enumerate(rows):
        where = f"{table} row {number}"
        for (money_table, column), negative in MONEY_COLUMNS.items():
            if money_table == table:
                try:
                    parse_amount(row[column], column, allow_negative=negative)
                except ValueError as exc:
                    raise ValueError(f"{where}: {exc}") from None
        if table == "state":
            try:
                check_clock(ClockState(row["anchor_wall"], row["anchor_panel"], row["speed"],
                                       bool(row["frozen"])), wall)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        elif table == "accounts":
            if not row["key"] or len(row["key"]) > 256:
                raise ValueError(f"{where}: key must be 1 to 256 characters")
            try:
                parse_currency(row["currency"])
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        elif table == "orders":
            _check_order(row, where)
        elif table == "refills":
            if row["forced_status"] not in (None, *lc.REFILL_STATUSES):
                raise ValueError(f"{where}: unknown refill status {row['forced_status']!r}")
        elif table == "services":
            try:
                service_from_json(_json_object(row["data"], where))
            except (ValueError, ArithmeticError) as exc:
                raise ValueError(f"{where}: {exc}") from None
    if table == "state" and len(rows) != 1:
        raise ValueError(f"the state table needs exactly one row (the clock), got {len(rows)}")
    if table == "accounts":
        _unique(table, rows, "key")


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"{where}: not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must hold a JSON object")
    return value


def _check_order(row: dict[str, Any], where: str) -> None:
    if row["outcome"] not in lc.OUTCOMES:
        raise ValueError(f"{where}: unknown outcome {row['outcome']!r}")
    if row["final_status"] not in (None, *lc.FINAL):
        raise ValueError(f"{where}: unknown final status {row['final_status']!r}")
    if not (row["total"] > 0 and row["per_run"] > 0 and row["runs"] > 0
            and row["unit_seconds"] > 0 and row["interval"] >= 0
            and (row["runs"] == 1 or row["interval"] > 0)):
        raise ValueError(f"{where}: total, per_run, runs and unit_seconds must be positive")
    if (row["final_status"] is None) == (row["due_at"] is None):
        raise ValueError(f"{where}: an order is either active (due_at) or final "
                         "(final_status), not both or neither")
    _json_object(row["params"], where)


def _check_links(tables: dict[str, tuple[list[str], list[list[Any]]]]) -> None:
    def ids(table: str, column: str = "id") -> set[Any]:
        columns, rows = tables[table]
        at = columns.index(column)
        return {row[at] for row in rows}

    accounts = ids("accounts")
    for table in ("orders", "refills", "ledger"):
        if table in tables and not ids(table, "account_id") <= accounts:
            raise ValueError(f"{table} refer to accounts the snapshot does not have")


def _check_money(tables: dict[str, tuple[list[str], list[list[Any]]]]) -> None:
    """The conservation law across tables: for every account, balance + the charges its
    orders keep (charge - refunded) = opening + top-ups. A snapshot with an order dropped or
    a balance edited would otherwise be restored and serve a store that breaks it (fuzz)."""
    def named(table: str) -> list[dict[str, Any]]:
        columns, rows = tables[table]
        return [dict(zip(columns, row, strict=True)) for row in rows]

    kept: dict[Any, Decimal] = {}
    for order in named("orders"):
        kept[order["account_id"]] = kept.get(order["account_id"], Decimal(0)) \
            + Decimal(order["charge"]) - Decimal(order["refunded"])
    for account in named("accounts"):
        balance, spent = Decimal(account["balance"]), kept.get(account["id"], Decimal(0))
        if balance + spent != Decimal(account["opening"]) + Decimal(account["topups"]):
            raise ValueError(
                f"account {account['id']}: balance {account['balance']} + kept charges "
                f"{spent} is not opening {account['opening']} + top-ups {account['topups']}")
