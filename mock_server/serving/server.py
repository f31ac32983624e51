"""Putting the fake on a port: in-process for tests, a real server for `smmkit serve`.

- `start_background(config)` runs a threaded server inside this process on its own thread
  (port 0 = ephemeral) and returns a handle with the URL, the panel and `stop()`: what the
  pytest plugin and the test suite use.
- `serve(config)` is the production path: `config.workers` pre-forked worker processes sharing
  one store, on smmkit's own event-loop server (`builtin`, the default), gunicorn or granian.
  The socket is bound here first, so port 0 works and the printed URL is the real one.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from smmkit.mock_server.core.config import Config, build_panel
from smmkit.mock_server.core.panel import Panel

# granian reads request bodies in its blocking threads: a slow body holds one (see below).
GRANIAN_MIN_THREADS = 128


@dataclass
class RunningServer:
    url: str
    panel: Panel
    config: Config
    _server: Any
    _thread: threading.Thread

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v2"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_background(config: Config | None = None, *, panel: Panel | None = None) -> RunningServer:
    """Start the fake on a daemon thread of this process (werkzeug's server answering on a pool
    of threads, pooled.py; a real socket)."""
    from smmkit.mock_server.serving.pooled import PooledWSGIServer
    from smmkit.mock_server.web.app import create_app

    config = config or Config(port=0)
    panel = panel or build_panel(config)
    app = create_app(panel, config=config)
    server = PooledWSGIServer(config.host, config.port, app)
    # serve_forever looks for shutdown() every poll_interval (0.5 s by default): each stop()
    # waited for it
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="smmkit-server", daemon=True)
    thread.start()
    return RunningServer(f"http://{server.host}:{server.port}", panel, config, server, thread)


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(config: Config, *, announce: Callable[[Panel, str], None] | None = None) -> None:
    """Run the fake in the foreground until SIGINT/SIGTERM (Ctrl-C stops cleanly)."""
    if config.server == "builtin":
        _serve_builtin(config, announce)
    elif config.server == "granian":
        _serve_granian(config, announce)
    elif config.server == "gunicorn":
        _serve_gunicorn(config, announce)
    else:
        raise ValueError(f"unknown server {config.server!r}: builtin, gunicorn or granian")


def _serve_builtin(config: Config, announce: Callable[[Panel, str], None] | None) -> None:
    """smmkit's own server (the default): `config.workers` event-loop processes (http1.py,
    prefork.py). The fastest of the three, and it can drop connections for every fault kind."""
    from smmkit.mock_server.serving.lifeline import mark_root
    from smmkit.mock_server.serving.prefork import listening_sockets, run_master
    from smmkit.mock_server.web.app import Dispatcher, create_app

    mark_root()
    sockets = listening_sockets(config.host, config.port, max(1, config.workers))
    host, port = sockets[0].getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    config = replace(config, port=port)
    panel = build_panel(config)
    app = create_app(panel, config=config)
    if announce:
        announce(panel, f"http://{shown}:{port}")
    from smmkit.mock_server.storage.engines import is_postgres

    dispatcher = app.wsgi_app
    assert isinstance(dispatcher, Dispatcher)  # create_app installs it
    run_master(sockets, dispatcher.endpoint, dispatcher, threads=config.threads,
               inline_api=not is_postgres(str(panel.store.path)))


def _granian_command(config: Config) -> list[str]:
    import sys

    from smmkit.mock_server.serving.workers import HEADER_TIMEOUT, MAX_CONNECTIONS

    return [sys.executable, "-m", "granian", "--interface", "wsgi",
            "--host", config.host, "--port", str(config.port), "--workers", str(config.workers),
            "--blocking-threads", str(max(config.threads, GRANIAN_MIN_THREADS)),
            "--http1-header-read-timeout", str(int(HEADER_TIMEOUT * 1000)),
            # granian counts open connections against backpressure (default: backlog /
            # workers): 2,000 idle sockets kept every new client out
            "--backpressure", str(MAX_CONNECTIONS), "--backlog", "2048",
            "--log-level", "warning",
            "smmkit.mock_server.serving.wsgi:app"]


def _serve_granian(config: Config, announce: Callable[[Panel, str], None] | None) -> None:
    """granian: a Rust HTTP server, several times less overhead per request than gunicorn.
    It gives the app no socket, so faults that close the connection are refused, and it answers
    unparseable HTTP itself with an empty 400.

    granian runs in a session of its own and this process relays Ctrl-C / SIGTERM to it as one
    SIGTERM: granian 2.8 sometimes hung when SIGINT reached its master and workers together.
    Its master and workers die with this process even when it is SIGKILLed (lifeline.py).

    Limits on granian (issue 16): heads must arrive within HEADER_TIMEOUT (granian's own
    timeout; it then closes the connection); idle and slowloris connections cost granian no
    thread, and each worker holds at most MAX_CONNECTIONS (its backpressure). A request body
    is read by one of granian's blocking threads, so each worker runs at
    least GRANIAN_MIN_THREADS of them: up to that many slow bodies per worker at once leave
    normal clients answered, beyond it they queue (gunicorn, the default, has no such bound).
    What granian answers itself, before the app: unparseable HTTP or an unknown transfer coding
    gets an empty 400; reason phrases are granian's (a Cloudflare 520 goes out as `520 <none>`).
    A client that sends a whole request and then half-closes gets no answer from granian, and
    the request is carried out whole (an `add` placed and debited once, visible to `status` of
    its key) or not at all, depending on when granian sees the close: never half-done, but the
    client cannot tell which. Use gunicorn (it answers them) for clients that half-close."""
    import json
    import signal
    import subprocess
    import sys
    from dataclasses import asdict

    from smmkit.mock_server.serving.lifeline import die_with_parent, mark_root

    with bind_socket(config.host, config.port) as probe:  # port 0: learn a free port first
        port = probe.getsockname()[1]
    panel = build_panel(config)  # fills a new store once, before the workers open it
    config = replace(config, port=port, db=str(panel.store.path))
    if announce:
        announce(panel, f"http://{config.host}:{port}")
    command = _granian_command(config)
    mark_root()
    env = {**os.environ, "SMMKIT_SERVE_CONFIG": json.dumps(asdict(config))}
    # die_with_parent: a SIGKILLed `smmkit serve` takes granian with it (lifeline.py)
    child = subprocess.Popen(command, env=env, start_new_session=True,
                             preexec_fn=die_with_parent)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    # SIGINT too, explicitly: a shell starts background jobs with SIGINT ignored, and Python then
    # gives no KeyboardInterrupt (`kill -INT` left serve and granian running)
    signal.signal(signal.SIGINT, stop)
    try:
        code = child.wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    else:  # granian ended by itself: say so and end too, rather than hold a dead port
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        print(f"smmkit: granian stopped ({how}); stopping", file=sys.stderr, flush=True)
        raise SystemExit(1)
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def _serve_gunicorn(config: Config, announce: Callable[[Panel, str], None] | None) -> None:
    from gunicorn.app.base import BaseApplication
    from smmkit.mock_server.serving.lifeline import mark_root
    from smmkit.mock_server.serving.workers import MAX_CONNECTIONS
    from smmkit.mock_server.web.app import create_app

    mark_root()
    sock = bind_socket(config.host, config.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    config = replace(config, port=port)
    panel = build_panel(config)
    app = create_app(panel, config=config)
    if announce:
        announce(panel, url)

    class Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": [f"fd://{sock.fileno()}"],
                "workers": config.workers,
                "worker_class": "smmkit.mock_server.serving.workers.JsonErrorThreadWorker",
                "threads": config.threads,
                "keepalive": 5,  # idle keep-alive connections close after 5 s
                # the worker sheds its idlest connection at MAX_CONNECTIONS; gunicorn's own
                # cap (which stops accepting) must never be reached first
                "worker_connections": MAX_CONNECTIONS + 1,
                "timeout": 60,
                "graceful_timeout": 5,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "warning",
                "preload_app": True,
                "proc_name": "smmkit",
            }
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return app

    Gunicorn().run()
