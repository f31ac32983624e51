"""werkzeug's development server with a pool of threads, for `start_background`.

werkzeug's threaded server starts a thread for every connection, and its HTTP/1.0 handler closes
each connection after one request: every request paid for a new thread and, in it, a new SQLite
connection with an empty read cache (about 0.4 ms of CPU before the app ran). Here threads wait
for the next connection instead, so each keeps its connection and its copies.

Threads are started as connections arrive, up to MAX_THREADS (then connections queue), and are
daemons like werkzeug's: a request still running when the process exits does not hold it up.
"""

from __future__ import annotations

import queue
import socket
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

MAX_THREADS = 256  # at most this many requests at once; more connections wait their turn


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class PooledWSGIServer(BaseWSGIServer):
    """A WSGI server answering each connection on one of a pool of reused threads."""

    multithread = True

    def __init__(self, host: str, port: int, app: Any) -> None:
        super().__init__(host, port, app, handler=QuietHandler)
        self._jobs: queue.SimpleQueue[tuple[socket.socket, Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            start = self._idle == 0 and self._threads < MAX_THREADS
            if start:
                self._threads += 1
            else:
                self._idle = max(0, self._idle - 1)  # this one is taken; queued otherwise
        self._jobs.put((request, client_address))
        if start:
            threading.Thread(target=self._work, name="smmkit-request", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            request, client_address = job
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - socketserver's own way: report, go on
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
            with self._lock:
                self._idle += 1

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            for _ in range(self._threads):
                self._jobs.put(None)
