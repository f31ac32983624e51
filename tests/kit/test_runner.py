"""run_check against the real fake: nothing to report, budgets kept, read-only means read-only."""

from __future__ import annotations

import socket
from decimal import Decimal
from typing import Any

import pytest
from _defects import Defect, FloatMoney
from kit_support import fake_config
from smmkit.contract_tests.runner import CheckConfig, CheckError, run_check

SPENDING = {"add", "refill", "cancel"}


def demo_key() -> str:
    from smmkit.mock_server.core.config import DEMO_KEY

    return DEMO_KEY


def test_read_only_check_of_the_fake_finds_nothing(fake: Any) -> None:
    opening = fake.panel.balance(demo_key())[0]
    report = run_check(CheckConfig(fake.api_url, demo_key(), seed=1))
    assert report.findings == [], "\n".join(map(str, report.findings))
    assert report.ok and report.dialect == "perfectpanel"
    assert report.dialect_scores == {"perfectpanel": 1.0}
    assert not {e.action for e in report.exchanges} & SPENDING
    assert {e.transport for e in report.exchanges} == {"form", "json", "query"}
    assert any(e.url.endswith("/api/v2/") for e in report.exchanges)
    assert fake.panel.balance(demo_key())[0] == opening and report.ledger == []


class Recorder(Defect):
    """No defect: remembers every action the server received."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.actions: list[str] = []

    def change(self, params: dict[str, str], data: Any) -> Any:
        self.actions.append(params.get("action", ""))
        return None


def test_read_only_never_sends_a_spending_action(fresh_panel: Any, serve: Any) -> None:
    from smmkit.mock_server.web.app import create_app

    recorder = Recorder(create_app(fresh_panel, config=fake_config()))
    served = serve(recorder)
    report = run_check(CheckConfig(served.api_url, demo_key(), seed=2, examples=40))
    assert report.ok and len(recorder.actions) == len(report.exchanges) > 40
    assert not set(recorder.actions) & SPENDING


@pytest.mark.parametrize("budget", ["0.003", "0.03", "1"])
def test_orders_never_spend_more_than_the_budget(fake: Any, budget: str) -> None:
    opening = fake.panel.balance(demo_key())[0]
    report = run_check(CheckConfig(fake.api_url, demo_key(), allow_orders=True,
                                   budget=Decimal(budget), seed=3, clock=fake.panel.advance))
    spent = opening - fake.panel.balance(demo_key())[0]
    assert 0 <= spent <= Decimal(budget)
    assert report.spent == spent and report.ok, "\n".join(map(str, report.failures))
    placed = [e for e in report.ledger if e.order]
    assert placed
    # The watch follows the orders to their end: a cancel or a Partial gives money back, and
    # the panel itself may cancel an order (a seeded outcome that depends on the order's id,
    # so on how many orders this shared fake took before): then nothing at all was spent.
    assert spent <= sum(e.expected_charge for e in placed)
    assert "add" in {e.action for e in report.exchanges}
    if len(placed) > 1:  # one is canceled, the others are watched to their end
        assert "cancel" in {e.action for e in report.exchanges}
    if budget == "0.003":  # the cheapest order fits, the second one would not
        assert len(placed) == 1 and any("budget" in e.note for e in report.ledger)


def test_auto_dialect_reports_the_best_fit(fake: Any) -> None:
    from smmkit.mock_server.serving.server import start_background

    canonical = run_check(CheckConfig(fake.api_url, demo_key(), dialect="auto", seed=4))
    assert canonical.dialect == "perfectpanel"
    assert canonical.dialect_scores["perfectpanel"] == 1.0 > canonical.dialect_scores["seed"]
    with start_background(fake_config(dialect="seed")) as seed_fake:
        seeded = run_check(CheckConfig(seed_fake.api_url, demo_key(), dialect="auto", seed=4))
    assert seeded.dialect == "seed"
    assert seeded.dialect_scores["seed"] > seeded.dialect_scores["perfectpanel"]


def test_findings_carry_a_redacted_curl_line_and_the_seed(fresh_panel: Any, serve: Any) -> None:
    from smmkit.mock_server.web.app import create_app

    served = serve(FloatMoney(create_app(fresh_panel, config=fake_config())))
    report = run_check(CheckConfig(served.api_url, demo_key(), seed=99))
    assert not report.ok
    for finding in report.failures:
        assert finding.reproduction.startswith("curl ")
        assert "# hypothesis seed: 99" in finding.reproduction
        assert demo_key() not in finding.reproduction and "***" in finding.reproduction


def test_bad_configuration_is_a_check_error_and_an_unreachable_panel_a_headline() -> None:
    with pytest.raises(CheckError, match="budget"):
        CheckConfig("http://x", "k", allow_orders=True)
    with pytest.raises(CheckError, match="dialect"):
        CheckConfig("http://x", "k", dialect="klingon")
    with pytest.raises(CheckError, match="http"):
        run_check(CheckConfig("ftp://x", "k"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = run_check(CheckConfig(f"http://127.0.0.1:{port}/api/v2", "k", timeout=2,
                                   retries=0))
    assert report.exit_code == 3 and "could not reach" in report.headline
    assert report.findings == [] and len(report.exchanges) == 2
