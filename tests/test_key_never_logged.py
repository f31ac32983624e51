"""Issue 16 item 5: an API key never appears in a log line, whatever the request looks like
(malformed request lines with ?key=..., bodies cut short, unknown and valid keys)."""

from __future__ import annotations

import json
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from engines import engine_store

SECRET = "sk-live-0123456789abcdef"
WRONG = "sk-wrong-fedcba9876543210"


def _url(process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 60
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1)
        if ready:
            line = process.stdout.readline()  # type: ignore[union-attr]
            seen += line
            found = re.search(r"listening on (http://\S+)/api/v2", line)
            if found:
                return found.group(1)
    raise AssertionError(f"no banner: {seen!r}")


def _send(port: int, raw: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass


def test_no_log_line_carries_a_key(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"key": SECRET, "balance": "10", "currency": "USD"}]))
    process = subprocess.Popen(
        [sys.executable, "-m", "smmkit", "serve", "--db", str(engine_store(tmp_path / "p.db")), "--port", "0",
         "--workers", "1", "--accounts", str(accounts)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(_url(process).rsplit(":", 1)[1])
        for key in (SECRET, WRONG):
            for raw in (f"GET /api/v2?key={key}&action=balance HTTP/1.1\r\nHost: x\r\n\r\n",
                        f"GET /api/v2?key={key} action=balance HTTP/1.1\r\n\r\n",
                        f"GE\x00T /api/v2?key={key} HTTP/1.1\r\n\r\n",
                        f"GET /api/v2?key={key}&x={'a' * 9000} HTTP/1.1\r\n\r\n",
                        f"POST /api/v2 HTTP/1.1\r\nContent-Length: 90\r\n\r\nkey={key}",
                        f"POST /api/v2 HTTP/1.1\r\nContent-Length: 40\r\nContent-Type: "
                        f"application/x-www-form-urlencoded\r\n\r\nkey={key}&action=add&servi"):
                _send(port, raw.encode("latin-1"))
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)
    assert SECRET not in stderr and WRONG not in stderr, stderr[-2000:]
