"""`smmkit check --stateful` against a live panel: no admin token, so no resets and no clock —
every add reserved against what is left of `--budget` before it is sent, findings collected.

The fake (served, its admin token never given to the checker) and the independent mini panel
stand in for live panels; the money actually taken from their balance is read back from the panel
itself, not from the kit's own ledger.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from minipanel import KEY, MiniPanel
from smmkit.contract_tests.cli import check
from smmkit.contract_tests.runner import CheckConfig, run_check
from smmkit.contract_tests.stateful_run import stateful_findings
from smmkit.contract_tests.targets import HttpTarget

BUDGET = Decimal("0.05")


def _live(url: str, key: str, budget: Decimal = BUDGET, seed: int = 7) -> tuple[Any, list[Any]]:
    """A read-only check, then the live machine with the whole budget (no admin token)."""
    config = CheckConfig(url=url, key=key, budget=budget, seed=seed, watch=0, examples=2,
                         retries=0)
    report = run_check(config)
    assert not report.headline, report.headline
    return report, stateful_findings(config, report)


def _api_balance(url: str, key: str) -> Decimal:
    """The balance as the panel itself reports it (not the kit's ledger)."""
    return Decimal(HttpTarget(url, key).send({"action": "balance"}).json()["balance"])


def _mini_balance(panel: MiniPanel) -> Decimal:
    return panel.balances[KEY]


@pytest.mark.parametrize("seed", [3, 7])
def test_live_machine_passes_a_correct_mini_panel_within_budget(serve: Any, seed: int) -> None:
    panel = MiniPanel(balance="1")
    served = serve(panel)
    report, found = _live(served.api_url, KEY, seed=seed)
    assert [f for f in found if f.severity == "violation"] == []
    assert "stateful" not in report.not_run
    assert Decimal("0") < report.reserved <= BUDGET  # it did place orders, all reserved
    assert Decimal("1") - _mini_balance(panel) <= BUDGET


def test_live_machine_finds_a_balance_going_negative(serve: Any) -> None:
    # A balance just above one cheapest add: the second add must be refused; this panel
    # takes it anyway and goes below zero.
    panel = MiniPanel(defect="negative_balance", balance="0.0012")
    served = serve(panel)
    _, found = _live(served.api_url, KEY, seed=5)
    assert "negative_balance" in {f.check for f in found}
    assert Decimal("0.0012") - _mini_balance(panel) <= BUDGET


def test_live_machine_on_a_correct_panel_with_the_same_balance_is_quiet(serve: Any) -> None:
    """The control for the test above: same balance, no defect, nothing found."""
    panel = MiniPanel(balance="0.0012")
    served = serve(panel)
    _, found = _live(served.api_url, KEY, seed=5)
    assert [f for f in found if f.severity == "violation"] == []
    assert _mini_balance(panel) >= 0


def test_live_machine_never_spends_more_than_the_budget(serve: Any) -> None:
    """A budget of two cheapest adds (0.001 each) on a rich account: the money the panel took
    is within it, and the adds that did not fit were not sent."""
    panel = MiniPanel(balance="1")
    served = serve(panel)
    report, _ = _live(served.api_url, KEY, budget=Decimal("0.002"), seed=9)
    assert Decimal("1") - _mini_balance(panel) <= Decimal("0.002")
    assert report.reserved <= Decimal("0.002")


def test_live_machine_not_run_when_the_budget_cannot_pay_an_add(serve: Any) -> None:
    panel = MiniPanel(balance="1")
    served = serve(panel)
    report, found = _live(served.api_url, KEY, budget=Decimal("0.0009"))
    assert found == []
    assert report.not_run["stateful"].startswith("budget: ")
    assert _mini_balance(panel) == Decimal("1")  # nothing was sent that could spend


def test_live_machine_on_the_fake_without_its_admin_token(fake: Any) -> None:
    from smmkit.mock_server.core.config import DEMO_KEY

    before = _api_balance(fake.api_url, DEMO_KEY)
    report, found = _live(fake.api_url, DEMO_KEY)
    assert [f for f in found if f.severity == "violation"] == []
    assert Decimal("0") < report.reserved <= BUDGET
    assert Decimal("0") <= before - _api_balance(fake.api_url, DEMO_KEY) <= BUDGET


def test_cli_stateful_live_reports_budget_and_findings(serve: Any) -> None:
    panel = MiniPanel(defect="negative_balance", balance="0.0012")
    served = serve(panel)
    result = CliRunner().invoke(check, [served.api_url, "--key", KEY, "--allow-orders",
                                        "--budget", "0.05", "--stateful", "--watch", "0",
                                        "--examples", "2", "--seed", "5"],
                                catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "negative_balance" in result.output
    assert Decimal("0.0012") - _mini_balance(panel) <= Decimal("0.05")


def test_the_report_counts_the_machines_spend(serve: Any) -> None:
    """After the machine, the report's spend is the panel's own balance drop over the run."""
    panel = MiniPanel(balance="1")
    served = serve(panel)
    report, _ = _live(served.api_url, KEY, seed=3)
    assert report.spent == Decimal("1") - _mini_balance(panel) > 0
    assert report.requests == len(report.exchanges)


def test_the_wait_rule_polls_within_the_watch(serve: Any) -> None:
    """No clock to move: the machine waits instead, never longer than --watch in all."""
    from smmkit.contract_tests.stateful import Allowance, Patience, run_stateful

    served = serve(MiniPanel(balance="1"))
    slept: list[float] = []
    run_stateful(HttpTarget(served.api_url, KEY), max_examples=6, stateful_step_count=10,
                 seed=1, quantity_cap=1, allowance=Allowance(BUDGET), sink=[], earlier=[],
                 patience=Patience(1.0, 0.25, sleep=slept.append))
    assert slept and sum(slept) <= 1.0


def test_cli_stateful_live_says_not_run_budget(serve: Any) -> None:
    served = serve(MiniPanel(balance="1"))
    result = CliRunner().invoke(check, [served.api_url, "--key", KEY, "--allow-orders",
                                        "--budget", "0.0001", "--stateful", "--watch", "0",
                                        "--examples", "2"], catch_exceptions=False)
    assert "not run: stateful: budget: " in result.output, result.output
