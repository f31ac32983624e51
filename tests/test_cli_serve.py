"""`smmkit serve` and `python -m smmkit.mock_server` as processes: the banner, a working URL, and a
clean Ctrl-C."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from smmkit.mock_server.core.catalog import load_catalog
from smmkit.mock_server.core.config import DEMO_KEY
from support import read_line, start_serve, wait_ready


def banner(server, timeout: float = 10) -> list[str]:
    lines = [server.first_line]
    deadline = time.monotonic() + timeout
    while "Press Ctrl-C" not in lines[-1] and time.monotonic() < deadline:
        line = read_line(server.proc.stdout, deadline - time.monotonic())
        if not line:
            break
        lines.append(line)
    return lines


def test_serve_prints_url_keys_and_catalogue_then_stops_on_ctrl_c(serve_db: str) -> None:
    server = start_serve("--port", "0", "--db", serve_db, "--workers", "1")
    try:
        assert re.fullmatch(r"smmkit fake panel listening on http://127\.0\.0\.1:\d+/api/v2\n",
                            server.first_line), server.first_line
        port = int(re.search(r":(\d+)/api/v2", server.url).group(1))
        assert port > 0
        text = "".join(banner(server))
        # money as the wire writes it: `action=balance` answers "1000", not "1000.00"
        assert re.search(r"smmkit-demo-key\s+balance 1000 USD\n", text), text
        assert re.search(r"smmkit-second-key\s+balance 250 EUR\n", text), text
        assert f"catalogue: {len(load_catalog())} services, from defaults" in text
        assert "accounts:  from defaults" in text
        assert "answers:   dialect perfectpanel, canonical" in text
        # a throw-away SQLite store says so; a PostgreSQL one is named by its URL
        shown = "(throw-away)" if serve_db == ":memory:" else f"store:     {serve_db}\n"
        assert shown in text
        wait_ready(server.url)
        body = requests.post(server.url, data={"key": DEMO_KEY, "action": "services"},
                             timeout=10).json()
        assert len(body) == len(load_catalog())
        assert body[0]["service"] == 1
    finally:
        started = time.monotonic()
        code = server.stop(signal.SIGINT, timeout=10)
    assert code == 0
    assert time.monotonic() - started < 8  # ~1 s when idle; slack for a loaded CI box
    with pytest.raises(requests.ConnectionError):
        requests.post(server.url, data={"key": DEMO_KEY, "action": "balance"}, timeout=2)


def test_python_dash_m_serves(serve_db: str) -> None:
    server = start_serve("--port", "0", "--db", serve_db, "--workers", "1", module=True)
    try:
        assert "listening on http://" in server.first_line
        wait_ready(server.url)
        assert requests.get(server.url, params={"key": DEMO_KEY, "action": "balance"},
                            timeout=10).json() == {"balance": "1000", "currency": "USD"}
    finally:
        assert server.stop() == 0


@pytest.mark.skipif(shutil.which("smmkit") is None, reason="console script not installed")
def test_console_script_version_and_help() -> None:
    out = subprocess.run(["smmkit", "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "0.1.0" in out.stdout
    out = subprocess.run([sys.executable, "-m", "smmkit.mock_server", "--help"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0 and "--port" in out.stdout and "--db" in out.stdout
    # the usage line is a command that runs as shown
    assert out.stdout.startswith("Usage: python -m smmkit.mock_server [OPTIONS]\n")
    for variable in ("SMMKIT_SERVE_<OPTION>", "--fresh"):
        assert variable in out.stdout


def test_port_in_use_names_the_port_and_suggests_port_0(serve_db: str) -> None:
    first = start_serve("--port", "0", "--db", serve_db, "--workers", "1")
    try:
        port = re.search(r":(\d+)/api/v2", first.url).group(1)
        out = subprocess.run([sys.executable, "-m", "smmkit.mock_server", "--port", port, "--db",
                              ":memory:"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 1
        assert out.stderr == (
            f"Error: port {port} on 127.0.0.1 is already in use (another smmkit serve?). Stop "
            "what holds it, or choose another port: --port 0 picks a free one.\n")
    finally:
        assert first.stop() == 0


@pytest.mark.parametrize(("args", "lines"), [
    (["--dialect", "seed"], ["smmkit-demo-key  balance 1000 VND", "smmkit-second-key  balance 250 VND",
                             "answers:   dialect seed, canonical"]),
    (["--robust"], ["answers:   dialect perfectpanel, robust (seeded awkward-but-valid answers"]),
])
def test_the_banner_says_what_the_wire_says(serve_db, args, lines) -> None:
    server = start_serve("--port", "0", "--db", serve_db, "--workers", "1", *args)
    try:
        text = "".join(banner(server))
        for line in lines:
            assert line in text, text
        wait_ready(server.url)
        if "seed" in args:
            body = requests.post(server.url, data={"key": "smmkit-second-key",
                                                   "action": "balance"}, timeout=10).json()
            assert body == {"balance": "250", "currency": "VND"}
    finally:
        assert server.stop() == 0


def test_options_come_from_smmkit_serve_variables(tmp_path, store_db) -> None:
    env = {"SMMKIT_SERVE_PORT": "0", "SMMKIT_SERVE_DB": store_db,
           "SMMKIT_SERVE_DIALECT": "seed", "SMMKIT_SERVE_WORKERS": "1",
           "SMMKIT_ADMIN_TOKEN": "from-env"}
    server = start_serve(env=env)
    try:
        text = "".join(banner(server))
        wait_ready(server.url)
        assert f"store:     {store_db}" in text
        assert "dialect seed" in text and "Bearer from-env" in text
    finally:
        assert server.stop() == 0
    # the command line wins over the environment
    server = start_serve("--dialect", "perfectpanel", env=env)
    try:
        assert "dialect perfectpanel" in "".join(banner(server))
        wait_ready(server.url)
    finally:
        assert server.stop() == 0


@pytest.mark.skipif(not (Path(sys.executable).parent / "smmkit").exists(),
                    reason="console script not installed")
def test_bash_completion_completes_commands_and_options() -> None:
    env = {**os.environ, "_SMMKIT_COMPLETE": "bash_complete", "COMP_WORDS": "smmkit se",
           "COMP_CWORD": "1"}
    run = [str(Path(sys.executable).parent / "smmkit")]  # completion keys on the program name
    out = subprocess.run(run, env=env, capture_output=True, text=True, timeout=30)
    assert out.stdout.splitlines() == ["plain,serve"]
    env.update(COMP_WORDS="smmkit serve --fr", COMP_CWORD="2")
    out = subprocess.run(run, env=env, capture_output=True, text=True, timeout=30)
    assert out.stdout.splitlines() == ["plain,--fresh"]


def _running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("server", ["builtin", "gunicorn", "granian"])
def test_kill_int_stops_a_serve_started_as_a_background_job(tmp_path, server):
    """A shell starts `smmkit serve ... &` with SIGINT ignored; `kill -INT` must still stop it
    and everything it started (granian's serve relied on Python's KeyboardInterrupt, which
    Python does not install then, and kept running)."""
    command = [sys.executable, "-c", "from smmkit.cli import main; main()", "serve",
               "--port", "0", "--db", str(tmp_path / "bg.db"), "--workers", "1",
               "--server", server]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = read_line(proc.stdout, 20)
        assert "listening on " in line, line
        wait_ready(line.split("listening on ", 1)[1].strip())
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children", encoding="ascii") as children:
            started = [int(pid) for pid in children.read().split()]
        os.kill(proc.pid, signal.SIGINT)  # what `kill -INT $!` sends: to serve alone
        assert proc.wait(timeout=20) in (0, 130, -signal.SIGINT)
        deadline = time.monotonic() + 10
        while any(map(_running, started)):
            assert time.monotonic() < deadline, f"{server}: {started} still running"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
