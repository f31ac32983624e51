"""The dashboard over HTTP (Flask's test client on a manual-clock panel): sign-in, sessions,
CSRF, what each form changes, and that refused input changes nothing. The browser tests in
tests/browser/ drive the same pages through Chromium."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from engines import placeholders
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.config import DEMO_KEY, Config
from smmkit.mock_server.storage.journal import key_print
from smmkit.mock_server.web.app import create_app
from smmkit.mock_server.web.dashboard.auth import COOKIE, Sessions
from support import SECOND_KEY, manual_panel

TOKEN = "dash-token"
BASE = "/_dashboard"


@pytest.fixture
def app():
    panel = manual_panel()
    application = create_app(panel, config=Config(admin_token=TOKEN, clock="manual"))
    yield application
    panel.store.close()


@pytest.fixture
def panel(app):
    return app.extensions["smmkit.panel"]


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client, token: str = TOKEN):
    page = client.get(f"{BASE}/login")
    return client.post(f"{BASE}/login", data={"csrf": _csrf(page.text), "token": token})


@pytest.fixture
def client(app):
    c = app.test_client()
    assert sign_in(c).status_code == 303
    c.csrf = _csrf(c.get(f"{BASE}/").text)
    return c


def post(client, path: str, **form):
    return client.post(f"{BASE}{path}", data={"csrf": client.csrf, **form})


def message(response) -> str:
    from urllib.parse import parse_qs, urlsplit

    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return (query.get("error") or query.get("notice") or [""])[0]


def place(app, link: str = "https://x.test/p", quantity: str = "1000") -> int:
    answer = app.test_client().post("/api/v2", data={
        "key": DEMO_KEY, "action": "add", "service": "1", "link": link, "quantity": quantity})
    return int(answer.get_json()["order"])


# ------------------------------------------------------------------ sign-in and sessions


def test_pages_need_a_session(app):
    c = app.test_client()
    assert c.get(f"{BASE}/orders").headers["Location"].endswith("/_dashboard/login")
    assert c.get(f"{BASE}/orders", headers={"X-Fragment": "1"}).status_code == 401
    assert c.post(f"{BASE}/clock/advance", data={"value": "3d"}).status_code == 401
    assert c.get(f"{BASE}/static/dashboard.css").status_code == 200  # assets are public


def test_signing_in_sets_an_httponly_strict_cookie(app):
    c = app.test_client()
    response = sign_in(c)
    cookie = next(v for k, v in response.headers.items()
                  if k == "Set-Cookie" and v.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/_dashboard" in cookie
    assert c.get(f"{BASE}/").status_code == 200


def test_a_wrong_token_cannot_sign_in(app):
    c = app.test_client()
    response = sign_in(c, "dash-token-but-wrong")
    assert response.status_code == 401 and "Wrong admin token." in response.text
    assert not any(v.startswith(COOKIE + "=") for k, v in response.headers.items()
                   if k == "Set-Cookie")
    assert c.get(f"{BASE}/").status_code == 303


def test_sign_in_without_its_form_token_is_refused(app):
    c = app.test_client()
    assert c.post(f"{BASE}/login", data={"token": TOKEN}).status_code == 403
    assert c.get(f"{BASE}/").status_code == 303


def test_only_a_session_signed_for_this_token_counts(app):
    c = app.test_client()
    c.set_cookie(COOKIE, Sessions("another-token").new_session(), path=BASE)
    assert c.get(f"{BASE}/").status_code == 303
    pre_session, _ = Sessions(TOKEN).new_login()  # the sign-in form's cookie is no session
    c.set_cookie(COOKIE, pre_session, path=BASE)
    assert c.get(f"{BASE}/").status_code == 303
    c.set_cookie(COOKIE, Sessions(TOKEN).new_session(), path=BASE)
    assert c.get(f"{BASE}/").status_code == 200


def test_sign_out(client):
    assert post(client, "/logout").status_code == 303
    assert client.get(f"{BASE}/").status_code == 303


def test_pages_carry_security_headers(client):
    response = client.get(f"{BASE}/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


POSTS = [("/clock/advance", {"value": "3d"}), ("/clock/freeze", {}),
         ("/accounts", {"key": "new-key", "balance": "5"}),
         ("/accounts/top-up", {"key": DEMO_KEY, "amount": "5"}),
         ("/accounts/enabled", {"key": DEMO_KEY, "enabled": "0"}),
         ("/catalogue/1", {"rate": "9.99"}), ("/faults", {"kind": "drop"}),
         ("/faults/clear", {}), ("/orders/23501/status", {"status": "Canceled"})]


@pytest.mark.parametrize(("path", "form"), POSTS)
@pytest.mark.parametrize("csrf", [None, "forged-token"])
def test_every_form_without_the_csrf_token_is_refused_and_changes_nothing(
        app, client, panel, path, form, csrf):
    place(app)
    before = steering.snapshot(panel)
    data = dict(form) if csrf is None else {**form, "csrf": csrf}
    response = client.post(f"{BASE}{path}", data=data)
    assert response.status_code == 403 and "CSRF" in response.text
    assert steering.snapshot(panel) == before


# ------------------------------------------------------------------ what the forms do


def test_clock_controls(client, panel):
    start = panel.now()
    assert message(post(client, "/clock/advance", value="90s")) == "clock: advance 90s"
    assert panel.now() == start + 90
    post(client, "/clock/advance", value="2h")
    assert panel.now() == start + 90 + 7200
    post(client, "/clock/speed", value="60")
    assert panel.clock_state().speed == 60
    post(client, "/clock/resume")
    assert not panel.clock_state().frozen
    post(client, "/clock/freeze")
    assert panel.clock_state().frozen


@pytest.mark.parametrize(("verb", "value", "error"), [
    ("advance", "soon", "bad duration 'soon': e.g. 90s, 2h, 3d"),
    ("advance", "0s", "advance by more than 0 and at most 10 years, got '0s'"),
    ("advance", "99999d", "advance by more than 0 and at most 10 years, got '99999d'"),
    ("speed", "fast", "speed must be a number, got 'fast'"),
    ("speed", "-1", "speed must be in (0, 1e+06], got '-1'"),
    ("speed", "nan", "speed must be in (0, 1e+06], got 'nan'"),
    ("rewind", "", "unknown clock operation 'rewind'"),
])
def test_bad_clock_input_is_named_and_changes_nothing(client, panel, verb, value, error):
    before = panel.clock_state()
    assert message(post(client, f"/clock/{verb}", value=value)) == error
    assert panel.clock_state() == before


def test_accounts_create_top_up_disable(client, panel):
    assert message(post(client, "/accounts", key="reseller-1", balance="12.50",
                        currency="eur")) == "account created"
    assert steering.get_account(panel, "reseller-1")["currency"] == "EUR"
    post(client, "/accounts/top-up", key="reseller-1", amount="7.5")
    assert steering.get_account(panel, "reseller-1")["balance"] == "20"
    post(client, "/accounts/enabled", key="reseller-1", enabled="0")
    assert steering.get_account(panel, "reseller-1")["enabled"] is False
    post(client, "/accounts/enabled", key="reseller-1", enabled="1")
    assert steering.get_account(panel, "reseller-1")["enabled"] is True
    assert "reseller-1" in client.get(f"{BASE}/accounts").text


@pytest.mark.parametrize(("path", "form", "error"), [
    ("/accounts", {"key": " "}, "an account needs a non-empty string key"),
    ("/accounts", {"key": DEMO_KEY}, "an account with key 'smmkit-demo-key' already exists"),
    ("/accounts", {"key": "k", "balance": "lots"}, "balance is not an amount: 'lots'"),
    ("/accounts", {"key": "k", "currency": "DOLLAR"}, "bad currency 'DOLLAR': three letters"),
    ("/accounts/top-up", {"key": DEMO_KEY, "amount": ""}, "give an amount to top up"),
    ("/accounts/top-up", {"key": DEMO_KEY, "amount": "x"}, "top_up is not an amount: 'x'"),
    ("/accounts/top-up", {"key": DEMO_KEY, "amount": "-5000"},
     "balance would become negative (-4000.00)"),
    ("/accounts/top-up", {"key": "nobody", "amount": "5"}, "unknown account 'nobody'"),
    ("/accounts/enabled", {"key": "nobody", "enabled": "0"}, "unknown account 'nobody'"),
    ("/accounts", {"key": "k", "balance": "1e30"},
     "balance must be between 0 and 1000000000000, got '1e30'"),
    ("/accounts/top-up", {"key": DEMO_KEY, "amount": "-1e25"},
     "top_up must be between -1000000000000 and 1000000000000, got '-1e25'"),
    ("/accounts/top-up", {"key": DEMO_KEY, "amount": "NaN"}, "top_up is not an amount: 'NaN'"),
])
def test_bad_account_input_is_named_and_changes_nothing(client, panel, path, form, error):
    before = steering.snapshot(panel)
    assert message(post(client, path, **form)) == error
    assert steering.snapshot(panel) == before


def test_forcing_partial_refunds_and_the_overview_shows_the_law(app, client, panel):
    order = place(app)
    before = Decimal(steering.get_account(panel, DEMO_KEY)["balance"])
    page = client.get(f"{BASE}/orders/{order}").text
    assert 'data-move="Partial"' in page and 'data-move="Pending"' not in page
    assert message(post(client, f"/orders/{order}/status", status="Partial",
                        remains="250")) == f"order {order} forced to Partial"
    forced = steering.get_order(panel, order)
    assert forced["status"] == "Partial" and forced["remains"] == 250
    after = Decimal(steering.get_account(panel, DEMO_KEY)["balance"])
    assert after - before == Decimal(forced["refunded"]) > 0
    assert "data-move=" not in client.get(f"{BASE}/orders/{order}").text  # final: no moves
    assert "holds" in client.get(f"{BASE}/").text and "BROKEN" not in client.get(f"{BASE}/").text


def test_a_broken_conservation_law_is_shown(app, client, panel):
    place(app)
    with panel.store.transaction() as db:  # money appears from nowhere
        db.execute(placeholders(panel.store, "UPDATE accounts SET balance = '5000' WHERE key = ?"),
                   (DEMO_KEY,))
    assert "BROKEN" in client.get(f"{BASE}/").text


@pytest.mark.parametrize(("setup", "form", "error"), [
    ({"status": "Canceled"}, {"status": "Completed"}, "illegal transition Canceled -> Completed"),
    ({}, {"status": "Partial", "remains": "5000"}, "a Partial order needs 0 < remains < 1000"),
    ({}, {"status": "Lost"}, "unknown status 'Lost'"),
])
def test_the_server_rechecks_forced_moves(app, client, panel, setup, form, error):
    order = place(app)
    if setup:
        steering.force_order(panel, order, setup)
    before = steering.snapshot(panel)
    assert message(post(client, f"/orders/{order}/status", **form)).startswith(error)
    assert steering.snapshot(panel) == before


def test_outcomes_are_offered_only_while_active(app, client, panel):
    order = place(app)
    assert message(post(client, f"/orders/{order}/outcome", outcome="provider_cancel")) == \
        f"order {order} will end: provider_cancel"
    post(client, "/clock/advance", value="3d")
    assert steering.get_order(panel, order)["status"] == "Canceled"
    assert 'data-outcome=' not in client.get(f"{BASE}/orders/{order}").text
    assert "is already Canceled" in message(post(client, f"/orders/{order}/outcome",
                                                 outcome="normal"))


def test_orders_filter_and_fragment(app, client):
    first = place(app)
    app.test_client().post("/api/v2", data={"key": SECOND_KEY, "action": "add", "service": "3",
                                             "link": "https://x.test/q", "quantity": "100"})
    page = client.get(f"{BASE}/orders?key={DEMO_KEY}").text
    assert f'data-order="{first}"' in page and "https://x.test/q" not in page
    assert "https://x.test/q" in client.get(f"{BASE}/orders?service=3").text
    assert "No orders" in client.get(f"{BASE}/orders?status=Completed").text
    assert "service must be a number" in client.get(f"{BASE}/orders?service=x").text
    fragment = client.get(f"{BASE}/orders", headers={"X-Fragment": "1"}).text
    assert "<html" not in fragment and f'data-order="{first}"' in fragment
    assert client.get(f"{BASE}/orders/999999").status_code == 404


def test_catalogue_edit(client, panel):
    assert message(post(client, "/catalogue/1", rate="1.25", min="10", max="500",
                        start_delay="5", speed="100", enabled="on")) == "service 1 saved"
    service = panel.catalog()[1]
    assert (service.rate, service.min, service.max, service.start_delay, service.speed) == \
        (Decimal("1.25"), 10, 500, 5, 100)
    before = steering.snapshot(panel)
    assert message(post(client, "/catalogue/1", min="ten", enabled="on")) == \
        "min must be a whole number, got 'ten'"
    assert "rate" in message(post(client, "/catalogue/1", rate="cheap", enabled="on"))
    assert steering.snapshot(panel) == before


def test_faults_arm_list_clear(app, client):
    book = app.extensions["smmkit.faults"]
    assert message(post(client, "/faults", kind="latency", action="status", ms="250",
                        probability="0.5")) == "fault armed: latency"
    assert message(post(client, "/faults", kind="http_5xx", key=DEMO_KEY, count="3",
                        status="503")) == "fault armed: http_5xx"
    rules = book.list()
    assert [(f.kind, f.action, f.key, f.remaining, f.probability) for f in rules] == [
        ("latency", "status", None, None, 0.5), ("http_5xx", "*", DEMO_KEY, 3, None)]
    assert "http_5xx" in client.get(f"{BASE}/faults").text
    post(client, "/faults/clear", fault=str(rules[0].id))
    assert [f.kind for f in book.list()] == ["http_5xx"]
    assert message(post(client, "/faults/clear", fault="x")) == "unknown fault 'x'"
    assert message(post(client, "/faults/clear", fault="999")) == "0 fault(s) cleared"
    assert message(post(client, "/faults/clear")) == "1 fault(s) cleared"
    assert book.list() == []


@pytest.mark.parametrize(("form", "error"), [
    ({"kind": "gremlins"}, "unknown fault kind 'gremlins'"),
    ({"kind": "drop", "probability": "2"}, "probability must be a number in [0, 1], got 2.0"),
    ({"kind": "drop", "count": "many"}, "count must be a number, got 'many'"),
    ({"kind": "latency"}, "latency needs ms, or min_ms and max_ms"),
    ({"kind": "drop", "action": "delete"}, "unknown action 'delete'"),
])
def test_bad_fault_input_is_named_and_arms_nothing(app, client, form, error):
    assert message(post(client, "/faults", **form)).startswith(error)
    assert app.extensions["smmkit.faults"].list() == []


def test_refills_page_forces_legal_moves(app, client, panel):
    order = place(app)
    steering.force_order(panel, order, {"status": "Completed"})
    refill = app.test_client().post("/api/v2", data={"key": DEMO_KEY, "action": "refill",
                                                     "order": str(order)}).get_json()["refill"]
    page = client.get(f"{BASE}/refills").text
    assert f">{refill}<" in page
    assert message(post(client, f"/refills/{refill}/status", status="Rejected")) == \
        f"refill {refill} forced to Rejected"
    assert "illegal refill transition" in message(
        post(client, f"/refills/{refill}/status", status="Completed"))


def test_journal_page_filters_and_redacts(app, client):
    api = app.test_client()
    api.post("/api/v2", data={"key": DEMO_KEY, "action": "balance"})
    api.post("/api/v2", data={"key": SECOND_KEY, "action": "services"})
    api.post("/api/v2", data={"key": DEMO_KEY, "action": "add", "service": "1"})  # no link
    page = client.get(f"{BASE}/journal").text
    assert DEMO_KEY not in page and key_print(DEMO_KEY) in page
    only = client.get(f"{BASE}/journal?action=services").text
    assert key_print(SECOND_KEY) in only and key_print(DEMO_KEY) not in only
    mine = client.get(f"{BASE}/journal?fingerprint={key_print(SECOND_KEY)}").text
    assert "<td>services</td>" in mine and "<td>balance</td>" not in mine
    bad = client.get(f"{BASE}/journal?verdict=violates").text
    assert "<td>add</td>" in bad and "<td>balance</td>" not in bad
    good = client.get(f"{BASE}/journal?verdict=conforms").text
    assert "<td>balance</td>" in good and "<td>add</td>" not in good


HOSTILE = "<script>alert(1)</script>"


def test_client_text_is_escaped_on_every_page(app, client, panel):
    order = place(app, link=f"https://x.test/{HOSTILE}")
    steering.upsert_service(panel, 1, {"name": HOSTILE})
    steering.create_account(panel, {"key": HOSTILE})
    app.test_client().post("/api/v2", data={"key": DEMO_KEY, "action": HOSTILE})
    for path in ("/", "/accounts", "/orders", f"/orders/{order}", "/refills", "/catalogue",
                 "/catalogue/1", "/faults", "/journal", f"/orders?key={HOSTILE}"):
        html = client.get(f"{BASE}{path}").text
        assert HOSTILE not in html, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"{BASE}/orders/{order}").text


BIG = "99999999999999999999999"  # beyond any id SQLite can hold


@pytest.mark.parametrize(("method", "path", "form", "status"), [
    ("get", f"/orders/{BIG}", None, 404), ("get", f"/catalogue/{BIG}", None, 404),
    ("get", f"/orders?service={BIG}", None, 200),
    ("post", f"/orders/{BIG}/status", {"status": "Canceled"}, 303),
    ("post", f"/orders/{BIG}/outcome", {"outcome": "normal"}, 303),
    ("post", f"/refills/{BIG}/status", {"status": "Rejected"}, 303),
    ("post", f"/catalogue/{BIG}", {"rate": "1"}, 303),
    ("post", "/faults/clear", {"fault": BIG}, 303),
])
def test_ids_too_large_for_any_order_are_unknown_not_errors(client, panel, method, path, form,
                                                           status):
    before = steering.snapshot(panel)
    if method == "get":
        response = client.get(f"{BASE}{path}")
    else:
        response = post(client, path, **form)
    assert response.status_code == status
    if status == 303:
        assert message(response).startswith("unknown ")
    assert steering.snapshot(panel) == before
