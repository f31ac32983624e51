"""smmkit's own HTTP/1.1 server loop: one event loop per worker process (uvloop + httptools).

Why not a generic server: the fake must answer a tiny JSON body in a few microseconds of
Python *and* be able to misbehave on the wire (close a connection without a byte, after the
order is committed). gunicorn costs ~150 µs per request before the app runs; granian is fast
but gives the app no connection to drop. Here llhttp (httptools) parses, uvloop moves the
bytes, and `/api/v2` is answered inline on the loop by `ApiEndpoint.answer` — no WSGI environ,
no thread hop. Everything else (control API, dashboard, OpenAPI) is the Flask app, run in a
thread pool (`wsgi_bridge`), one request at a time per connection so answers keep their order.

What a connection gets (issue 16's limits, the same as the gunicorn worker's):
- HEADER_TIMEOUT seconds for a request head, BODY_TIMEOUT more for its body; a late request
  that sent something gets a JSON 408 and is closed; idle keep-alive connections close after
  KEEPALIVE seconds; at most MAX_CONNECTIONS per worker (the idlest is shed to make room).
- A body announced over `max_body` gets its JSON 413 at once, before a byte of it is read.
- Unparseable HTTP (a bad request line, a bad header, an unknown transfer coding, a head over
  MAX_HEAD bytes) gets a JSON 400 "Incorrect request" and the connection is closed.
- A client that sends its request and half-closes still gets its answer, then the close.
- `drop` / `lost_after_commit` faults reset the connection (RST) without a byte of answer.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import httptools
from smmkit.mock_server.core.errors import error_text
from smmkit.mock_server.serving.batching import Turn
from smmkit.mock_server.web.api import Pending, Reply, encode
from smmkit.mock_server.web.app import (
    API_PATHS,
    DROPPED,
    INCOMPLETE,
    TOO_LARGE,
    ApiEndpoint,
    ApiRequest,
    Later,
    status_line,
)

HEADER_TIMEOUT = 10.0  # seconds for a request head, from the connection's first wait
BODY_TIMEOUT = 30.0  # more seconds for the body, once the head is in
KEEPALIVE = 5.0  # seconds an idle keep-alive connection is kept
LINGER = 2.0  # seconds a closed connection's unread input is drained (RFC 9112 §9.6)
MAX_CONNECTIONS = 4096  # per worker; the listen backlog holds the rest
MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_PIPELINE = 32  # parsed requests waiting on one connection before reading pauses
# Requests read again from their bytes (Worker.seen): at most this long, this many per worker.
MAX_SEEN_BYTES = 2048
MAX_SEEN = 4096


class _Date:
    """The Date header, formatted once a second."""

    def __init__(self) -> None:
        self.second, self.header = 0, b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.header = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self.header


DATE = _Date()


def error_reply(status: int) -> Reply:
    """A JSON error the server sends itself (a request it could not read), closing after."""
    text = error_text("incorrect_request") if status < 500 else "Internal error"
    return Reply(status, encode({"error": text}), headers=(("Connection", "close"),))


class Request:
    """One parsed request: what the handlers need, nothing more."""

    __slots__ = ("method", "target", "headers", "body", "keep_alive", "version", "known")

    def __init__(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]],
                 body: bytes | object, keep_alive: bool, version: str,
                 known: dict[bytes, bytes] | None = None) -> None:
        self.method, self.target, self.headers = method, target, headers
        self.body, self.keep_alive, self.version = body, keep_alive, version
        self.known = known or {}

    def header(self, name: bytes) -> str:
        """The first value of a header in KNOWN (lower-case `name`), as text; "" if absent."""
        value = self.known.get(name)
        return "" if value is None else value.decode("latin-1")

    def split_target(self) -> tuple[str, str]:
        path, _, query = self.target.partition(b"?")
        return path.decode("latin-1"), query.partition(b"#")[0].decode("latin-1")


_METHODS = {b"GET": "GET", b"POST": "POST", b"HEAD": "HEAD"}  # decoded once, not per request

# The headers the server itself reads, kept by name as they arrive (one lower() per header).
KNOWN = frozenset({b"content-length", b"content-type", b"host", b"expect"})

# Connection states
HEAD, BODY, IDLE, BUSY, CLOSING = range(5)


class Worker:
    """What every connection of one worker process shares: the app, the pool, the limits."""

    def __init__(self, endpoint: ApiEndpoint, wsgi: Callable[..., Any],
                 run_in_pool: Callable[..., Any], *, inline_api: bool,
                 server_address: tuple[str, int]) -> None:
        self.endpoint = endpoint
        self.wsgi = wsgi
        self.run_in_pool = run_in_pool  # (fn, *args) -> asyncio future
        self.inline_api = inline_api  # SQLite: answer /api/v2 on the loop itself
        self.server_address = server_address
        self.turn = Turn(endpoint)  # the loop's answers, sent at the end of its turn
        self.connections: dict[Connection, None] = {}  # insertion order ≈ oldest first
        # Pollers send the same request bytes again and again, each in one read: bytes that
        # arrived at a message boundary and held exactly one whole, plain request → what the
        # parser made of them (Request's fields), so the same bytes again skip the parser and
        # its eight callbacks. Parsing is a function of the bytes from a message boundary.
        self.seen: dict[bytes, tuple[Any, ...]] = {}

    def opened(self, conn: Connection) -> None:
        if len(self.connections) >= MAX_CONNECTIONS:
            self._shed_one()
        self.connections[conn] = None

    def _shed_one(self) -> None:
        idle = next((c for c in self.connections if c.state == IDLE), None)
        victim = idle or next((c for c in self.connections if c.state in (HEAD, BODY)), None)
        if victim is not None:
            victim.close_now()

    def sweep(self) -> None:
        """Close connections past their time (called about once a second)."""
        now = time.monotonic()
        for conn in [c for c in self.connections if c.deadline <= now]:
            conn.timed_out()


class Connection(asyncio.Protocol):
    """One client connection: parse, answer in order, keep alive or close."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.transport: Any = None
        self.parser = httptools.HttpRequestParser(self)
        # RFC 9112 §7.1.1 allows whitespace between a chunk's size and its extensions
        # ("11 ;name=value"); llhttp refuses it unless told (found by the long fuzz run).
        self.parser.set_dangerous_leniencies(lenient_spaces_after_chunk_size=True)
        self.state = HEAD
        self.deadline = time.monotonic() + HEADER_TIMEOUT
        self.queue: deque[Request] = deque()
        self.busy = False  # a request is being answered off the loop (pool or timer)
        self.eof = False  # the client half-closed: answer what it sent, then close
        self.paused = False
        self.broken = False  # unparseable input follows the queued requests
        self.completed = 0  # requests read whole on this connection
        self.last: Request | None = None  # the last of them
        self._reset_message()

    def _reset_message(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.known: dict[bytes, bytes] = {}  # the first of each header in KNOWN, by its name
        self.head_bytes = 0
        self.body = bytearray()
        self.too_large = False
        self.started = False  # bytes of a request head have arrived

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.worker.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.connections.pop(self, None)
        self.state = CLOSING
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.state == CLOSING:
            return  # lingering: unread input is dropped
        if self.state == IDLE:
            self.state = HEAD
            self.deadline = time.monotonic() + HEADER_TIMEOUT
        boundary = not self.started and not self.broken  # broken: the parser refuses the rest
        if boundary:
            seen = self.worker.seen.get(data)
            if seen is not None:
                self._take(Request(*seen))
                return
        self.started = True
        completed = self.completed
        try:
            self.parser.feed_data(data)
            if (boundary and self.completed == completed + 1 and not self.started
                    and len(data) <= MAX_SEEN_BYTES):
                self._remember(data)
        except httptools.HttpParserUpgrade:
            pass  # the request before the upgrade is answered; nothing is upgraded
        except httptools.HttpParserError:
            if self.state == CLOSING:
                return
            if self.busy or self.queue:  # answer what came before, then refuse
                self.broken = True
                self.transport.pause_reading()
            else:
                self._refuse(400)

    def eof_received(self) -> bool:
        self.eof = True
        if self.state == BODY:  # its body ended before its length: answered as such
            self._complete(INCOMPLETE)
        elif self.state == HEAD and self.started and not self.queue and not self.busy:
            self._refuse(400)  # half a request head
            return True
        if not self.queue and not self.busy:
            self.close_now()
        return True  # keep the write side open to answer what was sent

    # ------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        if self.url or self.headers:  # _complete reset it already, unless a message broke off
            self._reset_message()
        self.started = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_bytes += len(url)
        if self.head_bytes > MAX_HEAD:
            raise httptools.HttpParserError("request head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > MAX_HEAD:
            raise httptools.HttpParserError("request head too large")
        folded = name.lower()
        if folded in KNOWN and (folded not in self.known or folded == b"expect"):
            self.known[folded] = value  # the first, but any Expect that asks to continue
            if folded == b"expect" and value.strip().lower() == b"100-continue":
                self.known[b"continue"] = value

    def on_headers_complete(self) -> None:
        self.state = BODY
        self.deadline = time.monotonic() + BODY_TIMEOUT
        length = _content_length(self.known.get(b"content-length"))
        if length is not None and length > self.worker.endpoint.max_body:
            self.too_large = True  # answered now; nothing of the body is read
            self._complete(TOO_LARGE)
            raise httptools.HttpParserError("body over the limit")
        if b"continue" in self.known and self.parser.get_http_version() == "1.1":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        self.body += chunk
        if len(self.body) > self.worker.endpoint.max_body:
            self._complete(TOO_LARGE)
            raise httptools.HttpParserError("body over the limit")

    def on_message_complete(self) -> None:
        self._complete(bytes(self.body))

    # ------------------------------------------------------------ answering in order

    def _complete(self, body: bytes | object) -> None:
        parser = self.parser
        try:
            raw = parser.get_method()
            method = _METHODS.get(raw) or raw.decode("ascii", "replace")
        except httptools.HttpParserError:
            method = "GET"
        keep = parser.should_keep_alive() and body is not TOO_LARGE and body is not INCOMPLETE
        request = self.last = Request(method, self.url, self.headers, body, keep,
                                      parser.get_http_version(), self.known)
        self.completed += 1
        self._reset_message()
        self._take(request)
        if body is TOO_LARGE or body is INCOMPLETE:
            self.state = CLOSING

    def _take(self, request: Request) -> None:
        """Queue a request read whole, and answer what is next."""
        self.queue.append(request)
        self.state = HEAD
        self.deadline = time.monotonic() + HEADER_TIMEOUT
        if len(self.queue) > MAX_PIPELINE and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._next()

    def _remember(self, data: bytes) -> None:
        """`data` held exactly one whole request: keep what it read as, when it is plain."""
        request = self.last  # (a refused body raised: it never comes here)
        if request is None or b"continue" in request.known:
            return  # an Expect is answered mid-request, by the parser's callback
        seen = self.worker.seen
        if len(seen) >= MAX_SEEN:
            seen.clear()
        seen[data] = (request.method, request.target, request.headers, request.body,
                      request.keep_alive, request.version, request.known)

    def _next(self) -> None:
        while self.queue and not self.busy and self.transport is not None:
            if self.transport.is_closing():
                return
            request = self.queue.popleft()
            path, query = request.split_target()
            if path in API_PATHS:
                api_request = ApiRequest(request.method, query, request.header(b"content-type"),
                                         request.body, request.header(b"host") or "panel.example")
                if self.worker.inline_api:  # answered at the end of the turn (batching.py)
                    outcome = self.worker.endpoint.answer(api_request, later=True)
                    self.busy = True
                    if isinstance(outcome, Pending):
                        self.worker.turn.order(self, request, outcome)
                    else:
                        self.worker.turn.answer(self, request, outcome)
                else:
                    self._off_loop(request, self.worker.endpoint.answer, api_request)
            elif request.body is TOO_LARGE or request.body is INCOMPLETE:
                self._send(request, error_reply(413 if request.body is TOO_LARGE else 400))
            else:
                from smmkit.mock_server.serving.wsgi_bridge import call_wsgi, environ_for

                environ = environ_for(request, path, query, self._peer(),
                                      self.worker.server_address)
                self._off_loop(request, call_wsgi, self.worker.wsgi, environ)
        if self.paused and len(self.queue) < MAX_PIPELINE // 2 and self.state != CLOSING:
            self.paused = False
            self.transport.resume_reading()
        if not self.queue and not self.busy and self.state != CLOSING:
            if self.broken:
                self._refuse(400)
            elif self.eof:
                self.close_now()

    def _off_loop(self, request: Request, fn: Callable[..., Any], *args: Any) -> None:
        self.busy = True
        future = self.worker.run_in_pool(fn, *args)
        future.add_done_callback(lambda done: self._finished(request, done))

    def _finished(self, request: Request, done: asyncio.Future[Any]) -> None:
        self.busy = False
        try:
            outcome = done.result()
        except Exception:  # noqa: BLE001 - the Flask app answers its own errors; this is a bug
            traceback.print_exc(file=sys.stderr)  # the client gets JSON, the log the traceback
            outcome = error_reply(500)
        self._answered(request, outcome)
        self._next()

    def _answered(self, request: Request, outcome: Reply | Later) -> None:
        if isinstance(outcome, Later):  # a latency fault: a timer, the loop keeps serving
            self.busy = True
            loop = asyncio.get_running_loop()
            loop.call_later(outcome.seconds, self._resume, request, outcome)
            return
        self._send(request, outcome)

    def _resume(self, request: Request, later: Later) -> None:
        outcome = later.resume()  # carried out, and its line written, on this loop: answered
        # with the others of this turn (the client that left is answered by nobody)
        self.worker.turn.answer(self, request, outcome)

    def deliver(self, request: Request, outcome: Reply | Later) -> None:
        """The answer worked out in this turn, sent at its end (batching.py)."""
        self.busy = False
        if self.state == CLOSING and self.transport.is_closing():
            return  # the client left; what it asked for stands
        self._answered(request, outcome)
        self._next()

    def _send(self, request: Request, reply: Reply) -> None:
        if reply is DROPPED:
            self.reset()
            return
        close = (not request.keep_alive or self.eof
                 or (bool(reply.headers) and any(n.lower() == "connection"
                                                 and v.lower() == "close"
                                                 for n, v in reply.headers)))
        status, content_type = _head_lines(reply.status, reply.content_type)
        head = [status, DATE(), content_type, str(len(reply.body)).encode(), b"\r\n"]
        for name, value in reply.headers:
            if name.lower() not in ("connection", "content-length", "content-type",
                                    "date", "server", "transfer-encoding"):
                head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if close:
            head.append(b"Connection: close\r\n")
        elif request.version == "1.0":
            head.append(b"Connection: keep-alive\r\n")
        head.append(b"\r\n")
        if request.method != "HEAD":
            head.append(reply.body)
        self.transport.write(b"".join(head))
        if close:
            self.linger()
        elif not self.queue and self.state == HEAD and not self.started:
            self.state = IDLE
            self.deadline = time.monotonic() + KEEPALIVE

    # ------------------------------------------------------------ closing

    def _refuse(self, status: int) -> None:
        """Answer a request the server itself cannot take, then close."""
        self.queue.clear()
        request = Request("GET", b"/", [], b"", False, "1.1")
        self._send(request, error_reply(status))

    def timed_out(self) -> None:
        if self.state in (HEAD, BODY) and self.started and not self.busy:
            self._refuse(408)
        elif not self.busy:
            self.close_now()

    def linger(self) -> None:
        """Shut the write side (the client sees the answer's end), drop what it still sends,
        close after LINGER seconds or at its end of file."""
        self.state = CLOSING
        self.deadline = time.monotonic() + LINGER
        transport = self.transport
        if self.eof:  # the client is done sending: nothing to drain
            transport.close()
        elif transport.can_write_eof():
            try:
                transport.write_eof()
            except (OSError, RuntimeError):
                transport.close()
        else:
            transport.close()

    def close_now(self) -> None:
        self.state = CLOSING
        self.deadline = time.monotonic() + LINGER
        if self.transport is not None:
            self.transport.close()

    def reset(self) -> None:
        """Close with a TCP reset and not a byte of answer: what a dropped connection is."""
        self.state = CLOSING
        self.queue.clear()
        sock = self.transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (OSError, AttributeError):
            pass
        self.transport.abort()

    def _peer(self) -> tuple[str, int]:
        peer = self.transport.get_extra_info("peername") or ("", 0)
        return str(peer[0]), int(peer[1])


_HEAD_LINES: dict[tuple[int, str], tuple[bytes, bytes]] = {}


def _head_lines(status: int, content_type: str) -> tuple[bytes, bytes]:
    """The status line, and the lines from Server up to "Content-Length: ", as bytes (built
    once per status and type: every answer sends them)."""
    lines = _HEAD_LINES.get((status, content_type))
    if lines is None:
        lines = _HEAD_LINES[(status, content_type)] = (
            f"HTTP/1.1 {status_line(status)}\r\n".encode("latin-1"),
            f"Server: smmkit\r\nContent-Type: {content_type}\r\nContent-Length: ".encode(
                "latin-1"))
    return lines


def _content_length(value: bytes | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isdigit() else None
