"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real
server on a real port. Each page is saved as a screenshot under artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.config import DEMO_KEY, Config
from smmkit.mock_server.core.money import format_money
from smmkit.mock_server.serving.server import start_background

CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
TOKEN = "browser-test-token"
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
HOSTILE = "<script>window.__pwned=1</script><img/src/onerror=window.__pwned=2>"


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    running = start_background(Config(port=0, db=":memory:", clock="manual", seed=1,
                                      admin_token=TOKEN))
    yield running
    running.stop()
    running.panel.store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def fresh(server: Any) -> Any:
    server.panel.reset()
    app_ext = server._server.app.extensions
    app_ext["smmkit.faults"].clear()
    app_ext["smmkit.journal"].clear()
    return server


@pytest.fixture
def page(browser: Browser, fresh: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    sign_in(tab, fresh.url, TOKEN)
    yield tab
    context.close()


def sign_in(tab: Page, base: str, token: str) -> None:
    tab.goto(f"{base}/_dashboard/")
    expect(tab).to_have_url(re.compile(r"/_dashboard/login$"))
    tab.fill("input[name=token]", token)
    tab.click("button[type=submit]")


def shot(tab: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def place(server: Any, link: str = "https://example.test/p/1", quantity: int = 1000) -> int:
    response = requests.post(server.api_url, timeout=10, data={
        "key": DEMO_KEY, "action": "add", "service": "1", "link": link, "quantity": quantity})
    assert response.status_code == 200 and "order" in response.json(), response.text
    return int(response.json()["order"])


def test_sign_in_sets_a_strict_httponly_cookie_and_every_page_renders(page: Page, fresh: Any):
    expect(page.locator("h1")).to_have_text("Overview")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "smmkit_dashboard"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    order = place(fresh)
    requests.post(fresh.api_url, data={"key": DEMO_KEY, "action": "balance"}, timeout=10)
    done = place(fresh, link="https://example.test/p/2")  # a refill and a canceled order too
    steering.force_order(fresh.panel, done, {"status": "Completed"})
    requests.post(fresh.api_url, data={"key": DEMO_KEY, "action": "refill", "order": done},
                  timeout=10)
    steering.force_order(fresh.panel, place(fresh, link="https://example.test/p/3"),
                         {"status": "Canceled"})
    requests.post(fresh.api_url, data={"key": DEMO_KEY, "action": "add", "service": "1"},
                  timeout=10)  # no link: the journal shows a request that violates the schema
    expect(page.locator(".tile", has_text="Completed").locator(".n")).to_have_text("1")  # live
    shot(page, "01-overview")
    for path, title, name in [("accounts", "Accounts", "02-accounts"),
                              ("orders", "Orders", "03-orders"),
                              (f"orders/{order}", f"Order {order}", "04-order"),
                              ("refills", "Refills & cancels", "05-refills"),
                              ("catalogue", "Catalogue", "06-catalogue"),
                              ("catalogue/1", "Service 1", "07-service"),
                              ("faults", "Faults", "08-faults"),
                              ("journal", "Journal", "09-journal")]:
        page.goto(f"{fresh.url}/_dashboard/{path}")
        expect(page.locator("h1")).to_contain_text(title)
        shot(page, name)


def test_a_wrong_token_cannot_sign_in(browser: Browser, fresh: Any):
    context = browser.new_context()
    tab = context.new_page()
    sign_in(tab, fresh.url, "not-the-token")
    expect(tab.get_by_role("alert")).to_have_text("Wrong admin token.")
    shot(tab, "00-login-refused")
    assert not [c for c in context.cookies() if c["name"] == "smmkit_dashboard"]
    tab.goto(f"{fresh.url}/_dashboard/orders")
    expect(tab).to_have_url(re.compile(r"/_dashboard/login$"))
    context.close()


def test_an_order_placed_through_the_api_appears_without_a_reload_and_completes(page, fresh):
    page.goto(f"{fresh.url}/_dashboard/orders")
    page.evaluate("window.__same_page = true")
    order = place(fresh)
    steering.force_order(fresh.panel, order, {"outcome": "normal"})
    row = page.locator(f"tr[data-order='{order}']")
    expect(row).to_be_visible(timeout=5000)
    expect(row.locator(".badge")).to_have_text("Pending")
    assert page.evaluate("window.__same_page") is True  # it came in without a reload
    page.goto(f"{fresh.url}/_dashboard/")
    page.click("button:has-text('+3d')")
    expect(page.get_by_role("status")).to_contain_text("clock: advance 3d")
    page.goto(f"{fresh.url}/_dashboard/orders")
    expect(page.locator(f"tr[data-order='{order}'] .badge")).to_have_text("Completed")


def test_forcing_partial_shows_the_refund_in_the_balance(page, fresh):
    order = place(fresh, quantity=1000)
    before = Decimal(steering.get_account(fresh.panel, DEMO_KEY)["balance"])
    page.goto(f"{fresh.url}/_dashboard/orders/{order}")
    page.fill("input[name=remains]", "400")
    page.click("button[data-move='Partial']")
    expect(page.get_by_role("status")).to_contain_text(f"order {order} forced to Partial")
    forced = steering.get_order(fresh.panel, order)
    assert forced["status"] == "Partial" and Decimal(forced["refunded"]) > 0
    expect(page.locator("#order-refunded")).to_have_text(forced["refunded"])
    shot(page, "10-order-partial")
    page.goto(f"{fresh.url}/_dashboard/accounts")
    balance = page.locator(f"td[data-balance='{DEMO_KEY}']")
    expect(balance).to_have_text(format_money(before + Decimal(forced["refunded"])))
    page.goto(f"{fresh.url}/_dashboard/")
    expect(page.locator("tbody tr", has_text=DEMO_KEY).locator(".badge")).to_have_text("holds")


def test_illegal_moves_are_not_offered_and_the_server_rechecks(page, fresh):
    order = place(fresh)
    steering.force_order(fresh.panel, order, {"status": "Canceled"})
    page.goto(f"{fresh.url}/_dashboard/orders/{order}")
    expect(page.locator("button[data-move]")).to_have_count(0)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    answer = page.request.post(f"{fresh.url}/_dashboard/orders/{order}/status",
                               form={"csrf": csrf, "status": "Completed"}, max_redirects=0)
    assert answer.status == 303 and "illegal+transition" in answer.headers["location"]
    assert steering.get_order(fresh.panel, order)["status"] == "Canceled"


def test_an_armed_fault_shows_the_faulted_request_in_the_journal(page, fresh):
    page.goto(f"{fresh.url}/_dashboard/faults")
    page.select_option("select[name=kind]", "rate_limit")
    page.select_option("select[name=action]", "balance")
    page.fill("input[name=count]", "1")
    page.click("button:has-text('Arm fault')")
    expect(page.locator("#faults .badge.fault")).to_have_text("rate_limit")
    page.goto(f"{fresh.url}/_dashboard/journal")
    page.evaluate("window.__same_page = true")
    answer = requests.post(fresh.api_url, data={"key": DEMO_KEY, "action": "balance"}, timeout=10)
    assert answer.status_code == 429
    row = page.locator("#journal tbody tr").first
    expect(row.locator(".badge.fault")).to_have_text("rate_limit", timeout=5000)
    expect(row).to_contain_text("429")
    assert DEMO_KEY not in page.content()  # keys are redacted
    assert page.evaluate("window.__same_page") is True
    shot(page, "11-journal-fault")


def test_a_post_without_the_csrf_token_is_refused(page, fresh):
    before = fresh.panel.now()
    refused = page.request.post(f"{fresh.url}/_dashboard/clock/advance", form={"value": "3d"},
                                max_redirects=0)
    assert refused.status == 403 and "CSRF" in refused.text()
    wrong = page.request.post(f"{fresh.url}/_dashboard/clock/advance",
                              form={"value": "3d", "csrf": "guessed"}, max_redirects=0)
    assert wrong.status == 403
    anonymous = requests.post(f"{fresh.url}/_dashboard/clock/advance", data={"value": "3d"},
                              timeout=10, allow_redirects=False)
    assert anonymous.status_code == 401
    assert fresh.panel.now() == before  # nothing moved


def test_hostile_client_text_is_shown_as_text(page, fresh):
    order = place(fresh, link=f"https://example.test/{HOSTILE}")
    steering.upsert_service(fresh.panel, 1, {"name": f"Likes {HOSTILE}"})
    steering.create_account(fresh.panel, {"key": f"k{HOSTILE}", "balance": "5"})
    requests.post(fresh.api_url, timeout=10, data={
        "key": DEMO_KEY, "action": "add", "service": "5", "link": "https://x.test/c",
        "comments": f"nice\n{HOSTILE}"})
    for path in ("orders", f"orders/{order}", "catalogue", "catalogue/1", "accounts", "journal",
                 ""):
        page.goto(f"{fresh.url}/_dashboard/{path}")
        page.wait_for_timeout(200)
        assert page.evaluate("window.__pwned") is None, path
        assert page.locator("main script").count() == 0, path
    page.goto(f"{fresh.url}/_dashboard/orders/{order}")
    expect(page.locator("dl.facts")).to_contain_text(HOSTILE)  # shown, as text
    shot(page, "12-hostile-text")
