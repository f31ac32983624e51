"""Connections that cannot keep the panel from answering, on every supported server, with real
sockets on loopback (issue 16 item 3).

The hostile pass found, on the default gunicorn server: 500 idle connections kept a normal
client out for 66 s (2,100: down); 40 slow bodies or 100 slowloris connections blocked it
completely. The default run holds a smaller crowd (the machine is shared); the full-scale
crowd of the issue — 2,000 idle, 100 slowloris, 40 slow bodies — is marked `slow`:
`pytest -m slow tests/test_hardening_connections.py`.

Also here: what a client that half-closes gets, SIGKILL of `smmkit serve` stopping every
process it started, and no API key in gunicorn's log.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hardening_support import (
    DEMO_KEY,
    JSON_EDGE,
    SERVERS,
    Serve,
    exchange,
    parse,
    request_bytes,
    traceback_in,
)

BALANCE = b"key=%s&action=balance" % DEMO_KEY.encode()


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp(request.param), request.param)
    yield server
    server.stop()
    assert not traceback_in(server.log_text()), server.log_text()[-3000:]


class Crowd:
    """Idle, slowloris and slow-body connections, kept open by one thread that trickles a
    byte per connection per second."""

    def __init__(self, address: tuple[str, int], idle: int, loris: int, slow_bodies: int
                 ) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = idle + loris + slow_bodies + 200
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))
        self.address = address
        self.socks: list[socket.socket] = []
        self.tricklers: list[socket.socket] = []
        self.stop = threading.Event()
        for _ in range(idle):
            self.socks.append(self._connect())
        for _ in range(loris):
            sock = self._connect()
            sock.sendall(b"POST /api/v2 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
            self.tricklers.append(sock)
        for _ in range(slow_bodies):
            sock = self._connect()
            sock.sendall(request_bytes("POST", "/api/v2", b"", length=100_000)
                         + b"key=" + DEMO_KEY.encode())
            self.tricklers.append(sock)
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=5)
        sock.setblocking(False)
        return sock

    def _trickle(self) -> None:
        while not self.stop.wait(1.0):
            for sock in self.tricklers:
                with contextlib.suppress(OSError):
                    sock.send(b"a")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.socks + self.tricklers:
            sock.close()


def normal_client_latencies(srv: Serve, seconds: float) -> list[float]:
    """A client doing what clients do (fresh connections and a keep-alive session) for
    `seconds`; the time each answer took (a 1 s timeout counts as a failure)."""
    latencies = []
    session = requests.Session()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for client in (session, requests):
            started = time.monotonic()
            try:
                answer = client.post(srv.api, data={"key": DEMO_KEY, "action": "balance"},
                                     timeout=1.0)
                assert answer.json()["balance"] == "1000"
                latencies.append(time.monotonic() - started)
            except requests.RequestException as exc:
                pytest.fail(f"a normal client got no answer within 1 s: {exc!r} "
                            f"after {len(latencies)} answers")
        time.sleep(0.05)
    return latencies


def _crowd_test(srv: Serve, idle: int, loris: int, slow_bodies: int, seconds: float) -> None:
    srv.reset()
    crowd = Crowd(srv.address, idle, loris, slow_bodies)
    try:
        time.sleep(0.5)  # let the server take every connection in
        latencies = normal_client_latencies(srv, seconds)
    finally:
        crowd.close()
    assert len(latencies) >= 4
    assert max(latencies) < 1.0  # the issue's bound: an answer within 1 s throughout


def test_a_crowd_of_slow_clients_does_not_keep_a_normal_one_out(served: Serve) -> None:
    """A tenth of the issue's crowd; on the old gunicorn worker 32 slow clients were enough."""
    _crowd_test(served, idle=200, loris=20, slow_bodies=20, seconds=3)


@pytest.mark.slow
def test_the_full_crowd_of_the_issue(served: Serve) -> None:
    _crowd_test(served, idle=2000, loris=100, slow_bodies=40, seconds=6)


# ------------------------------------------------------------------ time limits (own edge)


@pytest.fixture(scope="module", params=JSON_EDGE)
def gunicorn(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Serve]:
    """A server whose event loop owns every connection: builtin and gunicorn."""
    server = Serve(tmp_path_factory.mktemp(f"{request.param}-limits"), request.param)
    yield server
    server.stop()


