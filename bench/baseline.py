"""The baseline: a raw WSGI callable with a constant `balance` body, served like `smmkit serve`.

`python bench/baseline.py --workers 2 --threads 16` binds 127.0.0.1 port 0, prints
"baseline listening on http://HOST:PORT/api/v2" and runs gunicorn with the very settings of
`mock_server.server.serve` (gthread, same workers/threads/keepalive, preloaded, socket bound
first) — so the ratio scenario/baseline isolates the fake's own cost from the server's.
`gunicorn -k gthread -w 2 --threads 16 bench.baseline:app` serves the same callable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any

BODY = b'{"balance":"100.84292","currency":"USD"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        stream.read(length)  # read the body like the real endpoint does
    start_response("200 OK", HEADERS)
    return [BODY]


def serve_granian(workers: int, threads: int) -> None:
    """The same callable on granian with the settings of mock_server.server._serve_granian."""
    import os

    from granian import Granian
    from smmkit.mock_server.serving.server import bind_socket

    with bind_socket("127.0.0.1", 0) as probe:
        port = probe.getsockname()[1]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(
        os.path.abspath(__file__)), os.environ.get("PYTHONPATH")]))
    print(f"baseline listening on http://127.0.0.1:{port}/api/v2", flush=True)
    Granian("baseline:app", address="127.0.0.1", port=port, interface="wsgi", workers=workers,
            blocking_threads=threads, backlog=2048, log_level="warning").serve()


class ConstantEndpoint:
    """What the built-in server calls for /api/v2: the same constant body, no panel."""

    max_body = 8 * 1024 * 1024

    def __init__(self) -> None:
        from smmkit.mock_server.web.api import Reply

        self.reply = Reply(200, BODY)

    def answer(self, request: Any, *, later: bool = False) -> Any:
        return self.reply


def serve_builtin(workers: int, threads: int) -> None:
    """The constant body on smmkit's own server, settings of server._serve_builtin."""
    from smmkit.mock_server.serving.prefork import listening_sockets, run_master

    sockets = listening_sockets("127.0.0.1", 0, workers)
    print(f"baseline listening on http://127.0.0.1:{sockets[0].getsockname()[1]}/api/v2",
          flush=True)
    run_master(sockets, ConstantEndpoint(), app, threads=threads, inline_api=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--server", choices=["builtin", "gunicorn", "granian"],
                        default="builtin")
    args = parser.parse_args(argv)
    if args.server == "builtin":
        serve_builtin(args.workers, args.threads)
        return
    if args.server == "granian":
        serve_granian(args.workers, args.threads)
        return

    from gunicorn.app.base import BaseApplication
    from smmkit.mock_server.serving.server import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    host, port = sock.getsockname()[:2]

    class Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            # Keep in step with mock_server.server.serve.
            settings = {
                "bind": [f"fd://{sock.fileno()}"], "workers": args.workers,
                "worker_class": "gthread", "threads": args.threads, "keepalive": 5,
                "timeout": 60, "graceful_timeout": 5, "accesslog": None, "errorlog": "-",
                "loglevel": "warning", "preload_app": True, "proc_name": "smmkit-baseline",
            }
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return app

    print(f"baseline listening on http://{host}:{port}/api/v2", flush=True)
    sys.argv = sys.argv[:1]  # gunicorn must not read our options
    Gunicorn().run()


if __name__ == "__main__":
    main()
