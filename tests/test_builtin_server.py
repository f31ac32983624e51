"""The built-in server (serving/http1.py, the default) on a real port, through real clients.

What a client sees of each connection-level fault, documented in the README (`--server`):
- `drop`: the connection is reset (TCP RST) before a byte of answer; nothing was done.
  requests raises ConnectionError, aiohttp ClientOSError / ServerDisconnectedError.
- `lost_after_commit`: the same on the wire, but the action was carried out: an `add` is
  placed and charged, and `status` of its key shows it.
And what HTTP/1.1 gets: pipelined requests answered in order, `Expect: 100-continue`,
chunked bodies, HTTP/1.0 keep-alive, a latency fault that holds only its own connection, and
a request that is in the journal as soon as its answer has arrived.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import aiohttp
import pytest
import requests
from hardening_support import DEMO_KEY, Serve, parse, request_bytes, traceback_in

BALANCE = {"key": DEMO_KEY, "action": "balance"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("builtin"), "builtin")
    yield server
    server.stop()
    assert not traceback_in(server.log_text()), server.log_text()[-3000:]


def arm(srv: Serve, kind: str, **extra: object) -> None:
    assert srv.control("DELETE", "/faults").status_code == 200
    reply = srv.control("POST", "/faults", json={"kind": kind, "action": "add", "count": 100,
                                                  **extra})
    assert reply.status_code == 201, reply.text


def add(n: str) -> dict[str, str]:
    return {"key": DEMO_KEY, "action": "add", "service": "1", "quantity": "100",
            "link": f"https://x.com/builtin/{n}/{time.time_ns()}"}


async def aiohttp_post(url: str, data: dict[str, str]) -> BaseException | None:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.post(url, data=data) as response:
                await response.read()
        except aiohttp.ClientError as exc:
            return exc
    return None


@pytest.mark.parametrize("kind", ["drop", "lost_after_commit"])
def test_connection_faults_reset_the_connection_for_requests_and_aiohttp(srv: Serve,
                                                                         kind: str) -> None:
    srv.reset()
    arm(srv, kind)
    try:
        with pytest.raises(requests.ConnectionError):
            requests.post(srv.api, data=add("requests"), timeout=10)
        error = asyncio.run(aiohttp_post(srv.api, add("aiohttp")))
        assert isinstance(error, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)), error
    finally:
        srv.control("DELETE", "/faults")
    placed = srv.orders()
    assert placed == (0 if kind == "drop" else 2)
    assert srv.conserved()
    # the panel answers the next request on a new connection as usual
    assert requests.post(srv.api, data=BALANCE, timeout=10).json()["currency"] == "USD"


def test_a_dropped_connection_gets_not_a_byte(srv: Serve) -> None:
    arm(srv, "drop")
    try:
        with socket.create_connection(srv.address, timeout=10) as sock:
            body = b"&".join(f"{k}={v}".encode() for k, v in add("raw").items())
            sock.sendall(request_bytes("POST", "/api/v2", body))
            with pytest.raises(ConnectionResetError):
                while sock.recv(4096):
                    pass
    finally:
        srv.control("DELETE", "/faults")


def test_a_latency_fault_holds_only_its_own_connection(srv: Serve) -> None:
    srv.control("DELETE", "/faults")
    reply = srv.control("POST", "/faults", json={"kind": "latency", "action": "add",
                                                  "ms": 1500, "count": 4})
    assert reply.status_code == 201, reply.text
    slow: list[float] = []

    def slow_add() -> None:
        started = time.monotonic()
        assert "order" in requests.post(srv.api, data=add("slow"), timeout=10).json()
        slow.append(time.monotonic() - started)

    try:
        threads = [threading.Thread(target=slow_add) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        started = time.monotonic()
        for _ in range(20):  # two workers, each with slow adds pending: balances still flow
            assert requests.post(srv.api, data=BALANCE, timeout=10).ok
        quick = time.monotonic() - started
        for thread in threads:
            thread.join()
    finally:
        srv.control("DELETE", "/faults")
    assert min(slow) >= 1.4 and quick < 1.0, (slow, quick)


def test_pipelined_requests_are_answered_in_order(srv: Serve) -> None:
    paths = ["/api/v2", "/_control/clock", "/api/v2", "/nope", "/api/v2"]
    payload = b"".join(request_bytes("POST" if p == "/api/v2" else "GET", p,
                                     b"key=%s&action=balance" % DEMO_KEY.encode()
                                     if p == "/api/v2" else b"") for p in paths)
    with socket.create_connection(srv.address, timeout=10) as sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"HTTP/1.1 ") < len(paths) or not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    statuses = [int(part.split(b" ", 1)[0]) for part in data.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200, 401, 200, 404, 200]


def test_expect_continue_chunked_and_http10_keep_alive(srv: Serve) -> None:
    body = b"key=%s&action=balance" % DEMO_KEY.encode()
    with socket.create_connection(srv.address, timeout=10) as sock:
        sock.sendall(b"POST /api/v2 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert parse(sock.recv(4096))[0] == 200
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                          for i in range(0, len(body), 7))
        sock.sendall(b"POST /api/v2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
                     + chunks + b"0\r\n\r\n")
        status, _, _, answer = parse(sock.recv(4096))
        assert status == 200 and b'"balance"' in answer
    with socket.create_connection(srv.address, timeout=10) as sock:
        for _ in range(2):  # the same connection, kept alive as asked
            sock.sendall(b"POST /api/v2 HTTP/1.0\r\nConnection: keep-alive\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status, _, headers, _ = parse(sock.recv(4096))
            assert status == 200 and headers["connection"] == "keep-alive"


@pytest.mark.parametrize("space", [b" ", b"\t", b" \t "])
def test_chunk_extensions_after_whitespace_are_read(srv: Serve, space: bytes) -> None:
    """RFC 9112 §7.1.1: `chunk-size BWS ";" chunk-ext`; the long fuzz run sent "11 ;q="v"" and
    got a 400 (llhttp's strict default)."""
    body = b"key=%s&action=balance" % DEMO_KEY.encode()
    chunked = (b"%x%s;q=\"v\"\r\n%s\r\n" % (len(body[:5]), space, body[:5])
               + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body[5:]), body[5:]))
    with socket.create_connection(srv.address, timeout=10) as sock:
        sock.sendall(b"POST /api/v2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" + chunked)
        status, _, headers, answer = parse(sock.recv(4096))
    assert status == 200 and b'"balance"' in answer, answer
    assert headers.get("connection") != "close"


