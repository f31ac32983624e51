"""The live request log: what one line says, that it never shows the key, and that lines from
two workers and many threads of a real `smmkit serve` never interleave."""

from __future__ import annotations

import json
import os
import re
import select
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from engines import engine_store
from hypothesis import given, settings
from hypothesis import strategies as st
from smmkit.mock_server.core.config import DEMO_KEY
from smmkit.mock_server.storage.journal import key_print
from smmkit.mock_server.web.console_log import (
    MAX_LINE_BYTES,
    ConsoleLog,
    summarize_answer,
    summarize_params,
)
from support import read_line, start_serve, wait_ready

ADD = {"key": DEMO_KEY, "action": "add", "service": "1", "link": "https://x.test/p",
       "quantity": "100"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def line(fmt: str = "text", params=None, status=200, body=b'{"order":23501}', fault=None):
    return ConsoleLog(fmt).line(params=params or ADD, status=status, body=body, latency=0.0123,
                                fault=fault, wall=1_700_000_000.25)


def test_a_text_line_says_who_what_answer_fault_and_time():
    text = line(fault="latency")
    assert key_print(DEMO_KEY) in text and DEMO_KEY not in text
    assert " add " in text and "service=1 link=https://x.test/p quantity=100" in text
    assert "→ 200 order 23501" in text and "[fault latency]" in text and "12.3ms" in text
    assert re.match(r"\d\d:\d\d:\d\d\.250  ", text)
    assert not ANSI.search(text)


@pytest.mark.parametrize(("status", "body", "answer"), [
    (200, b'{"error":"Not enough funds on balance"}', "error: Not enough funds on balance"),
    (200, b'{"charge":"0.9","start_count":"0","status":"In progress","remains":"40",'
          b'"currency":"USD"}', "In progress, remains 40"),
    (200, b'{"balance":"100.5","currency":"USD"}', "balance 100.5 USD"),
    (200, b'[{"service":1},{"service":2}]', "2 services"),
    (200, b'{"refill":"7"}', "refill 7"),
    (502, b"<!DOCTYPE html><html>", "HTTP 502 non-JSON: <!DOCTYPE html><html>"),
    (0, b"", "connection dropped"),
])
def test_the_answer_in_a_few_words(status, body, answer):
    assert summarize_answer(status, body)[0] == answer
    assert f"→ {status} {answer}" in line(status=status, body=body)


def test_colour_and_json_formats():
    coloured = line("color", status=200, body=b'{"error":"Incorrect request"}', fault="drop")
    assert ANSI.search(coloured) and "Incorrect request" in ANSI.sub("", coloured)
    record = json.loads(line("json", fault="rate_limit"))
    assert record == {"time": "2023-11-14T22:13:20.250Z", "key": key_print(DEMO_KEY),
                      "action": "add", "params": "service=1 link=https://x.test/p quantity=100",
                      "status": 200, "answer": "order 23501", "ok": True, "fault": "rate_limit",
                      "ms": 12.3}
    with pytest.raises(ValueError, match="unknown log format"):
        ConsoleLog("xml")


def test_long_parameters_are_summarised_short():
    summary = summarize_params({**ADD, "link": "https://x.test/" + "a" * 500, "comments": "b\n" * 99})
    assert len(summary) <= 70 and "\n" not in summary


@settings(max_examples=80, deadline=None)
@given(params=st.dictionaries(st.text(max_size=30), st.text(max_size=300), max_size=6),
       body=st.binary(max_size=300), status=st.integers(0, 599),
       fmt=st.sampled_from(["text", "color", "json"]))
def test_any_request_gives_one_short_line(params, body, status, fmt):
    read, write = os.pipe()
    try:
        log = ConsoleLog(fmt, fd=write)
        log(params=params, status=status, body=body, latency=0.001, fault=None)
        log.close()
        data = os.read(read, 65536)
    finally:
        os.close(read)
        os.close(write)
    assert data.endswith(b"\n") and data.count(b"\n") == 1 and len(data) <= MAX_LINE_BYTES + 1
    if fmt == "json":
        json.loads(data)


def test_a_closed_console_never_fails_a_request():
    read, write = os.pipe()
    os.close(read)
    os.close(write)
    log = ConsoleLog("text", fd=write)
    log(params=ADD, status=200, body=b"{}", latency=0.0, fault=None)
    log.flush()
    log(params=ADD, status=200, body=b"{}", latency=0.0, fault=None)  # the writer lives on
    log.flush()
    assert log._queue.unfinished_tasks == 0
    log.close()


def test_a_stalled_console_drops_lines_instead_of_stalling_requests(monkeypatch):
    """Nobody reads the pipe: requests still return at once; the loss is reported later."""
    import smmkit.mock_server.web.console_log as console_log

    monkeypatch.setattr(console_log, "QUEUE_LINES", 50)
    read, write = os.pipe()
    try:
        log = ConsoleLog("text", fd=write)
        big = {**ADD, "link": "https://x.test/" + "q" * 1800}
        for _ in range(400):  # far more than a 64 KiB pipe holds
            log(params=big, status=200, body=b"{}", latency=0.0, fault=None)
        received = b""
        while b"dropped" not in received:
            received += os.read(read, 65536)
        closing = threading.Thread(target=log.close)
        closing.start()
        while closing.is_alive():  # keep reading until the writer has ended
            ready, _, _ = select.select([read], [], [], 0.05)
            if ready:
                os.read(read, 65536)
        closing.join()
    finally:
        os.close(read)
        os.close(write)
    assert re.search(rb"smmkit: \d+ log lines dropped \(console too slow\)", received)


# ------------------------------------------------------------------ a real `smmkit serve`


def _serve(*args: str):
    proc = start_serve("--port", "0", "--db", engine_store(":memory:"), *args)
    wait_ready(proc.url)
    return proc


def _drain_in_background(proc) -> list[str]:
    """Read stdout as it comes (a real terminal does; a full pipe would only drop lines)."""
    lines: list[str] = []

    def pump() -> None:
        for raw in proc.proc.stdout:
            lines.append(raw.decode("utf-8", "replace"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _lines_until(proc, wanted: int, timeout: float = 20) -> list[str]:
    lines = []
    while len(lines) < wanted:
        got = read_line(proc.proc.stdout, timeout)
        if not got:
            break
        lines.append(got)
    return lines


def test_two_workers_and_many_threads_never_interleave_lines():
    proc = _serve("--log", "--log-format", "json", "--workers", "2")
    try:
        lines = _drain_in_background(proc)
        long_link = "https://x.test/" + "z" * 1500

        def hit(i: int) -> int:
            data = {**ADD, "link": f"{long_link}{i}", "quantity": "100"} if i % 2 else \
                {"key": DEMO_KEY, "action": "balance", "n": str(i)}
            return requests.post(proc.url, data=data, timeout=10).status_code

        with ThreadPoolExecutor(16) as pool:
            assert all(s == 200 for s in pool.map(hit, range(300)))
        deadline = time.monotonic() + 15  # the writer threads catch up
        while sum(ln.startswith("{") for ln in lines) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.stop()
    records = [json.loads(ln) for ln in lines if ln.startswith("{")]  # each line whole
    assert all(ln.startswith(("{", " ", "smmkit", "Press")) for ln in lines), lines[:5]
    assert sum(1 for r in records if r.get("params", "").startswith("n=")) == 150
    assert sum(1 for r in records if r["action"] == "add" and r["answer"].startswith("order")) == 150
    assert all(r["key"] == key_print(DEMO_KEY) for r in records)
    assert DEMO_KEY not in "".join(ln for ln in lines if ln.startswith("{"))


@pytest.mark.parametrize("args", [("--quiet",), ()])  # default: off when stdout is not a terminal
def test_quiet_and_piped_output_print_no_request_lines(args):
    proc = _serve(*args)
    for _ in range(5):
        requests.post(proc.url, data={"key": DEMO_KEY, "action": "balance"}, timeout=10)
    proc.stop()
    rest = proc.proc.stdout.read().decode()
    assert "→" not in rest and "ms" not in rest.split("Press Ctrl-C to stop.")[-1]
    assert rest.rstrip().endswith("Press Ctrl-C to stop.")  # the banner, then nothing
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/_dashboard/", rest)


def test_text_lines_from_serve():
    proc = _serve("--log")
    try:
        requests.post(proc.url, data={**ADD, "quantity": "5"}, timeout=10)  # too few
        lines = _lines_until(proc, 40, timeout=2)
    finally:
        proc.stop()
    [hit] = [ln for ln in lines if " add " in ln]
    assert "→ 200 error: Quantity less than minimal 50" in hit and not ANSI.search(hit)
