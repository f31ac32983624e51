"""`smmkit ctl` against a running fake, through click's CliRunner."""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner
from smmkit.mock_server.core.config import DEMO_KEY, Config
from smmkit.mock_server.serving.server import start_background

from smmkit.cli import main


@pytest.fixture(scope="module")
def running():
    server = start_background(Config(port=0, clock="manual"))
    yield server
    server.stop()


def ctl(running, *args: str, token: str | None = None):
    result = CliRunner().invoke(main, ["ctl", "--url", running.url, "--token",
                                       token or running.config.admin_token, *args])
    return result


def test_clock_advance_and_show(running):
    before = json.loads(ctl(running, "clock", "show").output)["now"]
    result = ctl(running, "clock", "advance", "2h")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["now"] == before + 7200


def test_orders_force_then_status_over_the_api(running):
    order = requests.post(running.api_url, data={
        "key": DEMO_KEY, "action": "add", "service": 1, "link": "https://x.com/ctl",
        "quantity": 100}).json()["order"]
    result = ctl(running, "orders", "force", str(order), "--status", "Partial", "--remains", "40")
    assert result.exit_code == 0, result.output
    status = requests.post(running.api_url, data={"key": DEMO_KEY, "action": "status",
                                                  "order": order}).json()
    assert (status["status"], status["remains"]) == ("Partial", "40")


def test_faults_add_list_clear(running):
    assert ctl(running, "faults", "add", "rate_limit", "--action", "balance",
               "--count", "2").exit_code == 0
    assert len(json.loads(ctl(running, "faults", "list").output)) == 1
    assert requests.post(running.api_url, data={"key": DEMO_KEY, "action": "balance"}
                         ).status_code == 429
    assert ctl(running, "faults", "clear").exit_code == 0
    assert json.loads(ctl(running, "faults", "list").output) == []


def test_accounts_and_snapshot_restore(running, tmp_path):
    assert ctl(running, "accounts", "create", "cli-key", "--balance", "5").exit_code == 0
    assert json.loads(ctl(running, "accounts", "top-up", "cli-key", "1.5").output)["balance"] == "6.5"
    path = tmp_path / "snap.json"
    assert ctl(running, "snapshot", str(path)).exit_code == 0
    ctl(running, "accounts", "delete", "cli-key")
    assert ctl(running, "restore", str(path)).exit_code == 0
    assert json.loads(ctl(running, "accounts", "show", "cli-key").output)["balance"] == "6.5"


def test_errors_become_clean_messages(running):
    result = ctl(running, "clock", "advance", "soon")
    assert result.exit_code == 1 and "bad duration" in result.output
    result = ctl(running, "clock", "show", token="wrong")
    assert result.exit_code == 1 and "Unauthorized" in result.output
    result = CliRunner().invoke(main, ["ctl", "--url", "http://127.0.0.1:9", "--token", "t",
                                       "clock", "show"])
    assert result.exit_code == 1 and "cannot reach" in result.output
