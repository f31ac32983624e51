"""`smmkit proxy`: every exchange forwarded unchanged and judged; spending guarded by a budget
that is never passed; upstream timeouts and drops relayed to the client and recorded."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smmkit.contract_tests.bridge.proxy import ProxyConfig, start_proxy
from smmkit.contract_tests.exchange import load_recorded


def post(url: str, **params: Any) -> requests.Response:
    return requests.post(url, data=params, timeout=10)


@pytest.fixture
def proxied(live: Any) -> Any:
    """`proxied(live_options, **proxy_options)` -> (live panel, running proxy)."""
    running: list[Any] = []

    def start(live_options: dict[str, Any] | None = None, **options: Any) -> tuple[Any, Any]:
        panel = live(**(live_options or {}))
        proxy = start_proxy(ProxyConfig(upstream=panel.api_url, **options))
        running.append(proxy)
        return panel, proxy

    yield start
    for proxy in running:
        proxy.stop()


def verdicts(proxy: Any) -> list[dict[str, Any]]:
    return requests.get(f"{proxy.url}/_proxy/exchanges", timeout=10).json()["exchanges"]


def test_answers_are_relayed_unchanged_and_good_ones_conform(proxied: Any, key: str) -> None:
    panel, proxy = proxied()
    for params in ({"action": "services"}, {"action": "balance"},
                   {"action": "status", "order": "999"}):
        direct = post(panel.api_url, key=key, **params)
        through = post(proxy.api_url, key=key, **params)
        assert (through.status_code, through.content) == (direct.status_code, direct.content)
        assert through.headers["Content-Type"] == direct.headers["Content-Type"]
    got = requests.get(proxy.api_url, params={"key": key, "action": "balance"}, timeout=10)
    assert got.json() == {"balance": "1000", "currency": "USD"}
    seen = verdicts(proxy)
    assert [(e["action"], e["verdict"], e["dialect"]) for e in seen] == [
        ("services", "conforms", "perfectpanel"), ("balance", "conforms", "perfectpanel"),
        ("status", "conforms", "perfectpanel"), ("balance", "conforms", "perfectpanel")]
    assert all(e["params"]["key"] == "***" for e in seen)


def test_bad_answers_and_bad_requests_are_violations(proxied: Any, key: str) -> None:
    panel, proxy = proxied()
    panel.control.faults.next("balance", "malformed_json")
    panel.control.faults.next("services", "html_content_type")
    post(proxy.api_url, key=key, action="balance")
    post(proxy.api_url, key=key, action="services")
    post(proxy.api_url, key=key, action="status")  # no order: the client's request is wrong
    post(proxy.api_url, key=key, action="balance")  # the faults are spent: good again
    seen = verdicts(proxy)
    assert [e["verdict"] for e in seen] == ["violation", "violation", "violation", "conforms"]
    assert {f["check"] for f in seen[0]["findings"]} >= {"json_body"}
    assert any("text/html" in f["message"] for f in seen[1]["findings"])
    assert seen[2]["request"] and not seen[2]["findings"]  # the panel answered it correctly


def test_the_dialect_is_detected_from_the_traffic(proxied: Any, key: str) -> None:
    _, proxy = proxied({"dialect": "seed"})
    post(proxy.api_url, key=key, action="services")
    post(proxy.api_url, key=key, action="balance")
    post(proxy.api_url, key=key, action="refill_status", refill="424242")
    seen = verdicts(proxy)
    assert seen[-1]["dialect"] == "seed" and seen[-1]["verdict"] == "conforms"


def test_a_robust_panel_is_judged_finding_by_finding(proxied: Any, key: str) -> None:
    """--robust answers are tolerated shapes (schema deviations) but money sent as JSON
    numbers, which the kit counts as a violation: each is reported as what it is."""
    _, proxy = proxied({"robust": True}, dialect="perfectpanel")
    for _ in range(3):
        post(proxy.api_url, key=key, action="services")
    findings = [f for e in verdicts(proxy) for f in e["findings"]]
    assert {(f["check"], f["severity"]) for f in findings} == {
        ("schema", "deviation"), ("money_format", "violation")}
    assert all("not a decimal string" in f["message"] for f in findings
               if f["check"] == "money_format")


@pytest.mark.parametrize("action, extra", [
    ("add", {"service": "1", "link": "https://instagram.com/a", "quantity": "50"}),
    ("refill", {"order": "1"}), ("cancel", {"orders": "1"})])
def test_spending_is_refused_without_allow_orders(proxied: Any, key: str, action: str,
                                                  extra: dict[str, str]) -> None:
    panel, proxy = proxied()
    answer = post(proxy.api_url, key=key, action=action, **extra)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"error": f"smmkit proxy: {action} spends money; start the proxy "
                                      f"with --allow-orders --budget AMOUNT to let it through"}
    assert panel.control.orders.list() == []
    assert post(panel.api_url, key=key, action="balance").json()["balance"] == "1000"
    assert verdicts(proxy)[-1]["verdict"] == "refused"


def test_adds_within_the_budget_pass_and_the_one_past_it_is_refused(proxied: Any,
                                                                    key: str) -> None:
    panel, proxy = proxied(allow_orders=True, budget=Decimal("0.1"))
    answers = [post(proxy.api_url, key=key, action="add", service="1", quantity="50",
                    link=f"https://instagram.com/p{i}").json() for i in range(3)]
    assert [("order" in a) for a in answers] == [True, True, False]
    assert answers[2]["error"] == ("smmkit proxy: this add costs 0.04500 and would pass the "
                                   "budget (spent 0.09000 of 0.1)")
    assert post(panel.api_url, key=key, action="balance").json()["balance"] == "999.91"
    # refused by the panel itself: nothing spent, the budget is given back
    error = post(proxy.api_url, key=key, action="add", service="1", quantity="5",
                 link="https://instagram.com/x").json()
    assert error == {"error": "Quantity less than minimal 50"}
    assert proxy.proxy.budget.spent == Decimal("0.09")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["1", "2", "6"]), st.integers(0, 2000),
                          st.integers(1, 3)), min_size=1, max_size=6),
       st.decimals(min_value=Decimal("0.01"), max_value=Decimal("2"), places=2))
def test_the_budget_is_never_exceeded(live_once: Any, key: str,
                                      orders: list[tuple[str, int, int]], budget: Decimal) -> None:
    panel = live_once
    panel.panel.reset()
    with start_proxy(ProxyConfig(upstream=panel.api_url, allow_orders=True,
                                 budget=budget)) as proxy:
        for i, (service, quantity, runs) in enumerate(orders):
            params = {"service": service, "quantity": str(quantity),
                      "link": f"https://instagram.com/b{i}"}
            if runs > 1:
                params.update(runs=str(runs), interval="5")
            post(proxy.api_url, key=key, action="add", **params)
        balance = Decimal(post(panel.api_url, key=key, action="balance").json()["balance"])
        assert Decimal("1000") - balance <= budget
        assert proxy.proxy.budget.spent == Decimal("1000") - balance


@pytest.fixture(scope="module")
def live_once() -> Any:
    from smmkit.mock_server import start_background
    from smmkit.mock_server.core.config import Config

    running = start_background(Config(port=0, db=":memory:", clock="manual"))
    yield running
    running.stop()


def test_upstream_drops_and_timeouts_are_relayed_and_recorded(proxied: Any, key: str,
                                                             tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    panel, proxy = proxied(record=str(record), timeout=0.5, allow_orders=True,
                           budget=Decimal("1"))
    panel.control.faults.next("balance", "drop")
    with pytest.raises(requests.ConnectionError):
        post(proxy.api_url, key=key, action="balance")
    panel.control.faults.next("balance", "latency", ms=2500)
    late = post(proxy.api_url, key=key, action="balance")
    assert late.status_code == 524 and late.headers["Content-Type"].startswith("text/html")
    panel.control.faults.next("add", "lost_after_commit")
    with pytest.raises(requests.ConnectionError):
        post(proxy.api_url, key=key, action="add", service="1", quantity="100",
             link="https://instagram.com/lost")
    assert proxy.proxy.budget.spent == Decimal("0.09")  # the order may exist: it counts
    proxy.stop()
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(r["action"], r["extra"]["upstream"], r["extra"]["verdict"]["verdict"])
            for r in lines] == [("balance", "dropped", "upstream-dropped"),
                                ("balance", "timeout", "upstream-timeout"),
                                ("add", "dropped", "upstream-dropped")]
    assert [e.status for e in load_recorded(record)] == [0, 0, 0]


def test_bad_requests_to_the_proxy_itself_get_json_errors(proxied: Any, key: str) -> None:
    panel, proxy = proxied()
    big = requests.post(proxy.api_url, data={"key": key, "action": "services",
                                             "x": "y" * (9 * 1024 * 1024)}, timeout=30)
    assert (big.status_code, big.json()) == (413, {"error": "Request too large"})
    assert verdicts(proxy) == []  # nothing was forwarded
    missing = requests.get(f"{proxy.url}/_proxy/nothing", timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"error": "Not found"})
    since = requests.get(f"{proxy.url}/_proxy/exchanges", params={"since": "x"}, timeout=10)
    assert since.status_code == 400
    post(proxy.api_url, key=key, action="balance")
    post(proxy.api_url, key=key, action="services")
    later = requests.get(f"{proxy.url}/_proxy/exchanges", params={"since": "1"}, timeout=10)
    assert [e["action"] for e in later.json()["exchanges"]] == ["services"]
    only = requests.get(f"{proxy.url}/_proxy/exchanges", params={"action": "balance"},
                        timeout=10)
    assert [e["action"] for e in only.json()["exchanges"]] == ["balance"]


def test_an_unusable_upstream_or_dialect_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="http"):
        ProxyConfig(upstream="ftp://x")
    with pytest.raises(ValueError, match="positive --budget"):
        ProxyConfig(upstream="http://127.0.0.1:1/api/v2", allow_orders=True)
    with pytest.raises(ValueError, match="neither one of"):
        start_proxy(ProxyConfig(upstream="http://127.0.0.1:1/api/v2", dialect="/no/such.json"))
