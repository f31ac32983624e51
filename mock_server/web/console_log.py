"""The live request log: one line per /api/v2 request on the console of `smmkit serve`.

Each line says when, which key (a fingerprint, never the key), which action with a short
summary of its parameters, what the panel answered (an order id, a status, the error text),
the fault applied and how long it took. Colours come from rich styles; `json` writes one JSON
object per line for tools.

Every worker process writes to the same stdout. A line goes out in one `os.write` and is kept
below PIPE_BUF (4096 bytes), so lines from different workers and threads never interleave
mid-line, on a terminal or a pipe. Requests never wait for the console: each worker hands its
lines to a writer thread through a bounded queue, and a console too slow to keep up (a paused
terminal, a full pipe) loses lines — counted and reported — instead of stalling the panel.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

from rich.color import ColorSystem
from rich.style import Style
from smmkit.mock_server.storage.journal import clean, key_print
from smmkit.schemas import contract

FORMATS = ("text", "color", "json")
MAX_LINE_BYTES = 2000  # well below PIPE_BUF: one write is one line
SUMMARY_CHARS = 70
QUEUE_LINES = 10_000
_PRINT_WIDTH = len(contract.fingerprint("-"))  # the key column fits the journal's fingerprint
_STYLES = {name: Style.parse(spec) for name, spec in {
    "time": "dim", "key": "cyan", "action": "bold", "params": "default", "ok": "green",
    "error": "red", "http": "bold red", "fault": "magenta", "ms": "dim"}.items()}


def summarize_params(params: Mapping[str, str]) -> str:
    """`service=1 link=https://… quantity=100`: every parameter but the key and the action."""
    parts = []
    for name, value in contract.redact(params).items():
        if name == "action" or contract.is_secret(name):
            continue
        value = value if len(value) <= 40 else value[:39] + "…"
        parts.append(f"{name}={value}")
    text = clean(" ".join(parts))
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1] + "…"


def summarize_answer(status: int, body: bytes) -> tuple[str, bool]:
    """What the panel answered, in a few words, and whether it was a success."""
    if status == 0:
        return "connection dropped", False
    try:
        data = json.loads(body)
    except ValueError:
        head = body[:40].decode("utf-8", "replace").strip().replace("\n", " ")
        return f"HTTP {status} non-JSON: {head}", False
    ok = 200 <= status < 300
    if isinstance(data, list):
        return f"{len(data)} services", ok
    if not isinstance(data, dict):
        return str(data)[:60], ok
    if "error" in data:
        return f"error: {data['error']}"[:120], False
    if "order" in data:
        return f"order {data['order']}", ok
    if "refill" in data:
        return f"refill {data['refill']}", ok
    if "status" in data and "remains" in data:
        return f"{data['status']}, remains {data['remains']}", ok
    if "balance" in data:
        return f"balance {data['balance']} {data.get('currency', '')}".rstrip(), ok
    if "status" in data:
        return str(data["status"]), ok
    return f"{len(data)} entries", ok


class ConsoleLog:
    """Callable that writes one line per request to a file descriptor (stdout by default)."""

    def __init__(self, fmt: str = "text", fd: int = 1) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format {fmt!r}: {', '.join(FORMATS)}")
        self.fmt = fmt
        self.fd = fd
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_LINES)
        self._writer_pid = 0
        self.dropped = 0

    def __call__(self, *, params: Mapping[str, str], status: int, body: bytes, latency: float,
                 fault: str | None) -> None:
        try:
            line = self.line(params=params, status=status, body=body, latency=latency,
                             fault=fault, wall=time.time())
            data = line.encode("utf-8", "replace")
            if len(data) > MAX_LINE_BYTES:
                data = data[:MAX_LINE_BYTES - 4].decode("utf-8", "ignore").encode() + b"\x1b[0m"
            self._start_writer()
            self._queue.put_nowait(data + b"\n")
        except queue.Full:
            self.dropped += 1
        except Exception:  # noqa: BLE001 - logging must never turn an answer into a 500
            pass

    def _start_writer(self) -> None:
        if self._writer_pid != os.getpid():  # a forked worker starts its own writer
            self._writer_pid = os.getpid()
            self._queue = queue.Queue(QUEUE_LINES)
            threading.Thread(target=self._write_lines, name="smmkit-console", daemon=True).start()
            atexit.register(self.flush, 1.0)  # a stopping worker writes what it answered

    def _write_lines(self) -> None:
        lines = self._queue
        while True:
            data = lines.get()
            if data is None:  # close()
                lines.task_done()
                return
            if self.dropped:
                dropped, self.dropped = self.dropped, 0
                data = f"smmkit: {dropped} log lines dropped (console too slow)\n".encode() + data
            with contextlib.suppress(OSError):  # a closed console never fails a request
                os.write(self.fd, data)
            lines.task_done()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then end the writer thread (its descriptor may be reused)."""
        if self._writer_pid == os.getpid():
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            self.flush(timeout)
            self._writer_pid = 0

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until the queued lines are written (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def line(self, *, params: Mapping[str, str], status: int, body: bytes, latency: float,
             fault: str | None, wall: float) -> str:
        action = clean(str(params.get("action", "")))[:20] or "-"
        action = "".join(ch if ch.isprintable() else "?" for ch in action)
        fingerprint = key_print(params.get("key")) or "-"
        answer, ok = summarize_answer(status, body)
        answer = "".join(ch if ch.isprintable() else "?" for ch in clean(answer))
        ms = round(latency * 1000, 1)
        stamp = time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"
        if self.fmt == "json":
            record: dict[str, Any] = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) +
                f".{int(wall % 1 * 1000):03d}Z", "key": fingerprint, "action": action,
                "params": summarize_params(params), "status": status, "answer": answer,
                "ok": ok, "fault": fault, "ms": ms}
            return json.dumps(record, ensure_ascii=True)
        fields = [("time", stamp), ("key", fingerprint.ljust(_PRINT_WIDTH)),
                  ("action", f"{action:<8}"),
                  ("params", f"{summarize_params(params):<44}"),
                  ("ok" if ok else ("http" if status >= 500 or status == 0 else "error"),
                   f"→ {status} {answer}")]
        if fault:
            fields.append(("fault", f"[fault {fault}]"))
        fields.append(("ms", f"{ms}ms"))
        if self.fmt == "text":
            return "  ".join(text for _, text in fields if text)
        return "  ".join(_STYLES[style].render(text, color_system=ColorSystem.STANDARD)
                         for style, text in fields if text)
