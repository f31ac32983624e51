"""The storage and money seam (issue 9 item 3): the core writes no SQL and reads no row by
position; every balance change writes its ledger row in the same transaction, so for every
account `balance = opening + Σ ledger`; the hot path stays at one pulse query per request;
currencies are checked on every path into the store."""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from engines import query, sqlite_only
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.config import DEMO_KEY, Config, build_panel
from smmkit.mock_server.core.panel import Panel
from support import manual_panel

CORE = Path(__file__).resolve().parents[1] / "mock_server" / "core"
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE|PRAGMA)\b")


# config.py peeks read-only at a store before opening it (`store_has_state`, which must not
# create or migrate the file); it is the one SQL string left in the core.
SQL_ALLOWED = {("config.py", "SELECT 1 FROM state")}


def test_the_core_writes_no_sql() -> None:
    offenders = [f"{path.name}: {node.value[:60]!r}"
                 for path in CORE.glob("*.py")
                 for node in ast.walk(ast.parse(path.read_text("utf-8")))
                 if isinstance(node, ast.Constant) and isinstance(node.value, str)
                 and SQL.search(node.value) and (path.name, node.value) not in SQL_ALLOWED]
    assert offenders == []


def test_the_core_reads_no_row_by_position() -> None:
    """`row[12]` style reads (and splitting a column list to find an index) are gone."""
    offenders = []
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                    and node.value.id in ("row", "r") and isinstance(node.slice, ast.Constant) \
                    and isinstance(node.slice.value, int):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_steering_uses_no_private_name_of_the_panel() -> None:
    tree = ast.parse((CORE / "steering.py").read_text("utf-8"))
    private = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               for alias in node.names if alias.name.startswith("_")]
    attributes = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                  and node.attr.startswith("_") and not node.attr.startswith("__")]
    assert private == [] and attributes == []


def ledger_agrees(panel: Panel) -> None:
    for account_id, balance, opening in query(panel.store,
                                              "SELECT id, balance, opening FROM accounts"):
        booked = sum((Decimal(amount) for (amount,) in query(
            panel.store, "SELECT amount FROM ledger WHERE account_id = ?", (account_id,))),
            Decimal(0))
        assert Decimal(balance) == Decimal(opening) + booked


class MoneyMoves(RuleBasedStateMachine):
    """Every way money moves, in any order: the ledger explains each balance exactly."""

    @initialize()
    def start(self) -> None:
        self.panel = manual_panel()
        self.orders: list[int] = []

    def teardown(self) -> None:
        self.panel.store.close()

    @rule(service=st.sampled_from(["1", "3", "16"]), quantity=st.integers(100, 2000))
    def add(self, service: str, quantity: int) -> None:
        try:
            self.orders.append(self.panel.add_order(DEMO_KEY, {
                "service": service, "link": f"https://a.com/{len(self.orders)}",
                "quantity": str(quantity)}))
        except Exception as exc:  # noqa: BLE001 - only the catalogue's refusals are expected
            assert type(exc).__name__ in ("NotEnoughFunds", "ActiveOrder"), exc

    @rule(seconds=st.sampled_from([5, 30, 120, 3600]))
    def advance(self, seconds: int) -> None:
        self.panel.advance(seconds)

    @rule(pick=st.integers(0, 50))
    def cancel(self, pick: int) -> None:
        if self.orders:
            self.panel.cancel(DEMO_KEY, [self.orders[pick % len(self.orders)]])

    @rule(amount=st.sampled_from(["10", "-5", "0.00001", "250.12345"]))
    def top_up(self, amount: str) -> None:
        try:
            self.panel.top_up(DEMO_KEY, amount)
        except ValueError as exc:
            assert "refused" in str(exc)

    @rule(balance=st.sampled_from(["0", "77.5", "5000"]))
    def set_balance(self, balance: str) -> None:
        steering.update_account(self.panel, DEMO_KEY, {"balance": balance})

    @rule(pick=st.integers(0, 50), status=st.sampled_from(
        ["Canceled", "Partial", "Completed", "In progress", "Pending"]))
    def force(self, pick: int, status: str) -> None:
        if self.orders:
            try:
                steering.force_order(self.panel, self.orders[pick % len(self.orders)],
                                     {"status": status, "force": True})
            except steering.ControlError as exc:
                assert "refund" in str(exc) or "needs" in str(exc), exc

    @invariant()
    def ledger_explains_every_balance(self) -> None:
        self.panel.settle()
        ledger_agrees(self.panel)
        terms = self.panel.audit(DEMO_KEY)
        assert terms["balance"] + terms["charges"] == terms["opening"] + terms["topups"]


MoneyMoves.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
TestMoneyMoves = MoneyMoves.TestCase


def count_statements(panel: Panel, call: Any) -> list[str]:
    seen: list[str] = []
    db = panel.store.connection()
    db.set_trace_callback(seen.append)
    try:
        with panel.request():
            call()
    finally:
        db.set_trace_callback(None)
    return seen


