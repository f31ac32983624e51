"""Two `smmkit serve` processes on one PostgreSQL database are, to `smmkit check`, one panel:
the kit's whole checker — read-only checks, orders within a budget, the watch, and the stateful
machine that resets the fake and drives its clock through the control API — runs against a
round-robin of both servers and passes. Each request (an add, its status, a reset, a clock
step) may land on either server, so any state one of them kept to itself would show up as a
contract violation.

The round-robin is a tiny loopback balancer in this test (HTTP/1.0, a new upstream per request),
in front of real servers on real ports over a real PostgreSQL (tests/pg/cluster.py).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from pg.servers import TOKEN, Server, serve
from smmkit.mock_server.core.config import DEMO_KEY

# several real servers on one database for many seconds: run by `pytest -m slow` (.ci/run)
pytestmark = pytest.mark.slow

PASSED_ON = ("Content-Type", "Retry-After")


class RoundRobin(ThreadingHTTPServer):
    """Sends request n to upstream n % len(upstreams), and counts what each one got."""

    daemon_threads = True

    def __init__(self, upstreams: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstreams = upstreams
        self.turns = itertools.cycle(range(len(upstreams)))
        self.lock = threading.Lock()
        self.served = [0] * len(upstreams)
        self.paths: list[set[str]] = [set() for _ in upstreams]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def pick(self, path: str) -> str:
        with self.lock:
            n = next(self.turns)
            self.served[n] += 1
            self.paths[n].add(path.split("?", 1)[0])
        return self.upstreams[n]


class _Forward(BaseHTTPRequestHandler):
    server: RoundRobin

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("content-type", "authorization", "accept")}
        upstream = self.server.pick(self.path)
        answer = requests.request(self.command, upstream + self.path, data=body,
                                  headers=headers, timeout=60, allow_redirects=False)
        self.send_response(answer.status_code)
        for name in PASSED_ON:
            if name in answer.headers:
                self.send_header(name, answer.headers[name])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

    def log_message(self, *args: Any) -> None:  # quiet: pytest shows stderr on failure
        pass


@pytest.fixture
def behind_one_url() -> Iterator[Any]:
    """`start(db_a, db_b)`: a server on each database, both behind one round-robin URL."""
    servers: list[Server] = []
    balancers: list[RoundRobin] = []

    def start(*dbs: str) -> tuple[RoundRobin, list[Server]]:
        mine = [serve(db, workers=1) for db in dbs]
        servers.extend(mine)
        balancers.append(RoundRobin([s.base for s in mine]))
        threading.Thread(target=balancers[-1].serve_forever, daemon=True).start()
        return balancers[-1], mine

    yield start
    for balancer in balancers:
        balancer.shutdown()
        balancer.server_close()
    for server in servers:
        server.kill()


def check(url: str, report: Path) -> subprocess.CompletedProcess:
    """The kit's whole checker: reads, orders within a budget, the watch, and the stateful
    machine (resets and clock steps through the control API)."""
    return subprocess.run(
        [sys.executable, "-c", "from smmkit.cli import main; main()", "check", f"{url}/api/v2",
         "--key", DEMO_KEY, "--allow-orders", "--budget", "5", "--admin-token", TOKEN,
         "--stateful", "--seed", "1", "--examples", "5", "--json", str(report)],
        capture_output=True, text=True, timeout=540)


def test_smmkit_check_passes_against_two_servers_on_one_database(
        behind_one_url: Any, pg_url: str, tmp_path: Path) -> None:
    balancer, servers = behind_one_url(pg_url, pg_url)
    done = check(balancer.url, tmp_path / "check.json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = json.loads((tmp_path / "check.json").read_text("utf-8"))
    assert found["ok"] and found["findings"] == [] and found["ledger"], found["headline"]
    # Both servers really served the run, the API and the control API alike.
    assert min(balancer.served) >= 0.4 * sum(balancer.served), balancer.served
    for paths in balancer.paths:
        assert "/api/v2" in paths and any(p.startswith("/_control/") for p in paths), paths
    assert {"/_control/reset", "/_control/clock/advance"} <= set().union(*balancer.paths)
    for server in servers:
        assert "Traceback" not in server.stderr()


def test_the_same_check_fails_two_servers_that_do_not_share_a_database(
        behind_one_url: Any, pg_url: str, tmp_path: Path) -> None:
    """The arrangement can fail: two panels that only look alike (each on its own database)
    are caught — an order placed through one is unknown to the other."""
    from engines import fresh_url

    balancer, _ = behind_one_url(pg_url, fresh_url("other"))
    done = check(balancer.url, tmp_path / "check.json")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    found = json.loads((tmp_path / "check.json").read_text("utf-8"))
    caught = {f["check"] for f in found["findings"]}
    # both databases hand out order 23501, and each balance misses the other's charges
    assert {"unique_order_ids", "money_conservation"} <= caught, caught
