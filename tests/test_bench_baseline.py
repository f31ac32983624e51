"""The bench's baseline (bench/baseline.py) serves its constant body on the built-in server:
the ratio every scenario is reported against needs it up (it once failed to start after the
endpoint interface grew, and only a full bench run showed it)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

BASELINE = Path(__file__).resolve().parent.parent / "bench" / "baseline.py"


def test_the_baseline_answers_its_constant_body_on_the_built_in_server() -> None:
    proc = subprocess.Popen([sys.executable, str(BASELINE), "--workers", "1", "--server",
                             "builtin"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert " listening on " in line, (line, proc.stderr.read() if proc.poll() else "")
        url = line.split(" listening on ", 1)[1].strip()
        reply = None
        for _ in range(50):
            try:
                reply = requests.post(url, data={"key": "k", "action": "add"}, timeout=5)
                break
            except requests.ConnectionError:  # the worker is still starting
                time.sleep(0.1)
        assert reply is not None and reply.status_code == 200
        assert reply.content == b'{"balance":"100.84292","currency":"USD"}'
    finally:
        proc.terminate()
        proc.wait(10)
