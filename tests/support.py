"""Helpers shared by the fake panel's tests (fixtures live in conftest.py).

A module of its own, not conftest: tests/ and tests/kit/ both have a conftest.py, so
`from conftest import ...` would depend on which directory pytest put first on sys.path."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from smmkit.mock_server.core.config import DEMO_KEY, Config, build_panel
from smmkit.mock_server.core.panel import Panel

SECOND_KEY = "smmkit-second-key"
KEYS = {DEMO_KEY: ("1000.00", "USD"), SECOND_KEY: ("250.00", "EUR")}


def manual_panel(seed: int = 1, **kw: Any) -> Panel:
    return build_panel(Config(db=":memory:", clock="manual", seed=seed, **kw))


@dataclass
class ApiClient:
    """A tiny client for the in-process server: `call(action=..., ...)` posts a form."""

    url: str
    panel: Panel
    key: str = DEMO_KEY

    def post(self, data: Any = None, **kw: Any) -> Any:
        import requests

        return requests.post(self.url, data=data, timeout=10, **kw)

    def call(self, **params: Any) -> Any:
        params.setdefault("key", self.key)
        response = self.post(params)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        return response.json()


def order_count(panel: Panel) -> int:
    return panel.store.connection().execute("SELECT COUNT(*) FROM orders").fetchone()[0]


def conserved(panel: Panel, key: str) -> bool:
    a = panel.audit(key)
    return a["balance"] + a["charges"] == a["opening"] + a["topups"]


# ------------------------------------------------------------------ `smmkit serve` processes


def read_line(stream: Any, timeout: float) -> str:
    """One line from a pipe, or "" when none arrives in time."""
    deadline = time.monotonic() + timeout
    buffer = b""
    fd = stream.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        buffer += chunk
        if chunk == b"\n":
            break
    return buffer.decode("utf-8", "replace")


@dataclass
class ServeProcess:
    proc: subprocess.Popen
    first_line: str
    url: str  # ends with /api/v2

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def start_serve(*args: str, module: bool = False, timeout: float = 20,
                env: dict[str, str] | None = None) -> ServeProcess:
    """Run `smmkit serve ARGS` (or `python -m smmkit.mock_server ARGS`) in its own process group and
    wait for the URL it prints on its first line. `env`: extra environment variables."""
    command = ([sys.executable, "-m", "smmkit.mock_server", *args] if module
               else [sys.executable, "-c", "from smmkit.cli import main; main()",
                     "serve", *args])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env=env)
    line = read_line(proc.stdout, timeout)
    prefix = "listening on "
    if prefix not in line:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        err = proc.stderr.read().decode("utf-8", "replace") if proc.wait(10) is not None else ""
        raise AssertionError(f"serve printed {line!r} first; stderr: {err[-2000:]}")
    url = line.split(prefix, 1)[1].strip()
    return ServeProcess(proc, line, url)


def wait_ready(url: str, timeout: float = 15) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.post(url, data={"key": DEMO_KEY, "action": "balance"}, timeout=2)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