@pytest.mark.slow  # waits out the real time limits
def test_a_slow_head_gets_408_and_an_idle_socket_is_closed(gunicorn: Serve) -> None:
    """Bounded read times: a head not complete within 10 s gets a JSON 408; a connection that
    never sends a byte is closed within the same bound; both without any thread held."""
    from smmkit.mock_server.serving.http1 import HEADER_TIMEOUT
    from smmkit.mock_server.serving.workers import HEADER_TIMEOUT as GUNICORN_HEADER_TIMEOUT

    assert HEADER_TIMEOUT == GUNICORN_HEADER_TIMEOUT

    slow = socket.create_connection(gunicorn.address, timeout=HEADER_TIMEOUT + 5)
    idle = socket.create_connection(gunicorn.address, timeout=HEADER_TIMEOUT + 5)
    started = time.monotonic()
    slow.sendall(b"POST /api/v2 HTTP/1.1\r\nHost: x\r\n")
    data = b""
    while chunk := slow.recv(4096):
        data += chunk
    status, _, headers, body = parse(data)
    assert (status, body) == (408, b'{"error":"Incorrect request"}')
    assert idle.recv(10) == b""  # closed, not answered: it asked nothing
    assert time.monotonic() - started < HEADER_TIMEOUT + 3
    slow.close()
    idle.close()


@pytest.mark.slow  # waits out the real time limits
def test_idle_keep_alive_connections_close(gunicorn: Serve) -> None:
    with socket.create_connection(gunicorn.address, timeout=15) as sock:
        sock.sendall(request_bytes("POST", "/api/v2", BALANCE))
        started, data = time.monotonic(), b""
        while chunk := sock.recv(4096):
            data += chunk
        assert parse(data)[0] == 200
        assert 4 < time.monotonic() - started < 8  # keepalive = 5 s on both


def test_gunicorn_never_logs_a_key(gunicorn: Serve) -> None:
    secret = "leaky-secret-key-123"
    for payload in (f"GET /api/v2?key={secret}&action=balance HTTP/1.1\x01\r\n\r\n",
                    f"GET /api/v2?key={secret} HTTP/9.9\r\nHost: x\r\n\r\n",
                    f"GET /api/v2?action=balance&KEY={secret}\x7f HTTP/1.1\r\n\r\n"):
        data = exchange(gunicorn.address, payload.encode("latin-1"), half_close=True)
        assert parse(data)[0] == 400
    time.sleep(0.3)
    assert secret not in gunicorn.log_text()
    if gunicorn.server == "gunicorn":  # builtin logs no request line at all
        assert "Invalid request" in gunicorn.log_text()  # the lines were logged, redacted


# ------------------------------------------------------------------ half-closing clients


def test_a_half_closing_client_gets_its_answer_or_nothing_is_done(served: Serve) -> None:
    """A client that sends a whole request and half-closes. builtin and gunicorn answer it. granian closes
    the connection without answering (granian does not support half-closed connections;
    documented in serving/server.py), and the request is carried out whole — debited once,
    visible to the key — or not at all (when granian saw the close before the app ran); never
    half-done."""
    served.reset()
    answered = []
    for i in range(10):
        body = (b"key=%s&action=add&service=1&link=https://x.com/h%d&quantity=100"
                % (DEMO_KEY.encode(), i))
        data = exchange(served.address, request_bytes("POST", "/api/v2", body), half_close=True)
        if data:
            status, _, _, payload = parse(data)
            assert status == 200
            answered.append(payload)
    time.sleep(0.5)
    orders = served.orders()
    assert served.conserved()
    if served.server in JSON_EDGE:
        assert len(answered) == orders == 10
    else:  # unanswered requests were carried out whole, or not at all
        assert len(answered) <= orders <= 10
        ids = [row[0] for row in served.db_rows("SELECT id FROM orders")]
        status = requests.post(served.api, data={"key": DEMO_KEY, "action": "status",
                                                 "orders": ",".join(map(str, ids))}).json()
        assert all("charge" in status[str(order)] for order in ids)


# ------------------------------------------------------------------ SIGKILL


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # starts and SIGKILLs real servers, then waits for every process to end
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc to list processes")
@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("target", ["process", "group"])
def test_sigkill_of_serve_stops_every_process_it_started(tmp_path: Path, server: str,
                                                         target: str) -> None:
    srv = Serve(tmp_path, server)
    started = _descendants(srv.proc.pid)
    assert started, "serve runs its workers in processes of their own"
    if target == "group":
        os.killpg(srv.proc.pid, signal.SIGKILL)
    else:
        os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in started if _alive(pid)]
    for pid in survivors:  # never leave them serving, even when this test fails
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not survivors
    with pytest.raises(requests.ConnectionError):
        requests.post(srv.api, data={"action": "balance"}, timeout=2)
    again = Serve(tmp_path, server, "--port", str(srv.address[1]))  # the port is free again
    again.stop()
    srv.kill()
