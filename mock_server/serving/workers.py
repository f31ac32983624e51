"""gunicorn worker for the fake: threaded keep-alive workers that slow clients cannot starve.

gunicorn's gthread worker gives each new connection a thread that blocks reading it: 16 idle,
slowloris or slow-body connections per worker kept every real client out (issue 16). Here the
worker's event loop reads every connection without blocking (`framing.verdict` says when a
request is whole) and only a whole request gets a thread, so:

- a new or kept-alive connection has HEADER_TIMEOUT seconds for its request head and
  BODY_TIMEOUT more for its body; late ones get a JSON 408 and are closed;
- idle keep-alive connections close after gunicorn's `keepalive` seconds;
- at most MAX_CONNECTIONS per worker: beyond that the connection idle longest is closed to
  make room, so a flood of idle sockets cannot keep a new client out;
- an answer the app marks `Connection: close` (413, a body cut short) closes the connection
  instead of draining what the client announced.

gunicorn answers requests it cannot parse (a 5 kB request line, a bad header, garbage, an
unknown transfer coding) itself, before the app sees them; here those answers are JSON with
the catalogue's "Incorrect request" and a 4xx status (gunicorn's 501 for an unknown transfer
coding becomes 400), and gunicorn's log lines never show an API key.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import selectors
import socket
import time
from collections import deque
from functools import partial
from typing import Any
from urllib.parse import unquote

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker
from smmkit.mock_server.core.errors import error_text
from smmkit.mock_server.serving.framing import Verdict, verdict
from smmkit.mock_server.serving.lifeline import die_with_parent
from smmkit.schemas import contract
from werkzeug.http import HTTP_STATUS_CODES

HEADER_TIMEOUT = 10.0  # seconds for a request head, from the connection's first wait
BODY_TIMEOUT = 30.0  # more seconds for the body, once the head is in
MAX_CONNECTIONS = 4096  # per worker; the listen backlog holds the rest
_PAIR = re.compile(r"([^?&\s'\"=]+)=([^&\s]*)")


def redact(text: str) -> str:
    """`...?key=abc&action=x` -> `...?key=***&action=x` (a key never reaches a log line): every
    pair whose name, percent-decoded, is a secret (`key`, `k%65y`, `Key`, `api_key`) loses its
    whole value, quotes included."""
    def hide(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"{name}=***" if contract.is_secret(unquote(name)) else match.group(0)

    return _PAIR.sub(hide, text)


class _RedactKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request it could not parse, as JSON and never a 5xx for a client's
    mistake (its 501 for an unknown transfer coding is a request we cannot read: 400)."""
    if status_int == 501:
        status_int = 400
    text = error_text("incorrect_request") if status_int < 500 else "Internal error"
    body = json.dumps({"error": text}, separators=(",", ":")).encode()
    phrase = HTTP_STATUS_CODES.get(status_int, reason)
    head = (f"HTTP/1.1 {status_int} {phrase}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def _closing_aware(app: Any) -> Any:
    """An app answer with `Connection: close` makes gunicorn close (it drops the header and
    would otherwise drain the announced body, up to 1 TiB, before the next request)."""
    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            for name, value in headers:
                if name.lower() == "connection" and value.lower() == "close":
                    response = getattr(start_response, "__self__", None)
                    if response is not None and hasattr(response, "force_close"):
                        response.force_close()
            return start_response(status, headers, *exc)
        return app(environ, start)
    return wsgi


LINGER = 2.0  # seconds a closed connection's unread input is drained (RFC 9112 §9.6)


class LingeringConn(TConn):  # type: ignore[misc]
    """A connection whose graceful close does not block: gunicorn's `close_graceful` reads
    the client's leftovers for up to 2 s *in the event loop*, so 40 clients that never close
    stalled every connection of the worker for over a minute. Here the write side is shut and
    the worker drains and closes the socket from its loop."""

    def __init__(self, worker: JsonErrorThreadWorker, *args: Any) -> None:
        super().__init__(*args)
        self.worker = worker
        self.buffer = bytearray()  # the request read so far in the event loop
        self.head_done = False  # its head is complete: the body's time limit applies
        self.prebuffer: bytes | None = None  # a whole request, handed to a thread to parse
        self.timeout: float = time.monotonic()

    def close(self, graceful: bool = False) -> None:
        if graceful:
            self.worker.linger(self.sock)
        else:
            util.close(self.sock)


class JsonErrorThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread with reads in the event loop, time limits, a connection cap and JSON errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: deque[LingeringConn] = deque()  # still sending a request, oldest first
        self.lingering: dict[socket.socket, float] = {}  # closed for writing: socket -> deadline
        self.max_body = 8 * 1024 * 1024

    def init_process(self) -> Any:
        # Patched in this worker process only; gunicorn calls util.write_error for every
        # request it rejects before the app runs.
        util.write_error = write_json_error
        die_with_parent()  # ends with the master even when it is SIGKILLed
        for logger in (self.log.error_log, self.log.access_log):
            logger.addFilter(_RedactKeys())
        return super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        config = getattr(getattr(self.wsgi, "config", {}), "get", lambda *_: None)("SMMKIT")
        if config is not None:
            self.max_body = config.max_body
        self.wsgi = _closing_aware(self.wsgi)

    # ------------------------------------------------------------ reading in the event loop

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        if self.nr_conns >= MAX_CONNECTIONS:
            self._shed_one()
        self.nr_conns += 1
        conn = LingeringConn(self, self.cfg, client, address, listener.getsockname())
        self._start_reading(conn)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection has bytes: read its next request here, not in a thread."""
        assert isinstance(conn, LingeringConn)  # accept() makes every connection one
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._start_reading(conn)

    def _start_reading(self, conn: LingeringConn) -> None:
        conn.buffer = bytearray()
        conn.head_done = False
        conn.timeout = time.monotonic() + HEADER_TIMEOUT
        self.reading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_bytes, conn))

    def _on_bytes(self, conn: LingeringConn, client: socket.socket) -> None:
        try:
            chunk = client.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not chunk:  # the client half-closed or left: serve what it sent, if anything
            if conn.buffer:
                self._hand_over(conn)
            else:
                self._drop(conn)
            return
        conn.buffer += chunk
        if verdict(conn.buffer, self.max_body) is Verdict.READY:
            self._hand_over(conn)
        elif not conn.head_done and b"\r\n\r\n" in conn.buffer:
            conn.head_done = True
            conn.timeout = time.monotonic() + BODY_TIMEOUT

    def _hand_over(self, conn: LingeringConn) -> None:
        self._forget(conn)
        conn.prebuffer, conn.buffer = bytes(conn.buffer), bytearray()
        conn.data_ready = True
        self.enqueue_req(conn)

    def _forget(self, conn: LingeringConn) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        try:
            self.reading.remove(conn)
        except ValueError:
            pass

    def _drop(self, conn: LingeringConn) -> None:
        self._forget(conn)
        self.nr_conns -= 1
        conn.close()

    def _shed_one(self) -> None:
        """Make room: close the connection idle longest (a kept-alive one, else a reader)."""
        if self.keepalived_conns:
            conn = self.keepalived_conns.popleft()
            try:
                self.poller.unregister(conn.sock)
            except (OSError, KeyError, ValueError):
                pass
            self.nr_conns -= 1
            conn.close()
        elif self.reading:
            self._drop(self.reading[0])

    def linger(self, sock: socket.socket) -> None:
        """Shut the write side (the client sees the answer's end) and drain from the loop."""
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
            self.poller.register(sock, selectors.EVENT_READ, self._drain_lingering)
        except (OSError, ValueError, KeyError):
            util.close(sock)
            return
        self.lingering[sock] = time.monotonic() + LINGER

    def _drain_lingering(self, sock: socket.socket) -> None:
        try:
            if sock.recv(65536):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._close_lingering(sock)

    def _close_lingering(self, sock: socket.socket) -> None:
        self.lingering.pop(sock, None)
        try:
            self.poller.unregister(sock)
        except (OSError, KeyError, ValueError):
            pass
        util.close(sock)

    def murder_pending(self) -> None:
        """Close readers past their time (called once a second by gunicorn's loop); one that
        sent part of a request is told so with a JSON 408."""
        super().murder_pending()
        now = time.monotonic()
        # A full scan: a body extends its connection's time, so the deque is not sorted.
        for conn in [conn for conn in self.reading if conn.timeout <= now]:
            if conn.buffer:
                try:
                    write_json_error(conn.sock, 408, "Request Timeout", "")
                except OSError:
                    pass
            self._drop(conn)
        for sock in [sock for sock, deadline in self.lingering.items() if deadline <= now]:
            self._close_lingering(sock)

    # ------------------------------------------------------------ in the thread

    def handle(self, conn: TConn) -> Any:
        assert isinstance(conn, LingeringConn)  # accept() makes every connection one
        data = conn.prebuffer
        if data:
            conn.prebuffer = None
            conn.sock.setblocking(True)
            conn.init()
            # init() made an HTTP/1 parser: the one with an unreader
            conn.parser.unreader.unread(data)  # type: ignore[union-attr]
        return super().handle(conn)
