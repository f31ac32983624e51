"""The built-in server's processes: one master, `workers` forked event-loop workers.

The master binds one listening socket per worker on the same port (SO_REUSEPORT: the kernel
spreads new connections evenly over the workers, where one shared socket lets a busy worker
take them all), builds the app once (the store is filled before any worker opens it), forks,
and then only supervises: a worker that dies is started again on its own socket, and SIGTERM or
Ctrl-C stops every worker (SIGTERM, then SIGKILL after GRACE seconds). Workers die with the
master even when it is SIGKILLed (lifeline.py).

A worker runs one uvloop event loop (`http1`) with a thread pool of `threads` for the Flask
side, a timer that enforces the connection time limits once a second, and exits on SIGTERM
after closing its socket.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from smmkit.mock_server.serving.lifeline import die_with_parent

GRACE = 5.0  # seconds workers get to finish on stop before SIGKILL
RESTART_PAUSE = 0.5  # seconds between restarts of a worker that keeps dying


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets listening on one port (port 0: a free one).

    SO_REUSEPORT alone would let a second `smmkit serve` on the same port join this one and
    silently take half its connections. So the port is claimed first by a plain socket (which
    fails, EADDRINUSE, if anything holds it — another smmkit included, as its sockets are not
    plain), and only then bound by the workers' sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))  # raises OSError(EADDRINUSE) when the port is taken
        port = probe.getsockname()[1]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(2048)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Stopping(Exception):
    """SIGTERM or SIGINT reached the master."""


def run_master(sockets: list[socket.socket], endpoint: Any, wsgi: Any, *, threads: int,
               inline_api: bool) -> None:
    """Fork a worker per socket and supervise them until SIGINT/SIGTERM. `endpoint` answers
    /api/v2 (`ApiEndpoint.answer`), `wsgi` every other path; `inline_api`: on the loop itself
    (a local SQLite store answers in microseconds) rather than in the pool (a network database)."""
    children: dict[int, int] = {}  # pid -> socket index
    stopping = False

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _worker_main(sockets[index], sockets, endpoint, wsgi, threads, inline_api)
                code = 0
            except BaseException:  # noqa: BLE001 - a worker's last words, then its exit
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        children[pid] = index

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise _Stopping  # out of waitpid, which Python would otherwise resume (PEP 475)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(len(sockets)):
            start(index)
        last_restart = 0.0
        while not stopping:
            try:
                pid, _status = os.waitpid(-1, 0)
            except (ChildProcessError, _Stopping):
                break
            index = children.pop(pid, -1)
            if index >= 0 and not stopping:
                pause = RESTART_PAUSE - (time.monotonic() - last_restart)
                if pause > 0:
                    time.sleep(pause)
                last_restart = time.monotonic()
                print(f"smmkit: worker {pid} ended; starting another", file=sys.stderr,
                      flush=True)
                start(index)
    except _Stopping:  # a signal before the loop began
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_children(children)
        for sock in sockets:
            sock.close()


def _stop_children(children: dict[int, int]) -> None:
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + GRACE
    while children and time.monotonic() < deadline:
        for pid in list(children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                children.pop(pid)
        time.sleep(0.02)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _worker_main(sock: socket.socket, all_sockets: list[socket.socket], endpoint: Any,
                 wsgi: Any, threads: int, inline_api: bool) -> None:
    import uvloop
    from smmkit.mock_server.serving.http1 import Connection, Worker

    die_with_parent()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    for other in all_sockets:  # each worker listens on its own socket only
        if other is not sock:
            other.close()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smmkit-wsgi")
    worker = Worker(endpoint, wsgi, lambda fn, *args: loop.run_in_executor(pool, fn, *args),
                    inline_api=inline_api, server_address=sock.getsockname()[:2])

    async def serve() -> None:
        server = await loop.create_server(lambda: Connection(worker), sock=sock,
                                          backlog=2048)
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        loop.add_signal_handler(signal.SIGINT, stopped.set)

        def sweep() -> None:
            worker.sweep()
            loop.call_later(1.0, sweep)

        loop.call_later(1.0, sweep)
        await stopped.wait()
        server.close()
        worker.turn.end()  # what this turn worked out is placed and answered, not dropped
        for conn in list(worker.connections):
            if not conn.busy:
                conn.close_now()

    try:
        loop.run_until_complete(serve())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        # A worker ends with os._exit, which runs no atexit hook: the console lines of requests
        # it answered last would be lost with the log's queue (seen: a test missed the line of
        # the request answered just before stopping).
        request_log = getattr(endpoint, "request_log", None)
        if request_log is not None:
            request_log.flush(1.0)
