"""The built-in server's shortcut for request bytes it has read before (`Worker.seen` in
serving/http1.py) answers exactly what parsing them answers.

Two workers whose endpoint echoes how it read each request (method, query, type, body, host):
one never keeps what it read, the other keeps it and has already served the same reads on an
earlier connection. For any sequence of reads — whole requests, requests split or glued
together, keep-alive or closing, HTTP/1.0, chunked bodies, `Expect: 100-continue`, bodies over
the limit, an Upgrade, garbage — both send the same bytes (the Date header aside).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from smmkit.mock_server.serving import http1
from smmkit.mock_server.web.api import Reply
from smmkit.mock_server.web.app import ApiRequest


class Echo:
    """An endpoint that answers how the request was read."""

    max_body = 64

    def answer(self, request: ApiRequest, *, later: bool = False) -> Reply:
        body = request.body.decode("latin-1") if isinstance(request.body, bytes) else "?"
        return Reply(200, json.dumps([request.method, request.query, request.content_type,
                                      body, request.host]).encode())


class Wire:
    """A transport that keeps what was written and whether it was closed."""

    def __init__(self) -> None:
        self.sent = bytearray()
        self.closed = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.sent += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    abort = close

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default


def worker() -> http1.Worker:
    return http1.Worker(Echo(), None, None, inline_api=True,  # type: ignore[arg-type]
                        server_address=("127.0.0.1", 8080))


async def served(work: http1.Worker, reads: list[bytes], *,
                 forget: bool = False) -> tuple[bytes, bool]:
    """What one connection sends for `reads` (Date lines blanked), and whether it closed; each
    read's answers are sent at the end of its loop turn (batching.Turn), awaited here."""
    conn = http1.Connection(work)
    wire = Wire()
    conn.connection_made(wire)
    for data in reads:
        if forget:
            work.seen.clear()
        if wire.closed:
            break
        conn.data_received(data)
        for _ in range(40):  # the turn's end, and the pipelined requests it answers after
            await asyncio.sleep(0)
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", bytes(wire.sent)), wire.closed


def request(method: str, target: str, headers: list[str], body: bytes, version: str) -> bytes:
    head = f"{method} {target} HTTP/{version}\r\n" + "".join(f"{h}\r\n" for h in headers)
    return head.encode("latin-1") + b"\r\n" + body


bodies = st.sampled_from([b"", b"key=k&action=balance", b"action=status&order=1",
                          b"x" * 70])  # the last is over Echo.max_body


@st.composite
def one_request(draw: st.DrawFn) -> bytes:
    body = draw(bodies)
    method = draw(st.sampled_from(["GET", "POST", "HEAD"]))
    target = draw(st.sampled_from(["/api/v2", "/api/v2/", "/api/v2?key=k&action=balance",
                                   "/api/v2?x=%FF#frag"]))
    version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    headers = [draw(st.sampled_from(["Host: panel.test", "Host: other.test"]))]
    headers += draw(st.lists(st.sampled_from([
        "Content-Type: application/x-www-form-urlencoded", "Content-Type: application/json",
        "Connection: close", "Connection: keep-alive", "Expect: 100-continue",
        "Upgrade: websocket\r\nConnection: Upgrade", "X-Other: 1"]), max_size=2, unique=True))
    if draw(st.booleans()) and version == "1.1":
        headers.append("Transfer-Encoding: chunked")
        payload = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        headers.append(f"Content-Length: {len(body)}")
        payload = body
    return request(method, target, headers, payload, version)


@st.composite
def reads(draw: st.DrawFn) -> list[bytes]:
    """A connection's reads: requests, some repeated, cut anywhere and glued together (a whole
    request with the head of the next in one read); now and then garbage."""
    pool = draw(st.lists(one_request(), min_size=1, max_size=4))
    pool.append(b"GARBAGE\r\n\r\n")
    pieces: list[bytes] = []
    for _ in range(draw(st.integers(1, 8))):
        data = draw(st.sampled_from(pool))
        if len(data) > 1 and draw(st.integers(0, 3)) == 0:
            cut = draw(st.integers(1, len(data) - 1))
            pieces += [data[:cut], data[cut:]]
        else:
            pieces.append(data)
    out = [pieces[0]]
    for piece in pieces[1:]:
        if draw(st.integers(0, 3)) == 0:
            out[-1] += piece
        else:
            out.append(piece)
    return out


@settings(max_examples=300, deadline=None)
@given(reads())
def test_bytes_read_before_are_answered_as_parsing_them_answers(chunks: list[bytes]) -> None:
    async def both() -> None:
        parsing = await served(worker(), chunks, forget=True)
        keeping = worker()
        await served(keeping, chunks)  # an earlier connection read the same bytes
        assert await served(keeping, chunks) == parsing

    asyncio.run(both())


def test_a_request_read_before_is_answered_without_parsing_it() -> None:
    """The shortcut is taken (the test above would pass without one): the second connection's
    request never reaches the parser."""
    data = request("POST", "/api/v2", ["Host: h", "Content-Length: 3"], b"a=1", "1.1")

    async def run() -> None:
        work = worker()
        first, _ = await served(work, [data])
        assert list(work.seen) == [data]
        conn = http1.Connection(work)
        wire = Wire()
        conn.connection_made(wire)
        conn.parser = None  # type: ignore[assignment] # any use of the parser would fail
        conn.data_received(data)
        await asyncio.sleep(0)  # the turn's end: its answer is sent
        assert re.sub(rb"Date: [^\r]*", b"", bytes(wire.sent)) == \
            re.sub(rb"Date: [^\r]*", b"", first)

    asyncio.run(run())


def test_what_is_kept_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(http1, "MAX_SEEN", 3)

    async def run() -> None:
        work = worker()
        for i in range(10):
            await served(work, [request("GET", f"/api/v2?n={i}", ["Host: h"], b"", "1.1")])
            assert len(work.seen) <= 3
        long = request("GET", "/api/v2?" + "a" * http1.MAX_SEEN_BYTES, ["Host: h"], b"", "1.1")
        work.seen.clear()
        await served(work, [long])
        assert work.seen == {}

    asyncio.run(run())
