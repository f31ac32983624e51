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


def test_a_wrong_token_is_said_plainly(running):
    result = ctl(running, "clock", "show", token="wrong")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the admin token was refused by {running.url}. Use the token `smmkit serve` "
        "printed (--token or SMMKIT_ADMIN_TOKEN), or start the server with --admin-token TOKEN "
        "to choose it.\n")


def test_an_unreachable_server_names_the_url_and_the_variable():
    result = CliRunner().invoke(main, ["ctl", "--url", "http://127.0.0.1:9", "--token", "t",
                                       "clock", "show"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: cannot reach the fake panel at http://127.0.0.1:9: is `smmkit serve` running "
        "there? Give its URL with --url or SMMKIT_URL (e.g. export "
        "SMMKIT_URL=http://127.0.0.1:8080).\n")
    assert "HTTPConnectionPool" not in result.output


def test_url_and_token_come_from_the_environment(running):
    env = {"SMMKIT_URL": running.url, "SMMKIT_ADMIN_TOKEN": running.config.admin_token}
    result = CliRunner(env=env).invoke(main, ["ctl", "clock", "show"])
    assert result.exit_code == 0, result.output
    assert "now" in json.loads(result.output)


def test_no_token_is_a_usage_error_but_help_needs_none():
    result = CliRunner(env={"SMMKIT_ADMIN_TOKEN": None}).invoke(main, ["ctl", "clock", "show"])
    assert result.exit_code == 2 and "no admin token: pass --token TOKEN or set " \
        "SMMKIT_ADMIN_TOKEN" in result.output
    result = CliRunner(env={"SMMKIT_ADMIN_TOKEN": None}).invoke(main, ["ctl", "clock", "--help"])
    assert result.exit_code == 0 and "advance" in result.output
