"""Control-plane findings of the fuzz suite (tests/fuzz/test_fuzz_control.py), one test each.

Each was a 500 (several left the control or API routes failing until reset) before the control
plane validated bounds on amounts, rates, clock offsets and speeds, parsed ids as ASCII digits,
checked fault specs and validated a whole snapshot before restoring it (issue 16 item 4).

Each asserts what the issue asks of a refused control call: a JSON 4xx, nothing changed, and
every API and control route still answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hardening_support import DEMO_KEY, Serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("control-findings"), "gunicorn")
    yield server
    server.stop()


def _refused_and_nothing_broken(srv: Serve, method: str, path: str, body: Any) -> None:
    srv.reset()
    accounts = "SELECT * FROM accounts ORDER BY id"
    before = srv.db_rows(accounts), srv.db_rows("SELECT * FROM services ORDER BY 1")
    answer = srv.control(method, path, data=json.dumps(body),
                         headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text[:200]
    assert "error" in answer.json()
    assert (srv.db_rows(accounts), srv.db_rows("SELECT * FROM services ORDER BY 1")) == before
    assert srv.control("GET", "/clock").status_code == 200
    balance = requests.post(srv.api, data={"key": DEMO_KEY, "action": "balance"}, timeout=10)
    assert (balance.status_code, balance.json()["balance"]) == (200, "1000")
    assert srv.conserved()


@pytest.mark.parametrize("kind", [[], {}])
def test_fault_kind_not_a_string(served: Serve, kind: Any) -> None:
    _refused_and_nothing_broken(served, "POST", "/faults", {"kind": kind})


@pytest.mark.parametrize(("verb", "body"), [("advance", {"by": 1e13}),
                                            ("speed", {"speed": 1e300}),
                                            ("set", {"time": float("inf")})])
def test_clock_beyond_bounds(served: Serve, verb: str, body: dict) -> None:
    _refused_and_nothing_broken(served, "POST", f"/clock/{verb}", body)


@pytest.mark.parametrize("body", [
    {"top_up": 10**23},
    {"balance": "1" + "0" * 25},
])
def test_amount_beyond_bounds(served: Serve, body: dict) -> None:
    _refused_and_nothing_broken(served, "PATCH", f"/accounts/{DEMO_KEY}", body)


def test_rate_beyond_bounds(served: Serve) -> None:
    _refused_and_nothing_broken(served, "POST", "/services", {
        "service": 99, "name": "n", "type": "Default", "category": "c",
        "rate": "1" + "0" * 25, "min": 1, "max": 10})


def test_order_id_beyond_int64(served: Serve) -> None:
    served.reset()
    answer = served.control("GET", f"/orders/{2**63}")
    assert answer.status_code == 404, answer.text[:200]


def test_restore_with_a_nan_balance(served: Serve) -> None:
    served.reset()
    snapshot = served.control("GET", "/snapshot").json()
    accounts = snapshot["accounts"]
    column = accounts["columns"].index("balance")
    for row in accounts["rows"]:
        row[column] = "NaN"
    _refused_and_nothing_broken(served, "POST", "/restore", snapshot)


@pytest.mark.parametrize("advance", [0, 3600])
def test_an_order_forced_to_processing_shows_processing(advance: int) -> None:
    """Found by the diff's status probe: an order forced to Processing the instant it was
    placed (a manual clock) still showed Pending."""
    from smmkit.mock_server.core import steering
    from support import manual_panel

    panel = manual_panel()
    try:
        order = panel.add_order(DEMO_KEY, {"service": "1", "link": "https://a.com/p",
                                           "quantity": "100"})
        panel.advance(advance)
        steering.force_order(panel, order, {"status": "Processing", "force": True})
        assert panel.order_status(DEMO_KEY, order).status == "Processing"
    finally:
        panel.store.close()
