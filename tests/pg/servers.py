"""`smmkit serve` processes on a PostgreSQL database, and a racing HTTP load against them."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from support import read_line

TOKEN = "pg-test-token"


@dataclass
class Server:
    proc: subprocess.Popen
    url: str  # the /api/v2 URL
    log: str  # stderr goes to a file: a pipe nobody reads would block the server

    @property
    def base(self) -> str:
        return self.url.rsplit("/api/v2", 1)[0]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=20)

    def stderr(self) -> str:
        with open(self.log, encoding="utf-8", errors="replace") as handle:
            return handle.read()


def serve(db: str, *args: str, workers: int = 2, timeout: float = 30) -> Server:
    """`smmkit serve --db DB` on a free port, once it has printed its URL."""
    log = tempfile.NamedTemporaryFile(prefix="smmkit-serve-", suffix=".log", delete=False)
    atexit.register(_remove, log.name)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from smmkit.cli import main; main()", "serve", "--db", db,
         "--port", "0", "--workers", str(workers), "--admin-token", TOKEN, *args],
        stdout=subprocess.PIPE, stderr=log, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = read_line(proc.stdout, timeout)
    if "listening on " not in line:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        raise AssertionError(f"serve printed {line!r}; stderr: {open(log.name).read()[-2000:]}")
    # The rest of the banner is not read: let a thread drain it so stdout never fills.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return Server(proc, line.split("listening on ", 1)[1].strip(), log.name)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def control(server: Server, method: str, path: str, **kw: Any) -> Any:
    response = requests.request(method, f"{server.base}/_control{path}", timeout=30,
                                headers={"Authorization": f"Bearer {TOKEN}"}, **kw)
    assert response.status_code < 300, response.text
    return response.json()


@dataclass
class Tally:
    """What every request of a load got back, collected from many threads."""

    ok: list[int] = field(default_factory=list)  # acknowledged order ids
    refused: list[str] = field(default_factory=list)  # JSON error texts
    statuses: dict[int, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)  # a 5xx that is not our 503 JSON, garbage
    failed: int = 0  # no answer at all (connection refused or reset)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, response: requests.Response | None) -> None:
        with self.lock:
            if response is None:
                self.failed += 1
                return
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            text = response.text
            if response.status_code == 503:
                if response.json() != {"error": "Service unavailable"}:
                    self.bad.append(text[:300])
                return
            if response.status_code != 200 or "Traceback" in text:
                self.bad.append(f"{response.status_code}: {text[:300]}")
                return
            body = response.json()
            if "order" in body:
                self.ok.append(int(body["order"]))
            else:
                self.refused.append(str(body.get("error")))


def race(urls: list[str], key: str, *, threads: int, per_thread: int, tally: Tally,
         service: int = 1, quantity: int = 100, between: Callable[[int], None] | None = None,
         deadline: float = 600) -> None:
    """`threads` threads × `per_thread` adds on one key, thread i on urls[i % len(urls)],
    each with a link of its own (no "active order" refusals). `between(n)` runs after each
    answer, n counting the answers of all threads."""
    stop_at = time.monotonic() + deadline
    answered = iter(range(1, threads * per_thread + 1))  # next() is atomic under the GIL

    def work(n: int) -> None:
        session = requests.Session()
        url = urls[n % len(urls)]
        for i in range(per_thread):
            if time.monotonic() > stop_at:
                return
            data = {"key": key, "action": "add", "service": service,
                    "link": f"https://race.test/{n}/{i}", "quantity": quantity}
            try:
                response = session.post(url, data=data, timeout=30)
            except requests.RequestException:
                response = None
                session = requests.Session()
            tally.note(response)
            if between is not None:
                between(next(answered))  # how many requests of the whole load have finished

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
