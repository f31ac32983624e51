"""The README's examples are tests: its commands and snippets run against a real fake."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from smmkit.mock_server.core.config import Config
from smmkit.mock_server.serving.server import start_background

README = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)


def blocks(lang: str, needle: str) -> list[str]:
    return [body for kind, body in BLOCKS if kind == lang and needle in body]


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    two = README.split("## Two commands", 1)[1].split("Then, in another terminal", 1)[0]
    commands = [body.strip() for kind, body in re.findall(r"```(\w*)\n(.*?)```", two, re.S)]
    assert commands == ["pip install -e . && smmkit serve",
                        "pip install -e '.[test]' && python -m pytest"]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert commands[1] in ci


@pytest.fixture  # a fresh store per test: the README's ids (23501) are a new store's ids
def fake():
    running = start_background(Config(port=0, clock="manual", admin_token="my-token"))
    yield running
    running.stop()


def run_shell(script: str, fake) -> str:
    script = script.replace("http://127.0.0.1:8080", fake.url)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                            text=True, timeout=60, cwd="/tmp")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_first_curl_examples(fake):
    fake.panel.reset()
    (first,) = blocks("sh", "action=services")
    out = run_shell(first, fake)
    assert '"service":1' in out and '{"order":23501}' in out
    assert '"status":"Pending"' in out


def test_control_api_curl_examples(fake):
    fake.panel.reset()
    run_shell(blocks("sh", "action=services")[0], fake)  # order 23501 exists
    (control,) = blocks("sh", "_control")
    out = run_shell(control, fake)
    assert '"kind":"lost_after_commit"' in out and '"reset":true' in out
    assert "Unauthorized" not in out


def test_python_control_client_snippet(fake):
    fake.panel.reset()
    run_shell(blocks("sh", "action=services")[0], fake)
    (snippet,) = blocks("python", "ControlClient(")
    namespace: dict = {}
    exec(snippet.replace("http://127.0.0.1:8080", fake.url), namespace)  # noqa: S102
    order = namespace["panel"].orders.get(23501)
    assert (order["status"], order["remains"]) == ("Partial", 40)
