"""The README's examples are tests: every shell and Python block runs as pasted, in the order
shown, against a real `smmkit serve` process — one terminal (a bash that keeps its variables
between blocks) beside the server, restarted where the README restarts it.

Only the two set-up commands are not run here (one starts the server, the other is the whole
test suite, which CI runs); every other block is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from support import read_line, start_serve, wait_ready

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)
DEFAULT_URL = "http://127.0.0.1:8080"
SETUP = ["pip install -e . && smmkit serve", "pip install -e '.[test]' && python -m pytest"]


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    two = README.split("## Two commands", 1)[1].split("Then, in another terminal", 1)[0]
    commands = [body.strip() for kind, body in re.findall(r"```(\w*)\n(.*?)```", two, re.S)]
    assert commands == SETUP
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci
    assert "Python ≥ 3.10" in two and "virtual environment" in two


class Terminal:
    """One bash reading commands from a pipe, like a terminal a user pastes into: variables
    and exports carry from block to block; a failing command is reported by an ERR trap."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(["bash", "--norc", "--noprofile"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.run("trap 'echo \"FAILED($?): $BASH_COMMAND\"' ERR")

    def run(self, script: str, timeout: float = 120) -> str:
        marker = f"__done_{uuid.uuid4().hex}__"
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{script}\necho; echo {marker}\n".encode())
        self.proc.stdin.flush()
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = read_line(self.proc.stdout, deadline - time.monotonic())
            if line.strip() == marker:
                return "".join(out)
            out.append(line)
        raise AssertionError(f"no end of block within {timeout} s: {''.join(out)[-2000:]}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def serve_args(block: str) -> list[str] | None:
    """The options of a block that (re)starts the server, else None."""
    lines = [line for line in block.strip().splitlines() if not line.startswith("#")]
    if len(lines) == 1 and lines[0].startswith("smmkit serve"):
        return lines[0].split("#")[0].split()[2:]
    return None


@pytest.fixture
def terminal(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("SMMKIT_URL", "SMMKIT_ADMIN_TOKEN"):
        env.pop(name, None)
    work = tmp_path / "work"
    work.mkdir()
    shell = Terminal(work, env)
    yield shell, work
    shell.close()


def test_every_block_runs_as_pasted_in_order(terminal, tmp_path):
    shell, work = terminal
    db = tmp_path / "panel.db"
    server = start_serve("--port", "0", "--db", str(db))  # the README's `smmkit serve`
    ran: list[str] = []
    try:
        for kind, body in BLOCKS:
            if kind not in ("sh", "python") or body.strip() in SETUP:
                continue
            args = serve_args(body) if kind == "sh" else None
            if args is not None:  # the README restarts the server here
                assert server.stop() == 0
                server = start_serve(*args, "--port", "0", "--db", str(db))
                ran.append(f"serve {' '.join(args)}")
                continue
            wait_ready(server.url)
            base = server.url.removesuffix("/api/v2")
            script = body.replace(DEFAULT_URL, base)
            if kind == "python":
                path = work / f"snippet{len(ran)}.py"
                path.write_text(script, "utf-8")
                script = f"python {path}"
            out = shell.run(script)
            assert "FAILED(" not in out, f"{body}\n---\n{out}"
            assert "Unauthorized" not in out and "Traceback" not in out, out
            assert '"error"' not in out, f"{body}\n---\n{out}"
            ran.append(out)
    finally:
        server.stop()
    outputs = "\n".join(ran)
    # what the examples are there to show, in the order shown
    assert '"service":1' in outputs and '{"order":23501}' in outputs
    assert '"status":"Partial"' in outputs and '"remains":40' in outputs
    assert '"kind":"lost_after_commit"' in outputs and '"reset":true' in outputs
    assert "serve --fresh --admin-token my-token" in outputs
    assert (work / "world.json").exists() and (work / "report.html").exists()
    assert (work / "contract" / "README.md").exists() and (work / "openapi.json").exists()
    assert "conforms" in outputs and " passed" in outputs