def test_an_answered_request_is_in_the_journal_at_once(srv: Serve) -> None:
    srv.control("DELETE", "/journal")
    for n in range(5):
        order = requests.post(srv.api, data=add(f"journal{n}"), timeout=10).json()["order"]
        entries = srv.control("GET", "/journal", params={"action": "add", "limit": "1"}).json()
        assert f'"order":{order}' in entries[0]["body"].replace(" ", ""), entries


def test_every_answer_read_delayed_or_dropped_is_in_the_journal_at_once(srv: Serve) -> None:
    """The loop holds a turn's journal lines and writes them before the turn's answers leave
    (serving/batching.py): a read, an answer held back by a latency fault and a dropped
    connection are each in the journal the moment the client has its answer, or its reset."""
    def newest(action: str) -> dict[str, object]:
        entries = srv.control("GET", "/journal", params={"action": action, "limit": "1"})
        return entries.json()[0]  # type: ignore[no-any-return]

    srv.control("DELETE", "/faults")
    for n in range(5):
        asked = {"key": DEMO_KEY, "action": "services", "nonce": str(n)}
        answer = requests.post(srv.api, data=asked, timeout=10)
        assert newest("services")["params"] == {**asked, "key": "***"}
        assert newest("services")["body"] == answer.text
    try:
        for kind, extra in (("latency", {"ms": 300}), ("drop", {})):
            reply = srv.control("POST", "/faults", json={"kind": kind, "action": "balance",
                                                          "count": 1, **extra})
            assert reply.status_code == 201, reply.text
            asked = {**BALANCE, "nonce": kind}
            try:
                requests.post(srv.api, data=asked, timeout=10)
            except requests.ConnectionError:
                assert kind == "drop"
            entry = newest("balance")
            assert (entry["fault"], entry["params"]) == (kind, {**asked, "key": "***"}), entry
    finally:
        srv.control("DELETE", "/faults")


def test_orders_placed_together_spend_exactly_the_balance(srv: Serve) -> None:
    """Two workers place each loop turn's orders in one transaction (serving/batching.py):
    48 connections at once, for a balance that pays for exactly 100 of 240 orders, and a
    link sent twice in a row: exactly 100 are placed, every other order hears why, once."""
    key = f"together-{time.time_ns()}"
    assert srv.control("POST", "/accounts", json={"key": key, "balance": "12.00"}).ok
    links = [f"https://x.com/together/{n // 2 if n < 40 else n}" for n in range(240)]

    async def send_all() -> list[dict[str, object]]:
        connector = aiohttp.TCPConnector(limit=48, force_close=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def one(link: str) -> dict[str, object]:
                async with session.post(srv.api, data={
                        "key": key, "action": "add", "service": "3", "quantity": "1000",
                        "link": link}) as response:
                    assert response.status == 200
                    return await response.json()  # type: ignore[no-any-return]
            return await asyncio.gather(*(one(link) for link in links))

    results = asyncio.run(send_all())
    ids = [r["order"] for r in results if "order" in r]
    refused = sorted(str(r["error"]) for r in results if "order" not in r)
    active = [r for r in refused if r.startswith("You have active order")]
    assert len(ids) == len(set(ids)) == 100, (len(ids), refused[:3])
    assert len(active) <= 20  # a twin sent while its first was placed or refused
    assert refused.count("Not enough funds on balance") == 140 - len(active)
    assert len(refused) == 140
    balance = requests.post(srv.api, data={"key": key, "action": "balance"}, timeout=10).json()
    assert balance == {"balance": "0", "currency": "USD"}
    assert srv.conserved()
