"""The PostgreSQL store in one process: one panel shared by several panel objects (as by
several servers), the schema and its version, snapshots that move between engines, the
`smmkit db` commands, and a database that goes away."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
import requests
from click.testing import CliRunner
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.config import DEMO_KEY, Config, build_panel
from smmkit.mock_server.core.faults import FaultBook
from smmkit.mock_server.serving.server import start_background
from smmkit.mock_server.storage import engines
from smmkit.mock_server.storage.postgres import PostgresStore
from smmkit.mock_server.storage.schema import SCHEMA_VERSION
from smmkit.mock_server.storage.sqlite import Store, StoreError

from smmkit.cli import main


def manual(url: str) -> Any:
    return build_panel(Config(db=url, clock="manual"))


def add(panel: Any, link: str, quantity: int = 100) -> int:
    return int(panel.add_order(DEMO_KEY, {"service": "1", "link": link,
                                          "quantity": str(quantity)}))


def test_the_url_picks_the_engine(pg_url: str, tmp_path: Any) -> None:
    pg, lite = engines.open_store(pg_url), engines.open_store(str(tmp_path / "p.db"))
    try:
        assert isinstance(pg, PostgresStore) and isinstance(lite, Store)
        assert pg.found_version == 0 and lite.found_version == 0  # both were created new
    finally:
        pg.close()
        lite.close()


def test_tables_carry_the_sqlite_schema_version_and_exact_types(pg_url: str) -> None:
    manual(pg_url).store.close()
    with psycopg.connect(pg_url) as conn:
        version = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        types = dict(conn.execute(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema()").fetchall())
    assert version == (str(SCHEMA_VERSION),)
    for money in ("accounts.balance", "accounts.opening", "accounts.topups", "orders.charge",
                  "orders.refunded", "ledger.amount"):
        assert types[money] == "numeric"  # exact, never float
    assert types["orders.id"] == types["refills.id"] == "bigint"


def test_panels_on_one_database_are_one_panel(pg_url: str) -> None:
    one, two = manual(pg_url), manual(pg_url)  # as two servers would
    try:
        first = add(one, "https://one.test/a")
        second = add(two, "https://one.test/b")
        assert second == first + 1  # one id sequence
        assert one.balance(DEMO_KEY) == two.balance(DEMO_KEY) == (Decimal("999.82"), "USD")
        assert two.order_status(DEMO_KEY, first).status == "Pending"
        with pytest.raises(Exception, match="active"):  # one active-order rule
            add(two, "https://one.test/a")
        one.advance(3600)  # one clock: moved through one, seen by the other
        assert abs(two.now() - one.now()) < 1e-6
        assert two.order_status(DEMO_KEY, first) == one.order_status(DEMO_KEY, first)
        assert two.order_status(DEMO_KEY, first).status in ("Completed", "Partial")
        faults_one, faults_two = FaultBook(one.store), FaultBook(two.store)
        faults_one.add({"kind": "http_5xx", "action": "balance", "times": 1})
        assert [f.kind for f in faults_two.list()] == ["http_5xx"]  # armed for all
        assert faults_two.pick("balance", DEMO_KEY) is not None
        assert faults_one.pick("balance", DEMO_KEY) is None  # its one strike is used up
    finally:
        one.store.close()
        two.store.close()


def test_one_journal_for_every_server(pg_url: str) -> None:
    one, two = manual(pg_url), manual(pg_url)
    journals = [engines.open_journal(p.store, 100) for p in (one, two)]
    for n, journal in enumerate(journals * 2):
        journal.record(at=float(n), params={"action": "balance", "key": DEMO_KEY}, status=200,
                       body=b'{"balance":"1"}', latency=0.001, fault=None, service_type=None)
    for journal in journals:
        entries = journal.entries(key=DEMO_KEY)
        assert [e["at"] for e in entries] == [0.0, 1.0, 2.0, 3.0]
        assert all(e["params"]["key"] == "***" for e in entries)  # the key is never stored
    journals[1].clear()
    assert journals[0].entries() == []
    one.store.close()
    two.store.close()


def busy(panel: Any) -> None:
    first = add(panel, "https://move.test/a", 1000)
    add(panel, "https://move.test/b", 500)
    panel.top_up(DEMO_KEY, "12.34")
    panel.advance(7200)
    panel.refill(DEMO_KEY, [first])
    panel.cancel(DEMO_KEY, [add(panel, "https://move.test/c", 200)])


def snapshot(panel: Any) -> dict[str, Any]:
    """The panel's snapshot without what differs by design: the clock's wall anchor (when the
    panel was made) and the random catalogue version (new after every restore)."""
    data = steering.snapshot(panel)
    state = data["state"]
    return {**data, "state": {**state, "rows": [[*r[:1], *r[2:-1]] for r in state["rows"]]}}


def test_snapshots_are_the_same_json_on_both_engines(pg_url: str, tmp_path: Any) -> None:
    lite, pg = manual(str(tmp_path / "lite.db")), manual(pg_url)
    for panel in (lite, pg):  # same seed, same requests, same panel times
        steering.set_clock(panel, 1_800_000_000.0)
        busy(panel)
    assert snapshot(pg) == snapshot(lite)
    moved = snapshot(pg)
    assert moved["refills"]["rows"] and len(moved["ledger"]["rows"]) >= 5  # a real history
    taken = steering.snapshot(lite)
    steering.restore(pg, taken)  # SQLite's snapshot restores on PostgreSQL, and back
    assert snapshot(pg) == snapshot(lite)
    steering.restore(lite, steering.snapshot(pg))
    assert snapshot(lite) == snapshot(pg)
    assert pg.audit(DEMO_KEY) == lite.audit(DEMO_KEY)
    lite.store.close()
    pg.store.close()


def test_servers_starting_at_once_create_the_tables_once(pg_url: str) -> None:
    """Replicas started together on a new database: one creates the tables, the others wait
    for its migration lock and find them current (none fails, nothing is created twice)."""
    import threading

    barrier, found, failures = threading.Barrier(6), [], []

    def start() -> None:
        barrier.wait()
        try:
            store = engines.open_store(pg_url)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)
            return
        found.append(store.found_version)
        store.close()

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert sorted(found) == [0] + [SCHEMA_VERSION] * 5
    panel = manual(pg_url)
    try:
        assert add(panel, "https://x.com/at-once") == 23501  # one sequence, seeded once
    finally:
        panel.store.close()


def test_a_newer_schema_is_refused_and_an_older_one_can_wait_for_upgrade(pg_url: str) -> None:
    with pytest.raises(StoreError, match="smmkit db upgrade"):
        engines.open_store(pg_url, migrate=False)  # nothing created: behind
    engines.open_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(StoreError, match="newer smmkit"):
        engines.open_store(pg_url)


def test_db_info_and_upgrade(pg_url: str) -> None:
    runner = CliRunner()
    before = runner.invoke(main, ["db", "info", "--db", pg_url])
    assert before.exit_code == 0 and "version 0" in before.output
    upgraded = runner.invoke(main, ["db", "upgrade"], env={"SMMKIT_DB": pg_url})
    assert upgraded.exit_code == 0, upgraded.output
    assert f"created the tables at schema version {SCHEMA_VERSION}" in upgraded.output
    again = runner.invoke(main, ["db", "upgrade", "--db", pg_url])
    assert "already at schema version" in again.output
    after = runner.invoke(main, ["db", "info", "--db", pg_url])
    assert f"version {SCHEMA_VERSION}, this smmkit {SCHEMA_VERSION}: current" in after.output
    away = runner.invoke(main, ["db", "info", "--db", "postgresql://nobody@127.0.0.1:1/x"])
    assert away.exit_code == 1 and "cannot be reached" in away.output
    assert "Traceback" not in away.output


def test_serve_refuses_an_unreachable_database_in_one_line() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["serve", "--db", "postgresql://smmkit:secret@127.0.0.1:1/x",
                                  "--port", "0"])
    assert result.exit_code == 1
    assert "cannot be reached" in result.output and "secret" not in result.output


@pytest.fixture
def own_cluster(pg_cluster: Any) -> Any:
    from pg.cluster import Cluster

    cluster = Cluster()
    yield cluster
    cluster.destroy()


def test_requests_get_503_json_while_the_database_is_away(own_cluster: Any) -> None:
    running = start_background(Config(port=0, db=own_cluster.url, clock="manual",
                                      admin_token="t"))
    try:
        data = {"key": DEMO_KEY, "action": "balance"}
        before = requests.post(running.api_url, data=data, timeout=10)
        assert before.status_code == 200
        own_cluster.stop("fast")
        away = requests.post(running.api_url, data=data, timeout=30)
        assert (away.status_code, away.json()) == (503, {"error": "Service unavailable"})
        control = requests.get(f"{running.url}/_control/accounts", timeout=30,
                               headers={"Authorization": "Bearer t"})
        assert (control.status_code, control.json()) == (503, {"error": "Service unavailable"})
        own_cluster.start()
        back = requests.post(running.api_url, data=data, timeout=10)  # dead connections go
        assert (back.status_code, back.json()) == (200, before.json())
    finally:
        running.stop()
        running.panel.store.close()


def test_the_engine_switch_really_moves_the_suite(pg_cluster: Any) -> None:
    """SMMKIT_TEST_ENGINE=postgres puts the suite's throw-away panels on PostgreSQL (and only
    then): the second CI run is not the first one again."""
    import engines as test_engines
    from support import manual_panel

    panel = manual_panel()
    try:
        expected = PostgresStore if test_engines.ENGINE == "postgres" else Store
        assert type(panel.store) is expected
    finally:
        panel.store.close()
