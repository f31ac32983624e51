"""The control plane over HTTP on a real port, from a real client (requests)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smmkit.mock_server.client.control import ControlAPIError, ControlClient
from smmkit.mock_server.core.config import DEMO_KEY, Config
from smmkit.mock_server.serving.server import start_background

LINK = "https://instagram.com/p/{}"


@pytest.fixture(scope="module")
def server():
    running = start_background(Config(port=0, clock="manual", seed=7))
    yield running
    running.stop()


@pytest.fixture()
def ctl(server):
    client = ControlClient(server.url, server.config.admin_token)
    client.reset()
    return client


def api(server, **params):
    return requests.post(server.api_url, data={"key": DEMO_KEY, **params}, timeout=10)


def add(server, n, service=1, quantity=100):
    body = api(server, action="add", service=service, link=LINK.format(n),
               quantity=quantity).json()
    assert "order" in body, body
    return body["order"]


def conserved(ctl, key=DEMO_KEY):
    account = ctl.accounts.get(key)
    total = Decimal(account["balance"]) + Decimal(account["charges"])
    return total == Decimal(account["opening"]) + Decimal(account["topups"])


def test_the_issue_scenario_in_a_few_lines(server, ctl):
    order = add(server, 1)
    ctl.orders.force(order, outcome="partial", remains=40)
    ctl.clock.advance("6h")
    status = api(server, action="status", order=order).json()
    assert (status["status"], status["remains"], status["charge"]) == ("Partial", "40", "0.054")
    assert api(server, action="balance").json()["balance"] == "999.946"
    ctl.faults.next("add", "lost_after_commit")
    with pytest.raises(requests.ConnectionError):
        api(server, action="add", service=1, link=LINK.format(2), quantity=100)
    lost = ctl.orders.list(key=DEMO_KEY)[0]
    assert lost["link"] == LINK.format(2) and lost["charged"] == "0.09"
    assert api(server, action="balance").json()["balance"] == "999.856"
    assert conserved(ctl)


def test_every_control_route_is_behind_the_token(server):
    rules = [r for r in server_app_rules(server) if r[1].startswith("/_control")]
    assert len(rules) > 20
    for method, rule in rules:
        path = rule.replace("<int:order_id>", "1").replace("<int:refill_id>", "1") \
            .replace("<int:service_id>", "1").replace("<int:fault_id>", "1") \
            .replace("<key>", DEMO_KEY).replace("<verb>", "freeze")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            response = requests.request(method, server.url + path, headers=headers, json={})
            assert response.status_code == 401, (method, path)
            assert response.headers["Content-Type"] == "application/json"
            assert "Unauthorized" in response.json()["error"]
    assert requests.get(server.url + "/_control/no/such/route").status_code == 401


def server_app_rules(server):
    from smmkit.mock_server.web.app import create_app

    app = create_app(server.panel, config=server.config)
    return [(m, r.rule) for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}]


def test_clock_read_freeze_set_advance_speed(ctl):
    start = ctl.clock.now()
    assert start["frozen"] is True and start["iso"] == "2026-01-01T00:00:00Z"
    assert ctl.clock.advance("90s")["now"] == start["now"] + 90
    assert ctl.clock.advance("2h")["now"] == start["now"] + 90 + 7200
    assert ctl.clock.set("2026-01-05T00:00:00Z")["iso"] == "2026-01-05T00:00:00Z"
    assert ctl.clock.advance("3d")["iso"] == "2026-01-08T00:00:00Z"
    assert ctl.clock.speed(60)["speed"] == 60
    running = ctl.clock.resume()
    assert running["frozen"] is False
    assert ctl.clock.freeze()["frozen"] is True


@pytest.mark.parametrize("body,needle", [
    ({"by": "2x"}, "bad duration"), ({"by": "-5s"}, "bad duration"), ({}, "bad duration"),
])
def test_bad_durations_are_400_and_change_nothing(ctl, body, needle):
    before = ctl.clock.now()
    with pytest.raises(ControlAPIError) as err:
        ctl.call("POST", "/clock/advance", body)
    assert err.value.status == 400 and needle in err.value.message
    assert ctl.clock.now() == before


def test_clock_cannot_go_backwards(ctl):
    with pytest.raises(ControlAPIError, match="backwards"):
        ctl.clock.set("2020-01-01T00:00:00Z")


def test_advance_settles_everything_due_with_refunds(server, ctl):
    orders = [add(server, n) for n in range(5)]
    for order, outcome in zip(orders, ["normal", "partial", "over", "provider_cancel", "normal"], strict=False):
        ctl.orders.force(order, outcome=outcome, **({"remains": 30} if outcome == "partial" else {}))
    ctl.clock.advance("1h")
    statuses = api(server, action="status", orders=",".join(map(str, orders))).json()
    assert [statuses[str(o)]["status"] for o in orders] == [
        "Completed", "Partial", "Completed", "Canceled", "Completed"]
    assert statuses[str(orders[1])]["remains"] == "30"
    assert int(statuses[str(orders[2])]["remains"]) < 0
    assert statuses[str(orders[3])]["charge"] == "0"
    assert conserved(ctl)


def test_accounts_create_list_top_up_set_currency_disable_delete(server, ctl):
    created = ctl.accounts.create("k-new", "10.5", "EUR")
    assert created["balance"] == "10.5" and created["currency"] == "EUR"
    assert "k-new" in [a["key"] for a in ctl.accounts.list()]
    assert ctl.accounts.top_up("k-new", "2.25")["balance"] == "12.75"
    assert ctl.accounts.set_balance("k-new", "100")["topups"] == "89.5"
    assert ctl.accounts.set_currency("k-new", "GBP")["currency"] == "GBP"
    body = requests.post(server.api_url, data={"key": "k-new", "action": "balance"}).json()
    assert body == {"balance": "100", "currency": "GBP"}
    assert conserved(ctl, "k-new")
    ctl.accounts.disable("k-new")
    body = requests.post(server.api_url, data={"key": "k-new", "action": "balance"}).json()
    assert body == {"error": "Invalid API key"}
    ctl.accounts.enable("k-new")
    ctl.accounts.delete("k-new")
    body = requests.post(server.api_url, data={"key": "k-new", "action": "balance"}).json()
    assert body == {"error": "Invalid API key"}


@pytest.mark.parametrize("call,needle", [
    (lambda c: c.accounts.set_balance(DEMO_KEY, "-1"), "negative"),
    (lambda c: c.accounts.top_up(DEMO_KEY, "-5000"), "negative"),
    (lambda c: c.accounts.set_currency(DEMO_KEY, "DOLLARS"), "currency"),
    (lambda c: c.accounts.create(DEMO_KEY, "1"), "already exists"),
    (lambda c: c.call("PATCH", f"/accounts/{DEMO_KEY}", {"balance": "5", "colour": "red"}),
     "unknown account fields"),
    (lambda c: c.call("PATCH", f"/accounts/{DEMO_KEY}", {"balance": 1.5}), "float"),
    (lambda c: c.orders.force(99999999, status="Completed"), "unknown order"),
    (lambda c: c.faults.add("bogus"), "unknown fault kind"),
    (lambda c: c.faults.add("latency"), "latency needs"),
    (lambda c: c.services.change(424242, rate="1"), "unknown service"),
    (lambda c: c.services.change(1, min=100, max=10), "inconsistent"),
    (lambda c: c.call("POST", "/accounts", None), "non-empty string key"),
])
def test_malformed_control_requests_are_clear_and_change_nothing(ctl, call, needle):
    before = (ctl.accounts.list(), ctl.services.list(), ctl.faults.list())
    with pytest.raises(ControlAPIError) as err:
        call(ctl)
    assert err.value.status in (400, 404) and needle in err.value.message
    assert (ctl.accounts.list(), ctl.services.list(), ctl.faults.list()) == before


def test_force_status_legal_only_unless_forced(server, ctl):
    order = add(server, 10)
    ctl.orders.force(order, status="Completed")
    with pytest.raises(ControlAPIError, match="illegal transition"):
        ctl.orders.force(order, status="In progress")
    reopened = ctl.orders.force(order, status="In progress", remains=60, force=True)
    assert reopened["status"] == "In progress" and reopened["remains"] == 60
    partial = ctl.orders.force(order, status="Partial", remains=40)
    assert partial["refunded"] == "0.036"
    body = api(server, action="status", order=order).json()
    assert body["charge"] == "0.054" and body["remains"] == "40"
    assert ctl.orders.force(order, start_count=1234)["start_count"] == 1234
    assert conserved(ctl)


def test_orders_list_filters(server, ctl):
    a, b = add(server, 20, service=1), add(server, 21, service=3)
    ctl.orders.force(b, status="Canceled")
    assert [o["order"] for o in ctl.orders.list(service=3)] == [b]
    assert [o["order"] for o in ctl.orders.list(status="Canceled")] == [b]
    assert {o["order"] for o in ctl.orders.list(key=DEMO_KEY)} == {a, b}
    assert ctl.orders.list(key="smmkit-second-key") == []


def test_force_refill_status(server, ctl):
    order = add(server, 30)
    ctl.orders.force(order, status="Completed")
    refill = api(server, action="refill", order=order).json()["refill"]
    assert ctl.refills.force(int(refill), "In progress")["status"] == "In progress"
    with pytest.raises(ControlAPIError, match="illegal"):
        ctl.refills.force(int(refill), "Pending")
    assert api(server, action="refill_status", refill=refill).json() == {"status": "In progress"}
    assert ctl.refills.force(int(refill), "Rejected")["status"] == "Rejected"


def test_catalogue_add_change_remove_orders_keep_price(server, ctl):
    order = add(server, 40, service=1)
    ctl.services.change(1, rate="5.00", min=10)
    body = api(server, action="status", order=order).json()
    assert body["charge"] == "0.09"
    service = next(s for s in api(server, action="services").json() if s["service"] == 1)
    assert (service["rate"], service["min"]) == ("5.00", "10")
    ctl.services.add(service=900, name="Test Likes", type="Default", category="Test",
                     rate="1.5", min=1, max=5)
    assert any(s["service"] == 900 for s in api(server, action="services").json())
    ctl.services.change(900, enabled=False)
    assert api(server, action="add", service=900, link=LINK.format(41), quantity=2).json() == \
        {"error": "Incorrect service ID"}
    ctl.services.remove(900)
    assert all(s["service"] != 900 for s in ctl.services.list())


def _balance(server):
    return requests.post(server.api_url, data={"key": DEMO_KEY, "action": "balance"}, timeout=10)


def test_fault_latency(server, ctl):
    ctl.faults.next("balance", "latency", ms=300)
    response = _balance(server)
    assert response.elapsed.total_seconds() >= 0.3 and response.json()["currency"] == "USD"
    assert _balance(server).elapsed.total_seconds() < 0.3


def test_fault_5xx_html(server, ctl):
    ctl.faults.next("balance", "http_5xx", status=520)
    response = _balance(server)
    assert response.status_code == 520 and response.headers["Content-Type"].startswith("text/html")
    assert "cloudflare" in response.text.lower() and "520" in response.text
    assert _balance(server).status_code == 200


def test_fault_maintenance_and_html_content_type(server, ctl):
    ctl.faults.next("balance", "maintenance")
    response = _balance(server)
    assert response.status_code == 200 and "maintenance" in response.text.lower()
    ctl.faults.next("balance", "html_content_type")
    response = _balance(server)
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.json()["currency"] == "USD"


def test_fault_error_4xx_and_rate_limit(server, ctl):
    ctl.faults.next("balance", "error_4xx", status=403, error="invalid_key")
    response = _balance(server)
    assert (response.status_code, response.json()) == (403, {"error": "Invalid API key"})
    ctl.faults.next("status", "error_4xx", status=404)
    response = api(server, action="status", order="1")
    assert (response.status_code, response.json()) == (404, {"error": "Incorrect order ID"})
    ctl.faults.next("balance", "rate_limit", retry_after=7)
    response = _balance(server)
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json() == {"error": "Too many requests"}


def test_fault_drop_changes_nothing(server, ctl):
    ctl.faults.next("add", "drop")
    with pytest.raises(requests.ConnectionError):
        api(server, action="add", service=1, link=LINK.format(50), quantity=100)
    assert ctl.orders.list() == []
    assert _balance(server).json()["balance"] == "1000"


def test_fault_truncated_and_malformed_json(server, ctl):
    ctl.faults.next("balance", "truncated_json")
    with pytest.raises(ValueError):
        _balance(server).json()
    ctl.faults.next("balance", "malformed_json")
    with pytest.raises(ValueError):
        _balance(server).json()
    assert _balance(server).json()["currency"] == "USD"


def test_fault_scope_count_probability_and_clear(server, ctl):
    ctl.faults.next("balance", "rate_limit", count=2)
    assert [_balance(server).status_code for _ in range(3)] == [429, 429, 200]
    ctl.faults.sometimes("balance", "rate_limit", probability=0.5)
    first = [_balance(server).status_code for _ in range(40)]
    assert 5 < first.count(429) < 35
    assert len(ctl.faults.list()) == 1
    ctl.faults.clear()
    assert ctl.faults.list() == [] and _balance(server).status_code == 200
    ctl.faults.next("add", "rate_limit")
    assert _balance(server).status_code == 200  # scoped to add only


def test_journal_records_requests_redacted_with_verdicts(server, ctl):
    ctl.clear_journal()
    add(server, 60)
    requests.post(server.api_url, data={"key": DEMO_KEY, "action": "add", "service": "1"})
    ctl.faults.next("balance", "rate_limit")
    _balance(server)
    entries = ctl.journal()
    assert [e["action"] for e in entries] == ["add", "add", "balance"]
    assert all(e["params"]["key"] == "***" for e in entries)
    assert entries[0]["request_conforms"] is True and entries[0]["status"] == 200
    assert entries[1]["request_conforms"] is False and entries[1]["request_violations"]
    assert entries[2]["fault"] == "rate_limit" and entries[2]["status"] == 429
    assert [e["action"] for e in ctl.journal(action="balance")] == ["balance"]
    assert len(ctl.journal(key=DEMO_KEY)) == 3 and ctl.journal(key="other") == []
    assert DEMO_KEY not in str(entries)


def test_reset_one_account_and_everything(server, ctl):
    add(server, 70)
    requests.post(server.api_url, data={"key": "smmkit-second-key", "action": "add",
                                        "service": 1, "link": LINK.format(71), "quantity": 100})
    ctl.reset(DEMO_KEY)
    assert ctl.orders.list(key=DEMO_KEY) == [] and len(ctl.orders.list()) == 1
    assert _balance(server).json()["balance"] == "1000"
    ctl.reset()
    assert ctl.orders.list() == []


def test_snapshot_restore_round_trips_byte_identical(server, ctl, tmp_path):
    orders = [add(server, 80 + n) for n in range(3)]
    ctl.clock.advance("30s")
    path = tmp_path / "world.json"
    ctl.snapshot(path)
    probes = [dict(action="status", orders=",".join(map(str, orders))), dict(action="balance"),
              dict(action="services")]

    def answers():
        return [api(server, **p).content for p in probes]

    before = answers()
    add(server, 99)
    ctl.clock.advance("2h")
    assert answers() != before
    ctl.restore(path)
    assert answers() == before
    with pytest.raises(ControlAPIError, match="snapshot"):
        ctl.restore({"format": "nope"})
    assert answers() == before


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(
    st.sampled_from(["add", "force", "outcome", "advance", "cancel", "topup"]),
    st.integers(0, 10_000)), min_size=1, max_size=12))
def test_money_is_conserved_after_forced_outcomes_and_advances(server, steps):
    ctl = ControlClient(server.url, server.config.admin_token)
    ctl.reset()
    orders: list[int] = []
    for n, (step, value) in enumerate(steps):
        if step == "add":
            body = api(server, action="add", service=[1, 3, 16][value % 3],
                       link=LINK.format(f"h{n}"), quantity=100 + value % 900).json()
            orders.extend([body["order"]] if "order" in body else [])
        elif step == "force" and orders:
            status = ["Completed", "Partial", "Canceled", "In progress"][value % 4]
            try:
                ctl.orders.force(orders[value % len(orders)], status=status,
                                 remains=1 + value % 99 if status != "Canceled" else None,
                                 force=value % 2 == 0)
            except ControlAPIError as exc:
                assert exc.status == 400
        elif step == "outcome" and orders:
            try:
                ctl.orders.force(orders[value % len(orders)],
                                 outcome=["normal", "partial", "over", "provider_cancel"][value % 4])
            except ControlAPIError as exc:
                assert exc.status == 400
        elif step == "advance":
            ctl.clock.advance(f"{value % 600}s")
        elif step == "cancel" and orders:
            api(server, action="cancel", orders=str(orders[value % len(orders)]))
        elif step == "topup":
            ctl.accounts.top_up(DEMO_KEY, str(value % 50))
        assert conserved(ctl)
        assert Decimal(ctl.accounts.get(DEMO_KEY)["balance"]) >= 0
