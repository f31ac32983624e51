"""Regression tests for what the long fuzz run (`pytest -m fuzz tests/fuzz`) found.

1. test_fuzz_control.py::test_any_mutated_snapshot_restored, 1,000-example profile: a
   snapshot with its `orders` rows dropped (an account debited 0.09 for an order that is no
   longer there) was restored with 200, and from then on the store broke the conservation
   law — balance + kept charges ≠ opening + top-ups — for as long as it served. `restore`
   checked every row but not the money across tables.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from engines import query, table_rows
from smmkit.mock_server.core.config import DEMO_KEY, Config, build_panel
from smmkit.mock_server.web.app import create_app
from werkzeug.test import Client

TOKEN = {"Authorization": "Bearer findings-token"}


@pytest.fixture
def panel(store_db: str) -> Any:
    config = Config(db=store_db, clock="manual", admin_token="findings-token")
    built = build_panel(config)
    client = Client(create_app(built, config=config))
    answer = client.post("/api/v2", data={"key": DEMO_KEY, "action": "add", "service": "1",
                                          "link": "https://x.com/f", "quantity": "100"})
    assert "order" in answer.get_json()
    yield client, built.store
    built.store.close()


def _rows(store: Any) -> dict[str, list[tuple]]:
    rows = table_rows(store)  # either engine
    return {table: rows[table] for table in ("accounts", "orders", "ledger")}


def _conserved(store: Any) -> bool:
    for account, balance, opening, topups in query(
            store, "SELECT id, balance, opening, topups FROM accounts"):
        kept = sum((Decimal(charge) - Decimal(refunded) for charge, refunded in query(
            store, "SELECT charge, refunded FROM orders WHERE account_id = ?", (account,))),
            Decimal(0))
        if Decimal(balance) + kept != Decimal(opening) + Decimal(topups):
            return False
    return True


def _edited(snapshot: dict[str, Any], table: str, column: str | None, value: Any) -> None:
    part = snapshot[table]
    if column is None:
        part["rows"] = []
    else:
        at = part["columns"].index(column)
        part["rows"][0][at] = value


@pytest.mark.parametrize(("table", "column", "value"), [
    ("orders", None, None),  # the fuzz's example: the charged order is gone
    ("accounts", "balance", "1000"),  # the debit undone, the order kept
    ("orders", "refunded", "0.09000"),  # a refund the balance never got
])
def test_a_snapshot_that_breaks_the_money_law_is_refused(panel: Any, table: str,
                                                         column: str | None, value: Any
                                                         ) -> None:
    client, db = panel
    snapshot = client.get("/_control/snapshot", headers=TOKEN).get_json()
    _edited(snapshot, table, column, value)
    before = _rows(db)
    answer = client.post("/_control/restore", json=snapshot, headers=TOKEN)
    assert answer.status_code == 400, answer.get_data()
    assert "balance" in answer.get_json()["error"]
    assert _rows(db) == before
    assert _conserved(db)


def test_an_untouched_snapshot_still_restores(panel: Any) -> None:
    client, db = panel
    snapshot = client.get("/_control/snapshot", headers=TOKEN).get_json()
    answer = client.post("/_control/restore", json=snapshot, headers=TOKEN)
    assert answer.status_code == 200, answer.get_data()
    assert _conserved(db)
