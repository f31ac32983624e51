"""`smmkit serve --server granian`: the fast server, same answers, drop faults refused."""

from __future__ import annotations

import signal

import requests
from engines import engine_store
from smmkit.mock_server.core.config import DEMO_KEY
from support import start_serve, wait_ready


def test_granian_serves_the_same_panel_and_refuses_drop_faults(tmp_path):
    server = start_serve("--port", "0", "--db", str(engine_store(tmp_path / "g.db")), "--workers", "2",
                         "--server", "granian", "--admin-token", "granian-token")
    try:
        wait_ready(server.url)
        balance = requests.post(server.url, data={"key": DEMO_KEY, "action": "balance"})
        assert balance.json() == {"balance": "1000", "currency": "USD"}
        assert balance.headers["Content-Type"] == "application/json"
        order = requests.post(server.url, data={"key": DEMO_KEY, "action": "add", "service": 1,
                                                "link": "https://x.com/granian",
                                                "quantity": 100}).json()["order"]
        # every worker process sees the order and the debit (one shared store)
        for _ in range(8):
            status = requests.post(server.url, data={"key": DEMO_KEY, "action": "status",
                                                     "order": order}).json()
            assert status["charge"] == "0.09"
        base = server.url.rsplit("/api/v2", 1)[0]
        auth = {"Authorization": "Bearer granian-token"}
        for kind in ("drop", "lost_after_commit"):
            refused = requests.post(f"{base}/_control/faults", json={"kind": kind}, headers=auth)
            assert refused.status_code == 400
            assert "--server builtin" in refused.json()["error"]
        accepted = requests.post(f"{base}/_control/faults", json={"kind": "rate_limit",
                                                                  "action": "balance"},
                                 headers=auth)
        assert accepted.status_code == 201
        limited = requests.post(server.url, data={"key": DEMO_KEY, "action": "balance"})
        assert limited.status_code == 429
    finally:
        assert server.stop(signal.SIGINT, timeout=15) in (0, -2, 130)


def test_serve_ends_and_says_so_when_granian_ends_by_itself(tmp_path):
    """A granian that stops on its own (a worker died and granian shut down) used to leave
    `smmkit serve` running with nothing listening on its port."""
    import os

    server = start_serve("--port", "0", "--db", str(engine_store(tmp_path / "g.db")),
                         "--workers", "1", "--server", "granian")
    try:
        wait_ready(server.url)
        pid = server.proc.pid
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            (granian,) = [int(child) for child in children.read().split()]
        os.killpg(granian, signal.SIGKILL)  # granian's own session: master and workers
        assert server.proc.wait(timeout=15) == 1
        err = server.proc.stderr.read().decode()
        assert "smmkit: granian stopped (signal 9); stopping" in err
        assert "Traceback" not in err
    finally:
        if server.proc.poll() is None:
            server.stop(signal.SIGKILL)
