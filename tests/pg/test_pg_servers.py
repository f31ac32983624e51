"""Several `smmkit serve` processes on one PostgreSQL database behave as one panel: racing adds
through two servers never double-spend, a server killed mid-load loses nothing it
acknowledged, and a database stopped mid-load costs 503s (JSON, no traceback), never a
half-written order; service resumes when it is back.

Real processes on real ports, a real PostgreSQL (tests/pg/cluster.py); a frozen panel clock
(set by the test's own panel, which the servers find in the database), so no order finishes
and refunds during a race: the affordable number is exact.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from pg.servers import Server, Tally, control, race, serve
from smmkit.mock_server.core.config import Config, build_panel
from smmkit.mock_server.core.panel import FIRST_ORDER_ID, Panel

# Several real servers on one real database for tens of seconds: soak tests, deselected by
# default and run by `pytest -m slow` (.ci/run runs them on their own).
pytestmark = pytest.mark.slow

KEY = "race-key"
CHARGE = Decimal("0.09")  # service 1 (rate 0.90 per 1000) at quantity 100
THREADS, PER_THREAD = 16, 200
AFFORDABLE = 1000


@pytest.fixture
def spawn() -> Iterator[Callable[[str], Server]]:
    """`serve(db)`, every server it started killed at teardown (also when a later one failed
    to start, or an assertion stopped the test half-way)."""
    started: list[Server] = []

    def start(db: str) -> Server:
        started.append(serve(db))
        return started[-1]

    yield start
    for server in started:
        server.kill()


def shared_panel(url: str, balance: Decimal) -> Panel:
    panel = build_panel(Config(db=url, clock="manual"))  # first on the database: clock frozen
    panel.create_account(KEY, balance)
    return panel


def stored_orders(panel: Panel) -> dict[int, Any]:
    account = panel.ops.account_by_key(panel.store.connection(), KEY)
    return {r.id: r for r in panel.ops.orders(panel.store.connection(), account_id=account.id)}


def assert_conserved(panel: Panel, orders: dict[int, Any], opening: Decimal) -> None:
    """Balance = opening - every stored charge, and each order has exactly its charge booked."""
    db = panel.store.connection()
    account = panel.ops.account_by_key(db, KEY)
    assert Decimal(account.balance) == opening - sum(
        (Decimal(o.charge) for o in orders.values()), Decimal(0))
    audit = panel.audit(KEY)
    assert audit["balance"] + audit["charges"] == audit["opening"] + audit["topups"]
    ledger = db.execute("SELECT order_id, amount FROM ledger WHERE account_id = %s AND "
                        "kind = 'charge'", (account.id,)).fetchall()
    assert sorted(r["order_id"] for r in ledger) == sorted(orders)  # no order without its debit
    assert all(Decimal(r["amount"]) == -CHARGE for r in ledger)


def test_racing_adds_through_two_servers_spend_exactly_the_balance(
        pg_url: str, spawn: Callable[[str], Server]) -> None:
    panel = shared_panel(pg_url, CHARGE * AFFORDABLE)
    first, second = spawn(pg_url), spawn(pg_url)
    tally = Tally()
    try:
        race([first.url, second.url], KEY, threads=THREADS, per_thread=PER_THREAD, tally=tally)
    finally:
        first.kill(signal.SIGTERM)
        second.kill(signal.SIGTERM)
    assert tally.bad == [] and tally.failed == 0
    assert len(tally.ok) == AFFORDABLE  # exactly the affordable number, across both servers
    assert sorted(tally.ok) == list(range(FIRST_ORDER_ID, FIRST_ORDER_ID + AFFORDABLE))
    assert tally.refused == ["Not enough funds on balance"] * (THREADS * PER_THREAD - AFFORDABLE)
    orders = stored_orders(panel)
    assert sorted(orders) == sorted(tally.ok)
    assert panel.balance(KEY) == (Decimal("0.00"), "USD")
    assert_conserved(panel, orders, CHARGE * AFFORDABLE)
    assert "Traceback" not in first.stderr() + second.stderr()
    panel.store.close()


def test_a_server_killed_mid_load_loses_nothing_it_acknowledged(
        pg_url: str, spawn: Callable[[str], Server]) -> None:
    opening = Decimal("10000.00")
    panel = shared_panel(pg_url, opening)
    victim, survivor = spawn(pg_url), spawn(pg_url)
    killed = threading.Event()

    def kill_once(done: int) -> None:
        if done >= 300 and not killed.is_set():
            killed.set()
            victim.kill(signal.SIGKILL)

    tally = Tally()
    try:
        race([victim.url, survivor.url], KEY, threads=8, per_thread=100, tally=tally,
             between=kill_once)
        assert killed.is_set() and tally.failed > 0  # the victim really died mid-load
        assert tally.bad == []
        orders = stored_orders(panel)
        assert set(tally.ok) <= set(orders)  # every acknowledged order exists
        assert len(orders) - len(tally.ok) <= 8  # at most one in flight per victim thread
        assert_conserved(panel, orders, opening)
        # The survivor kept serving: half the threads hit it, none of them lost a request.
        assert len(tally.ok) >= 4 * 100
        reborn = spawn(pg_url)  # restart: it rejoins the same panel
        try:
            newest = max(tally.ok)
            answer = requests.post(reborn.url, data={"key": KEY, "action": "status",
                                                     "order": newest}, timeout=10).json()
            assert answer["charge"] == str(CHARGE) and answer["currency"] == "USD"
            added = requests.post(reborn.url, data={"key": KEY, "action": "add", "service": 1,
                                                    "link": "https://race.test/reborn",
                                                    "quantity": 100}, timeout=10).json()
            assert added["order"] > max(orders)  # the one id sequence goes on
        finally:
            reborn.kill(signal.SIGTERM)
    finally:
        survivor.kill(signal.SIGTERM)
    panel.store.close()


@pytest.fixture
def own_cluster(pg_cluster: Any) -> Any:
    """A PostgreSQL server of this test's own, to stop and start (pg_cluster only proves
    PostgreSQL is installed, or skips)."""
    from pg.cluster import Cluster

    cluster = Cluster()
    yield cluster
    cluster.destroy()


def test_database_stopped_mid_load_costs_503s_never_half_orders(
        own_cluster: Any, spawn: Callable[[str], Server]) -> None:
    opening = Decimal("10000.00")
    panel = shared_panel(own_cluster.url, opening)
    servers = [spawn(own_cluster.url), spawn(own_cluster.url)]
    outage = threading.Event()

    def stop_and_start() -> None:
        own_cluster.stop("fast")
        time.sleep(2)
        own_cluster.start()

    def trigger(done: int) -> None:
        if done >= 150 and not outage.is_set():
            outage.set()
            threading.Thread(target=stop_and_start, daemon=True).start()

    tally = Tally()
    try:
        race([s.url for s in servers], KEY, threads=8, per_thread=80, tally=tally,
             between=trigger)
        assert outage.is_set()
        assert tally.bad == [] and tally.failed == 0  # only 200s and 503 JSON
        assert tally.statuses.get(503, 0) > 0  # the outage was seen
        deadline = time.monotonic() + 30
        while not own_cluster.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        for n, server in enumerate(servers):  # service resumes on both servers
            answer = requests.post(server.url, data={"key": KEY, "action": "add", "service": 1,
                                                     "link": f"https://race.test/after/{n}",
                                                     "quantity": 100}, timeout=10)
            assert answer.status_code == 200 and "order" in answer.json(), answer.text
            tally.ok.append(answer.json()["order"])
        orders = stored_orders(panel)
        assert set(tally.ok) <= set(orders)
        assert_conserved(panel, orders, opening)  # no order without its debit, nor the reverse
        logs = "".join(s.stderr() for s in servers)
        assert "Traceback" not in logs
        journal = control(servers[0], "GET", "/journal", params={"limit": 5})
        assert journal and journal[-1]["params"]["link"].startswith("https://race.test/after/")
    finally:
        for server in servers:
            server.kill(signal.SIGTERM)
    panel.store.close()
