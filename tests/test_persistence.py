"""store.py under load and across restarts: exact money with concurrent adds, state that
survives a restart, and a SIGKILL mid-load that loses nothing a client was told about
(docs/PROTOCOL.md §6)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from smmkit.mock_server.core.config import DEMO_KEY, Config, build_panel
from smmkit.mock_server.serving.server import start_background
from support import KEYS, start_serve, wait_ready

INCORRECT = {"error": "Incorrect order ID"}


def audit_file(path: Path | str, key: str) -> dict[str, Decimal]:
    panel = build_panel(Config(db=str(path), clock="manual"))
    try:
        return panel.audit(key)
    finally:
        panel.store.close()


def statuses(url: str, ids: list[int], key: str = DEMO_KEY) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for start in range(0, len(ids), 100):
        chunk = ids[start:start + 100]
        body = requests.post(url, data={"key": key, "action": "status",
                                        "orders": ",".join(map(str, chunk))}, timeout=30).json()
        found.update(body)
    return found


def test_concurrent_adds_spend_exactly_the_balance() -> None:
    threads, per_thread = 16, 30
    running = start_background(Config(port=0, clock="manual", threads=16))
    try:
        # 0.12 per 1000 on service 3: 24.00 pays for exactly 200 of the 480 attempts.
        running.panel.create_account("race-key", "24.00")
        results: list[dict] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            session = requests.Session()
            for i in range(per_thread):
                body = session.post(running.api_url, data={
                    "key": "race-key", "action": "add", "service": "3", "quantity": "1000",
                    "link": f"https://instagram.com/p/{n}-{i}"}, timeout=30).json()
                with lock:
                    results.append(body)

        pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert len(results) == threads * per_thread
        ids = [r["order"] for r in results if "order" in r]
        refused = [r for r in results if "order" not in r]
        assert len(ids) == 200
        assert refused == [{"error": "Not enough funds on balance"}] * 280
        assert len(set(ids)) == len(ids)
        assert all(type(i) is int for i in ids)
        seen = statuses(running.api_url, ids, key="race-key")
        assert all(seen[str(i)]["charge"] == "0.12" for i in ids)
        balance = requests.post(running.api_url, data={"key": "race-key", "action": "balance"},
                                timeout=10).json()
        assert balance == {"balance": "0", "currency": "USD"}
        audit = running.panel.audit("race-key")
        assert audit["balance"] == 0 and audit["charges"] == Decimal("24.00")
    finally:
        running.stop()


def test_state_survives_a_restart(store_db: str) -> None:
    db = store_db
    first = start_serve("--port", "0", "--db", str(db), "--workers", "1")
    try:
        wait_ready(first.url)
        ids = []
        for i in range(5):  # service 21 starts after 120 s: nothing settles during the test
            body = requests.post(first.url, data={"key": DEMO_KEY, "action": "add",
                                                  "service": "21", "quantity": "100",
                                                  "link": f"https://youtube.com/c/{i}"},
                                 timeout=10).json()
            ids.append(body["order"])
        balance = requests.post(first.url, data={"key": DEMO_KEY, "action": "balance"},
                                timeout=10).json()
        assert balance == {"balance": "991", "currency": "USD"}  # 5 × 1.80
        before = statuses(first.url, ids)
    finally:
        assert first.stop() == 0
    second = start_serve("--port", "0", "--db", str(db), "--workers", "1")
    try:
        wait_ready(second.url)
        assert requests.post(second.url, data={"key": DEMO_KEY, "action": "balance"},
                             timeout=10).json() == balance
        after = statuses(second.url, ids)
        assert {i: (v["charge"], v["status"]) for i, v in after.items()} == \
            {i: (v["charge"], v["status"]) for i, v in before.items()}
        assert all(v["charge"] == "1.8" for v in after.values())
        # New orders continue the id sequence.
        body = requests.post(second.url, data={"key": DEMO_KEY, "action": "add", "service": "21",
                                               "quantity": "100", "link": "https://youtube.com/n"},
                             timeout=10).json()
        assert body == {"order": max(ids) + 1}
    finally:
        assert second.stop() == 0


@pytest.mark.slow  # a real server SIGKILLed under concurrent load (README: -m slow)
def test_sigkill_mid_load_loses_nothing_acknowledged(store_db: str) -> None:
    db = store_db
    server = start_serve("--port", "0", "--db", str(db), "--workers", "2", "--threads", "8")
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(n: int) -> None:
        session = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                body = session.post(server.url, data={
                    "key": DEMO_KEY, "action": "add", "service": "3", "quantity": "20",
                    "link": f"https://instagram.com/k/{n}-{i}"}, timeout=5).json()
            except (requests.RequestException, ValueError):
                continue  # the server died under us: fine, as long as nothing acked is lost
            if "order" in body:
                with lock:
                    acknowledged.append(body["order"])

    try:
        wait_ready(server.url)
        pool = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(8)]
        for t in pool:
            t.start()
        deadline = time.monotonic() + 10
        while len(acknowledged) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()  # SIGKILL to the whole group, master and workers, mid-load
    finally:
        stop.set()
        server.kill()
    for t in pool:
        t.join(timeout=10)
    assert len(acknowledged) >= 150
    assert len(set(acknowledged)) == len(acknowledged)

    again = start_serve("--port", "0", "--db", str(db), "--workers", "1")
    try:
        wait_ready(again.url)
        found = statuses(again.url, sorted(acknowledged))
        missing = [i for i, v in found.items() if v == INCORRECT]
        assert missing == []
    finally:
        assert again.stop() == 0
    for key in KEYS:
        audit = audit_file(db, key)
        assert audit["balance"] >= 0
        assert audit["balance"] + audit["charges"] == audit["opening"] + audit["topups"]
    panel = build_panel(Config(db=str(db), clock="manual"))
    try:
        db_conn = panel.store.connection()
        count = db_conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        charges = db_conn.execute(
            "SELECT COUNT(*) FROM ledger WHERE kind = 'charge'").fetchone()[0]
        assert count == charges >= len(acknowledged)
    finally:
        panel.store.close()