@sqlite_only("SQLite's read cache, counted with its trace callback (psycopg has none)")
def test_status_and_balance_polls_cost_no_query_while_nothing_changed() -> None:
    """The hot path (storage/read_cache.py): a poll reads what it needs once, and while no
    connection commits, the same poll again costs no SQL statement at all; a commit elsewhere
    is seen by the very next poll."""
    panel = manual_panel()
    try:
        order = panel.add_order(DEMO_KEY, {"service": "1", "link": "https://a.com/x",
                                           "quantity": "100"})
        account = panel.authenticate(DEMO_KEY)
        panel.catalog()
        first = count_statements(panel, lambda: panel.order_statuses(account, [order]))
        assert len(first) == 2, first  # the order is new to the copies: pulse parts and row
        assert "MIN(due_at)" in first[0] and "FROM orders WHERE id IN" in first[1], first
        assert count_statements(panel, lambda: panel.order_statuses(account, [order])) == []
        assert len(count_statements(panel, lambda: panel.balance(account))) == 1  # its row
        assert count_statements(panel, lambda: panel.balance(account)) == []

        other = sqlite3.connect(panel.store.path)  # another process's commit, say
        other.execute("UPDATE accounts SET balance = '7' WHERE id = ?", (account.id,))
        other.commit()
        other.close()
        seen: list[Any] = []
        again = count_statements(panel, lambda: seen.append(panel.balance(account)))
        assert again[0] == "PRAGMA data_version" and seen == [(Decimal("7"), "USD")], again

        panel.catalog()  # read again since that commit
        add = count_statements(panel, lambda: panel.add_order(account, {
            "service": "1", "link": "https://a.com/y", "quantity": "100"}))
        # BEGIN, active link, next id (read: nothing written for it), insert, balance read,
        # balance write, ledger row, COMMIT: the pulse and the catalogue version come from memory
        assert [s.split()[0] for s in add] == ["BEGIN", "SELECT", "SELECT", "INSERT", "SELECT",
                                               "UPDATE", "INSERT", "COMMIT"], add
    finally:
        panel.store.close()


@pytest.mark.parametrize("currency", ["dollars", "usd", "US", "US1", "", 840])
def test_a_bad_currency_in_an_accounts_file_is_refused_by_value(tmp_path: Path, store_db: str,
                                                                currency: Any) -> None:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"key": "k1", "balance": "10", "currency": currency}]))
    with pytest.raises(ValueError) as info:
        build_panel(Config(db=store_db, clock="manual", accounts=str(accounts)))
    assert repr(str(currency) if currency == 840 else currency) in str(info.value) or \
        str(currency) in str(info.value)
    assert "ISO 4217" in str(info.value) and "'k1'" in str(info.value)


def test_a_bad_currency_is_refused_on_an_existing_store_too(tmp_path: Path,
                                                            store_db: str) -> None:
    db = store_db
    build_panel(Config(db=db, clock="manual")).store.close()
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"key": "later", "balance": "1", "currency": "dollars"}]))
    with pytest.raises(ValueError, match="'dollars' is not an ISO 4217"):
        build_panel(Config(db=db, clock="manual", accounts=str(accounts)))


def test_serve_names_the_bad_currency_in_one_line(tmp_path: Path, store_db: str) -> None:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"key": "k1", "balance": "10", "currency": "dollars"}]))
    result = subprocess.run([sys.executable, "-m", "smmkit", "serve", "--db",
                             store_db, "--accounts", str(accounts), "--port", "0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "'dollars'" in result.stderr, result.stderr


def test_control_and_core_refuse_a_bad_currency() -> None:
    panel = manual_panel()
    try:
        with pytest.raises(ValueError, match="'dollars'"):
            panel.create_account("x", "1", "dollars")
        with pytest.raises(steering.ControlError, match="'dollars'"):
            steering.update_account(panel, DEMO_KEY, {"currency": "dollars"})
        with pytest.raises(steering.ControlError, match="'dollars'"):
            steering.create_account(panel, {"key": "y", "currency": "dollars"})
        assert steering.create_account(panel, {"key": "z", "currency": "eur"})["currency"] == \
            "EUR"
    finally:
        panel.store.close()


@sqlite_only("SQLite keeps a connection per thread; PostgreSQL's go back to the pool per call")
def test_a_transaction_left_open_by_a_failure_never_serves_a_stale_snapshot() -> None:
    """Issue 16: after a failed call a thread's connection kept its old snapshot, and orders
    acknowledged since then answered "Incorrect order ID" on that thread."""
    import threading

    panel = manual_panel()
    try:
        panel.catalog()
        stray = panel.store.connection()
        stray.execute("BEGIN")  # what a call that died between BEGIN and COMMIT leaves behind
        stray.execute("SELECT COUNT(*) FROM orders").fetchall()  # its snapshot is now fixed
        placed: list[int] = []
        worker = threading.Thread(target=lambda: placed.append(panel.add_order(
            DEMO_KEY, {"service": "1", "link": "https://a.com/late", "quantity": "100"})))
        worker.start()
        worker.join(30)
        with panel.request():
            assert panel.order_status(DEMO_KEY, placed[0]).status == "Pending"
        assert not stray.in_transaction
    finally:
        panel.store.close()
