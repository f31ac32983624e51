"""Helpers for the hardening tests: `smmkit serve` as a real process on a real port, a raw
socket client, and reads of the store the server writes. With SMMKIT_TEST_ENGINE=postgres the
store is a PostgreSQL schema of its own (tests/engines.py), else an SQLite file beside the log.

A module of its own (not conftest) so test files and the fuzz suite can import it by name.
The server's stderr goes to a file, never a pipe: a chatty server must not block on a full
pipe, and the tests read the log to assert that no traceback was written."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from engines import engine_store

DEMO_KEY = "smmkit-demo-key"
ADMIN_TOKEN = "hardening-token"
SERVERS = ("builtin", "gunicorn", "granian")
# Servers that answer unreadable HTTP with the catalogue's JSON and own every connection
# (time limits, half-closed clients answered); granian answers such HTTP itself.
JSON_EDGE = ("builtin", "gunicorn")


class Serve:
    """`smmkit serve --port 0` in its own process group, stderr to `<server>.log`."""

    def __init__(self, tmp: Path, server: str = "builtin", *extra: str,
                 workers: int = 2) -> None:
        self.db: Path | str = engine_store(tmp / f"{server}.db")
        self.log = tmp / f"{server}.log"
        self.server = server
        argv = [sys.executable, "-c", "from smmkit.cli import main; main()", "serve",
                "--port", "0", "--db", str(self.db), "--workers", str(workers),
                "--server", server, "--admin-token", ADMIN_TOKEN, *extra]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as errors:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors,
                                         start_new_session=True, env=env)
        line = self._first_line(time.monotonic() + 30)
        if " listening on " not in line:
            self.kill()
            raise RuntimeError(f"serve printed {line!r}; log: {self.log_text()[-2000:]}")
        self.api = line.split(" listening on ", 1)[1].strip()
        self.base = self.api.rsplit("/api/v2", 1)[0]
        host, port = self.base.split("//", 1)[1].rsplit(":", 1)
        self.address = (host, int(port))
        self.wait_ready()

    def _first_line(self, deadline: float) -> str:
        assert self.proc.stdout is not None
        fd, data = self.proc.stdout.fileno(), b""
        while not data.endswith(b"\n") and time.monotonic() < deadline:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                break
            chunk = os.read(fd, 1)
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.post(self.api, data={"action": "balance"}, timeout=2).ok:
                    return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.log.read_text("utf-8", "replace") if self.log.exists() else ""

    def control(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kw.pop("headers", {})}
        return requests.request(method, f"{self.base}/_control{path}", timeout=30,
                                headers=headers, **kw)

    def reset(self) -> None:
        assert self.control("POST", "/reset").status_code < 300

    def _read(self) -> Any:
        """A connection of our own to the store, for one consistent read."""
        if isinstance(self.db, str):
            import psycopg

            return psycopg.connect(self.db, autocommit=True)
        return contextlib.closing(sqlite3.connect(self.db, timeout=30))

    def db_rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        if isinstance(self.db, str):
            sql = sql.replace("?", "%s")
        with self._read() as db:
            return db.execute(sql, args).fetchall()

    def orders(self) -> int:
        return self.db_rows("SELECT COUNT(*) FROM orders")[0][0]

    def conserved(self) -> bool:
        """For every account, in one read of the store: balance + Σ kept charges = opening +
        top-ups (a refund moves money between the two sides in one transaction)."""
        with self._read() as db:
            db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if isinstance(self.db, str)
                       else "BEGIN")
            accounts = db.execute("SELECT id, balance, opening, topups FROM accounts").fetchall()
            kept: dict[int, Decimal] = {}
            for account, charge, refunded in db.execute(
                    "SELECT account_id, charge, refunded FROM orders"):
                kept[account] = kept.get(account, Decimal(0)) + Decimal(charge) - Decimal(refunded)
            db.execute("COMMIT")
        return all(Decimal(balance) + kept.get(account, Decimal(0))
                   == Decimal(opening) + Decimal(topups)
                   for account, balance, opening, topups in accounts)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


def exchange(address: tuple[str, int], payload: bytes, *, half_close: bool = False,
             timeout: float = 10) -> bytes:
    """Send raw bytes, optionally half-close, and read until the server closes (or `timeout`)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
                if _complete(data, head_request=payload.startswith(b"HEAD ")):
                    break
    return data


def _complete(data: bytes, *, head_request: bool = False) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    if head_request:  # the answer to HEAD has no body, whatever its Content-Length says
        return True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip() or 0)
    return False


def parse(data: bytes) -> tuple[int, str, dict[str, str], bytes]:
    """(status, reason, headers, body) of the first response in `data`."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    _, status, *reason = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return int(status), (reason[0] if reason else ""), headers, body[:length]


def request_bytes(method: str, target: str, body: bytes = b"", *,
                  content_type: str = "application/x-www-form-urlencoded",
                  headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if length is not None or body:
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_body(data: bytes) -> Any:
    return json.loads(parse(data)[3])


def traceback_in(text: str) -> bool:
    return "Traceback (most recent call last)" in text
