"""Processes for the benchmarks: a server subprocess, wrk runs, /proc memory readings.

No timing logic lives here beyond what one call needs; `run.py` decides what to measure.
Everything talks to 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "smm.lua"


def ensure_wrk() -> str:
    """The wrk binary; installs the Debian package `wrk` when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: apt-get install -y wrk", file=sys.stderr)
    if subprocess.run(["apt-get", "install", "-y", "wrk"]).returncode != 0:
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is required (apt-get install -y wrk)")
    return found


def serve_command() -> list[str]:
    """`smmkit serve` as installed; else `python -m smmkit.mock_server`, the same CLI."""
    exe = shutil.which("smmkit")
    return [exe, "serve"] if exe else [sys.executable, "-m", "smmkit.mock_server"]


@dataclass
class Server:
    """A server subprocess in its own process group, stopped with SIGTERM (then SIGKILL)."""

    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    spawned_at: float = 0.0
    first_line_at: float = 0.0
    extra: list[str] = field(default_factory=list)

    def start(self, timeout: float = 30.0) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        errors = open(self.log, "ab")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=errors,
                                     start_new_session=True, cwd=ROOT, env=env)
        errors.close()
        assert self.proc.stdout is not None
        line = _read_line(self.proc.stdout, self.spawned_at + timeout)
        if " listening on " not in line:
            self.stop()
            raise RuntimeError(f"server did not announce itself: {line!r}; see {self.log}")
        self.first_line_at = time.perf_counter()
        self.url = line.split(" listening on ", 1)[1].strip()
        return self

    def wait_ready(self, key: str, timeout: float = 30.0) -> float:
        """Seconds from spawn until the first successful `balance` answer."""
        deadline = self.spawned_at + timeout
        with requests.Session() as session:
            while time.perf_counter() < deadline:
                try:
                    reply = session.post(self.url, data={"key": key, "action": "balance"},
                                         timeout=2)
                    if reply.status_code == 200 and "balance" in reply.json():
                        return time.perf_counter() - self.spawned_at
                except (requests.RequestException, ValueError):
                    pass
                time.sleep(0.005)
        raise RuntimeError(f"no balance answer within {timeout}s; see {self.log}")

    def pids(self) -> list[int]:
        """The master and its worker processes."""
        if self.proc is None:
            return []
        return [self.proc.pid, *children(self.proc.pid)]

    def workers(self) -> list[int]:
        return children(self.proc.pid) if self.proc else []

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_group(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_line(stream: object, deadline: float) -> str:
    fd = stream.fileno()  # type: ignore[attr-defined]
    data = b""
    while not data.endswith(b"\n") and time.perf_counter() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.perf_counter()))
        if not ready:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace")


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(p) for p in handle.read().split()]
    except OSError:
        pass
    return found


def proc_status(pid: int, field_name: str) -> int:
    """A kB field of /proc/PID/status (VmHWM, VmRSS); 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(pids: list[int]) -> dict[str, float]:
    """Peak RSS (Σ VmHWM), current RSS (Σ VmRSS) and Σ PSS of the processes, in MB."""
    return {
        "peak_rss_mb": round(sum(proc_status(p, "VmHWM") for p in pids) / 1024, 1),
        "rss_mb": round(sum(proc_status(p, "VmRSS") for p in pids) / 1024, 1),
        "pss_mb": round(sum(pss_kb(p) for p in pids) / 1024, 1),
    }


def run_wrk(url: str, scenario: str, seconds: float, data_file: Path, nonce: str, *,
            threads: int = 2, connections: int = 32) -> dict[str, float]:
    """One wrk run of `scenario`; the numbers done() printed, plus req/s."""
    argv = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--latency", "--timeout", "10s", "-s", str(LUA), url, "--", scenario,
            str(data_file), nonce]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    marker = [line for line in done.stdout.splitlines() if line.startswith("BENCHJSON ")]
    if done.returncode != 0 or not marker:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result = json.loads(marker[-1].split(" ", 1)[1])
    result["rps"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    result["socket_errors"] = sum(result[k] for k in ("err_connect", "err_read", "err_write",
                                                      "err_timeout"))
    return result


def write_data_file(path: Path, ids_by_key: dict[str, list[int]]) -> Path:
    path.write_text("".join(f"{key}\t{','.join(map(str, ids))}\n"
                            for key, ids in ids_by_key.items()))
    return path


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM a server's process group, SIGKILL it if it is still there after 15 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass
