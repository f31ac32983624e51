"""`smmkit serve --server granian --db postgresql://…`: the fast server on the shared store.
A real granian server on a real port over a real PostgreSQL (tests/pg/cluster.py): accounts
made through the control API, an add, its status from every worker, a fault armed through the
control API, and a restart that finds all of it in the database, the fault's count included.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pg.servers import Server, control, serve
from support import wait_ready

# real granian servers started, stopped and started again: run by `pytest -m slow` (.ci/run)
pytestmark = pytest.mark.slow


@pytest.fixture
def granian(pg_url: str) -> Iterator[Any]:
    started: list[Server] = []

    def start() -> Server:
        started.append(serve(pg_url, "--server", "granian"))
        wait_ready(started[-1].url)  # granian prints the URL before its workers listen
        return started[-1]

    yield start
    for server in started:
        server.kill()


def api(server: Server, **params: Any) -> requests.Response:
    return requests.post(server.url, data=params, timeout=30)


def test_granian_serves_a_postgresql_panel_and_a_restart_keeps_it(granian: Any) -> None:
    first = granian()
    made = control(first, "POST", "/accounts", json={"key": "granian-key", "balance": "10.00",
                                                     "currency": "EUR"})
    assert made["key"] == "granian-key" and made["currency"] == "EUR"
    assert api(first, key="granian-key", action="balance").json() == {"balance": "10",
                                                                      "currency": "EUR"}
    order = api(first, key="granian-key", action="add", service=1, quantity=100,
                link="https://granian.test/p/1").json()["order"]
    for _ in range(8):  # new connections land on both workers: one database behind them
        status = api(first, key="granian-key", action="status", order=order).json()
        assert status["charge"] == "0.09" and status["currency"] == "EUR"
    assert api(first, key="granian-key", action="balance").json()["balance"] == "9.91"
    fault = control(first, "POST", "/faults", json={"kind": "rate_limit", "action": "status",
                                                    "count": 2})
    limited = api(first, key="granian-key", action="status", order=order)
    assert limited.status_code == 429 and limited.json() == {"error": "Too many requests"}
    refused = requests.post(f"{first.base}/_control/faults", json={"kind": "drop"}, timeout=30,
                            headers={"Authorization": "Bearer pg-test-token"})
    assert refused.status_code == 400 and "--server builtin" in refused.json()["error"]
    first.kill(signal.SIGTERM)
    assert "Traceback" not in first.stderr()

    second = granian()  # a new process: everything it knows comes from the database
    assert [f["remaining"] for f in control(second, "GET", "/faults")
            if f["id"] == fault["id"]] == [1]
    assert api(second, key="granian-key", action="status", order=order).status_code == 429
    status = api(second, key="granian-key", action="status", order=order).json()  # spent
    assert status["charge"] == "0.09" and status["currency"] == "EUR"
    assert api(second, key="granian-key", action="balance").json() == {"balance": "9.91",
                                                                       "currency": "EUR"}
    again = api(second, key="granian-key", action="add", service=1, quantity=100,
                link="https://granian.test/p/2").json()
    assert again == {"order": order + 1}  # the one id sequence goes on
    second.kill(signal.SIGTERM)
    assert "Traceback" not in second.stderr()
