"""The store's schema version and the migration of a 0.1 store (a real file written by 0.1's
code: fixtures/stores/panel-0.1.db, made by fixtures/stores/make_store_0_1.py). The 0.1 file
and the version pragma are SQLite's by nature; the id sequences are checked on either engine
(tests/engines.py), PostgreSQL's schema version in tests/pg/test_pg_store.py."""

from __future__ import annotations

import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from engines import is_postgres_store, sqlite_only
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.config import DEMO_KEY, Config, build_panel
from smmkit.mock_server.storage.schema import SCHEMA_VERSION
from smmkit.mock_server.storage.sqlite import Store, StoreError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "stores" / "panel-0.1.db"
TABLES = ("state", "accounts", "services", "orders", "refills", "ledger", "faults")


def _around(path: str, postgres: bool) -> Any:
    if postgres:
        import psycopg

        return psycopg.connect(path, autocommit=True)
    return sqlite3.connect(path)


def rows(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as db:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    path = tmp_path / "panel.db"
    shutil.copy(FIXTURE, path)
    return path


@sqlite_only("the 0.1 store is an SQLite file")
def test_the_fixture_is_a_0_1_store() -> None:
    """The test below would prove nothing on a file that is already current."""
    with sqlite3.connect(FIXTURE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "sequences" not in names and {"orders", "ledger", "refills"} <= names
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 5
        assert db.execute("SELECT COUNT(*) FROM refills").fetchone()[0] == 1


@sqlite_only("the 0.1 store is an SQLite file")
def test_opening_a_0_1_store_migrates_it_and_keeps_everything(old_store: Path) -> None:
    before = rows(old_store)
    panel = build_panel(Config(db=str(old_store), clock="manual"))
    try:
        assert panel.store.found_version == 1
        with sqlite3.connect(old_store) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        after = rows(old_store)
        assert {t: after[t] for t in TABLES if t != "state"} == \
            {t: before[t] for t in TABLES if t != "state"}
        old = steering.get_account(panel, "old-key")
        assert (old["balance"], old["currency"], old["opening"], old["topups"]) == \
            ("260.05", "EUR", "250.5", "10")
        for account in steering.list_accounts(panel):
            terms = panel.audit(account["key"])
            assert terms["balance"] + terms["charges"] == terms["opening"] + terms["topups"]
        # The sequences start past every stored id, so no 0.1 id is handed out again.
        old_orders = [r[0] for r in before["orders"]]
        new = panel.add_order(DEMO_KEY, {"service": "1", "link": "https://n.com/1",
                                         "quantity": "100"})
        assert new == max(old_orders) + 1
        assert panel.order_status("old-key", old_orders[0]).status == "Canceled"
    finally:
        panel.store.close()


@sqlite_only("the 0.1 store is an SQLite file")
def test_reopening_a_migrated_store_changes_nothing(old_store: Path) -> None:
    Store(old_store).close()
    once = rows(old_store)
    store = Store(old_store)
    assert store.found_version == SCHEMA_VERSION
    store.close()
    assert rows(old_store) == once


@sqlite_only("SQLite's PRAGMA user_version (PostgreSQL's: tests/pg)")
def test_a_new_store_is_created_at_the_current_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "new.db")
    try:
        assert store.found_version == 0
        db = store.connection()
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert dict(db.execute("SELECT name, next FROM sequences").fetchall()) == \
            {"orders": 23501, "refills": 1}
    finally:
        store.close()


@sqlite_only("SQLite's PRAGMA user_version (PostgreSQL's: tests/pg)")
def test_a_store_from_a_newer_smmkit_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(path) in str(info.value) and "newer smmkit" in str(info.value)


def test_ids_are_never_reused_after_reset_or_deletion(store_db: str) -> None:
    panel = build_panel(Config(db=store_db, clock="manual"))
    try:
        params = {"service": "1", "link": "https://a.com/x", "quantity": "100"}
        first = panel.add_order(DEMO_KEY, params)
        panel.advance(86_400)
        refill = panel.refill(DEMO_KEY, [first])[first]
        panel.reset()
        second = panel.add_order(DEMO_KEY, params)
        assert second > first
        panel.create_account("gone", "100")
        third = panel.add_order("gone", params)
        steering.delete_account(panel, "gone")
        fourth = panel.add_order(DEMO_KEY, {**params, "link": "https://a.com/y"})
        assert first < second < third < fourth
        panel.advance(86_400)
        assert panel.refill(DEMO_KEY, [second])[second] > refill
    finally:
        panel.store.close()


def test_restoring_an_older_snapshot_does_not_rewind_ids(store_db: str) -> None:
    panel = build_panel(Config(db=store_db, clock="manual"))
    try:
        saved = steering.snapshot(panel)
        params = {"service": "1", "link": "https://a.com/x", "quantity": "100"}
        placed = panel.add_order(DEMO_KEY, params)
        steering.restore(panel, saved)
        assert panel.add_order(DEMO_KEY, params) == placed + 1
        assert panel.balance(DEMO_KEY)[0] < Decimal("1000")
    finally:
        panel.store.close()


def test_rows_written_around_the_store_do_not_collide_with_new_ids(store_db: str) -> None:
    """bench/populate.py bulk-inserts orders with plain SQL; the next open must skip them."""
    path = store_db
    panel = build_panel(Config(db=str(path), clock="manual"))
    postgres = is_postgres_store(panel.store)
    panel.store.close()
    with _around(path, postgres) as db:  # a connection of its own, not the store's
        db.execute("INSERT INTO orders (id, account_id, service_id, link, charge, total, "
                   "per_run, runs, interval, created_at, start_at, unit_seconds, outcome, "
                   "delivered_final, start_count, final_status, final_remains, "
                   "final_start_count, final_at) VALUES (40000, 1, 1, 'l', '1', 100, 100, 1, "
                   "0, 0, 0, 1, 'normal', 100, 5, 'Completed', 0, 5, 1)")
    panel = build_panel(Config(db=str(path), clock="manual"))
    try:
        assert panel.add_order(DEMO_KEY, {"service": "1", "link": "https://a.com/z",
                                          "quantity": "100"}) == 40001
    finally:
        panel.store.close()
