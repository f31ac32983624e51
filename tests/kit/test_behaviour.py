"""`smmkit check` against independent panels (tests/kit/minipanel.py, not the fake's code):
each behavioural defect is caught by the CLI run with its check named, and missed when exactly
those checks are switched off — so each check is what catches it. A correct panel passes in
both profiles, and the exit codes 0/1/2/3 each come from a real run."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from minipanel import KEY, OTHER, TOKEN, MiniPanel
from smmkit.contract_tests.cli import check

# defect -> the checks that catch it (switched off together, the defect slips through)
CAUGHT_BY = {
    "partial_no_refund": {"refund_in_balance", "money_conservation"},
    "final_flips": {"final_status"},
    "foreign_visible": {"foreign_ids_invisible"},
    "garbage_500": {"invalid_add", "json_body", "content_type", "http_status"},
    "negative_balance": {"funds", "negative_balance"},
    "remains_grow": {"remains_grew"},
}


def run(url: str, *extra: str) -> Any:
    args = [url, "--key", KEY, "--allow-orders", "--budget", "5", "--other-key", OTHER,
            "--admin-token", TOKEN, "--seed", "1", "--examples", "0", *extra]
    return CliRunner().invoke(check, args, catch_exceptions=False)


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_a_correct_independent_panel_passes(serve: Any, strict: bool, tmp_path: Path) -> None:
    served = serve(MiniPanel())
    result = run(served.api_url, *(["--strict"] if strict else []), "--examples", "10",
                 "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    results = {c["check"]: c["result"] for c in data["checks"]}
    for name in ("funds", "invalid_add", "foreign_ids_invisible", "refill_flow",
                 "refund_in_balance", "partial_charge", "final_status"):
        assert results[name] == "pass", (name, data["not_run"])
    statuses = {s["status"] for seen in data["timeline"].values() for s in seen}
    assert {"Completed", "Partial"} <= statuses


@pytest.mark.parametrize("defect", sorted(CAUGHT_BY))
def test_each_defect_is_caught_and_missed_without_its_check(serve: Any, defect: str) -> None:
    caught = run(serve(MiniPanel(defect)).api_url)
    assert caught.exit_code == 1, caught.output
    named = {name for name in CAUGHT_BY[defect] if f"violation: {name} " in caught.output}
    assert named, f"{defect}: none of {CAUGHT_BY[defect]} named:\n{caught.output}"
    missed = run(serve(MiniPanel(defect)).api_url, "--skip-checks", ",".join(CAUGHT_BY[defect]))
    assert missed.exit_code == 0, f"{defect} still caught by another check:\n{missed.output}"


def test_exit_codes_from_real_runs(serve: Any, tmp_path: Path) -> None:
    served = serve(MiniPanel())
    assert run(served.api_url).exit_code == 0
    assert run(serve(MiniPanel("final_flips")).api_url).exit_code == 1
    assert run(served.api_url, "--budget", "lots").exit_code == 2
    assert run(served.api_url, "--checks", "no_such_check").exit_code == 2
    refused = CliRunner().invoke(check, [served.api_url, "--key", "wrong", "--json",
                                         str(tmp_path / "r.json")])
    assert refused.exit_code == 3 and "key is refused" in refused.output
    assert json.loads((tmp_path / "r.json").read_text())["exit_code"] == 3
    not_api = CliRunner().invoke(check, [served.api_url.replace("/api/v2", "/x"), "--key", KEY])
    assert not_api.exit_code == 3 and "404" in not_api.output
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = CliRunner().invoke(check, [f"http://127.0.0.1:{port}/api/v2", "--key", KEY,
                                      "--retries", "0"])
    assert gone.exit_code == 3 and "could not reach" in gone.output


def test_listing_the_checks_documents_both_profiles() -> None:
    result = CliRunner().invoke(check, ["--list-checks"])
    assert result.exit_code == 0
    for name in ("refund_in_balance", "final_status", "transport_error", "schema"):
        assert name in result.output
    assert "--strict:" in result.output and "default:" in result.output


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_our_fake_passes_in_both_profiles(fake: Any, strict: bool) -> None:
    from smmkit.mock_server.core.config import DEMO_KEY

    args = [fake.api_url, "--key", DEMO_KEY, "--allow-orders", "--budget", "5", "--other-key",
            "smmkit-second-key", "--admin-token", fake.config.admin_token, "--seed", "2",
            "--examples", "15", *(["--strict"] if strict else [])]
    result = CliRunner().invoke(check, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_stateful_runs_the_state_machine_against_our_fake(fake: Any, tmp_path: Path) -> None:
    from smmkit.mock_server.core.config import DEMO_KEY

    base = [fake.api_url, "--key", DEMO_KEY, "--seed", "4", "--examples", "0", "--watch", "0"]
    assert CliRunner().invoke(check, [*base, "--stateful"]).exit_code == 2  # needs orders
    result = CliRunner().invoke(check, [*base, "--allow-orders", "--budget", "1", "--stateful",
                                        "--admin-token", fake.config.admin_token, "--json",
                                        str(tmp_path / "r.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert {c["check"]: c["result"] for c in data["checks"]}["stateful"] == "pass"
    no_token = CliRunner().invoke(check, [*base, "--allow-orders", "--budget", "1",
                                          "--stateful", "--json", str(tmp_path / "s.json")])
    assert no_token.exit_code == 0, no_token.output  # live mode: within the budget, no resets
    live = json.loads((tmp_path / "s.json").read_text())
    assert {c["check"]: c["result"] for c in live["checks"]}["stateful"] == "pass"
    assert "stateful" not in live["not_run"]
