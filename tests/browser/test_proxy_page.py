"""The proxy's page `/_proxy/` in a real browser (Debian's Chromium driven by Playwright):
a second fake on a real port is the upstream, the proxy runs on another, and the page shows
each exchange's verdict, filters, updates live and never shows the key."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect
from smmkit.contract_tests.bridge.proxy import ProxyConfig, start_proxy
from smmkit.mock_server import ControlClient, start_background
from smmkit.mock_server.core.config import DEMO_KEY, Config
from test_dashboard_browser import browser, shot  # noqa: F401  (the Chromium fixture)

TOKEN = "proxy-page-admin-token"
# A key the upstream does not know, with characters HTML escapes: the page must hide it in
# every form, raw and escaped, wherever a client puts it.
STRANGER = "Str4nger<&>\"'-key-0f9e"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Any]:
    running = start_background(Config(port=0, db=":memory:", clock="manual", seed=3,
                                      admin_token=TOKEN))
    running.control = ControlClient(running.url, TOKEN)
    yield running
    running.stop()


@pytest.fixture
def proxy(upstream: Any) -> Iterator[Any]:
    upstream.panel.reset()
    with start_proxy(ProxyConfig(upstream=upstream.api_url, dialect="perfectpanel")) as running:
        yield running


@pytest.fixture
def tab(browser: Browser) -> Iterator[Page]:  # noqa: F811  (the imported fixture)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    yield context.new_page()
    context.close()


def post(proxy: Any, key: str = DEMO_KEY, **params: str) -> requests.Response:
    return requests.post(proxy.api_url, data={"key": key, **params}, timeout=10)


def rows(tab: Page) -> Any:
    return tab.locator("tr.exchange")


def test_the_page_shows_good_and_bad_exchanges_newest_first_with_their_verdicts(
        tab: Page, proxy: Any, upstream: Any) -> None:
    post(proxy, action="balance")
    upstream.control.faults.next("balance", "malformed_json")
    post(proxy, action="balance")
    post(proxy, action="status")  # no order: the client's own request breaks the contract
    tab.goto(f"{proxy.url}/_proxy/")
    expect(tab).to_have_title("smmkit proxy · verdicts")
    expect(rows(tab)).to_have_count(3)
    newest, bad, good = rows(tab).all()
    assert [r.get_attribute("data-seq") for r in (newest, bad, good)] == ["3", "2", "1"]
    expect(good.locator(".pill")).to_have_text("pass")
    expect(good.locator(".status")).to_have_text("200")
    expect(good.locator(".request")).to_contain_text("key=***")
    expect(good.locator(".request")).to_contain_text("action=balance")
    expect(good.locator(".findings")).to_have_count(0)
    expect(bad.locator(".pill")).to_have_text("violation")
    expect(bad.locator(".findings li").first).to_contain_text("json_body")
    expect(newest.locator(".pill")).to_have_text("violation")
    expect(newest.locator(".findings")).to_contain_text("request:")
    expect(tab.locator("#summary")).to_contain_text("3 exchanges")
    expect(tab.locator("#summary .pill.violation")).to_have_text("2 violation")
    expect(tab.locator("#dialect")).to_have_text("perfectpanel")
    shot(tab, "proxy-page")


def test_filters_by_verdict_and_action_and_keep_the_filter_in_the_link(
        tab: Page, proxy: Any, upstream: Any) -> None:
    post(proxy, action="services")
    upstream.control.faults.next("balance", "malformed_json")
    post(proxy, action="balance")
    post(proxy, action="balance")
    post(proxy, action="add", service="1", link="https://instagram.com/a", quantity="100")
    tab.goto(f"{proxy.url}/_proxy/")
    expect(rows(tab)).to_have_count(4)
    tab.select_option("#verdict", "violation")  # applied as soon as it is chosen
    expect(tab).to_have_url(re.compile(r"verdict=violation"))
    tab.wait_for_load_state()
    expect(rows(tab)).to_have_count(1)
    expect(rows(tab).first).to_have_attribute("data-seq", "2")
    tab.select_option("#verdict", "")  # navigates too: wait for it before the next choice
    expect(tab).not_to_have_url(re.compile(r"verdict=violation"))
    # The new page's rows show before its script has hooked the selects: a choice made in
    # between would go unnoticed (seen under a loaded full run).
    tab.wait_for_load_state()
    expect(rows(tab)).to_have_count(4)
    tab.select_option("#action", "balance")
    expect(tab).to_have_url(re.compile(r"action=balance"))
    expect(rows(tab)).to_have_count(2)
    assert {r.get_attribute("data-verdict") for r in rows(tab).all()} == {"violation",
                                                                          "conforms"}
    tab.goto(f"{proxy.url}/_proxy/?verdict=refused")
    expect(rows(tab)).to_have_count(1)
    expect(rows(tab).first.locator(".findings")).to_have_count(0)
    expect(rows(tab).first.locator(".action")).to_have_text("add")
    tab.goto(f"{proxy.url}/_proxy/?verdict=upstream-timeout")
    expect(tab.locator(".empty")).to_have_text("No exchange matches this filter yet.")
    shot(tab, "proxy-page-filtered")


def test_the_page_updates_live_within_its_filter(tab: Page, proxy: Any, upstream: Any) -> None:
    tab.goto(f"{proxy.url}/_proxy/?action=balance")
    expect(tab.locator(".empty")).to_contain_text("No exchange yet")
    post(proxy, action="services")  # filtered out: never shown here
    post(proxy, action="balance")
    expect(rows(tab)).to_have_count(1, timeout=10_000)
    upstream.control.faults.next("balance", "malformed_json")
    post(proxy, action="balance")
    expect(rows(tab)).to_have_count(2, timeout=10_000)
    expect(rows(tab).first.locator(".pill")).to_have_text("violation")
    expect(tab.locator("tr.exchange[data-action=services]")).to_have_count(0)


def test_an_open_answer_stays_open_and_pause_stops_the_updates(tab: Page, proxy: Any) -> None:
    post(proxy, action="balance")
    tab.goto(f"{proxy.url}/_proxy/")
    tab.locator("details summary").first.click()
    post(proxy, action="services")
    expect(rows(tab)).to_have_count(2, timeout=10_000)
    expect(tab.locator("tr.exchange[data-seq='1'] details")).to_have_attribute("open", "")
    expect(tab.locator("tr.exchange[data-seq='1'] pre")).to_contain_text('"balance"')
    tab.click("#pause")
    expect(tab.locator("#pause")).to_have_text("Resume")
    post(proxy, action="balance")
    tab.wait_for_timeout(3 * 1500)  # two refresh rounds would have shown it
    expect(rows(tab)).to_have_count(2)
    tab.click("#pause")
    expect(rows(tab)).to_have_count(3, timeout=10_000)


def test_the_key_appears_nowhere_in_the_page(tab: Page, proxy: Any) -> None:
    post(proxy, action="balance")
    post(proxy, key=STRANGER, action="balance")  # the upstream refuses it: Invalid API key
    post(proxy, action="add", service="1", quantity="100",  # a key pasted into a link, refused
         link=f"https://instagram.com/{DEMO_KEY}/{STRANGER}")
    requests.get(proxy.api_url, params={"key": DEMO_KEY, "action": "services"}, timeout=10)
    tab.goto(f"{proxy.url}/_proxy/")
    expect(rows(tab)).to_have_count(4)
    tab.locator("details summary").first.click()
    sources = {"rendered DOM": tab.content(),
               "page source": requests.get(f"{proxy.url}/_proxy/", timeout=10).text,
               "live region": requests.get(f"{proxy.url}/_proxy/", timeout=10,
                                           headers={"X-Fragment": "1"}).text,
               "JSON": requests.get(f"{proxy.url}/_proxy/exchanges", timeout=10).text}
    for where, text in sources.items():
        for key in (DEMO_KEY, STRANGER):
            for form in {key, html.escape(key), html.escape(key, quote=False)}:
                assert form not in text, f"the key is in the {where}"
    link = rows(tab).nth(1).locator(".request")
    expect(link).to_contain_text("link=https://instagram.com/***/***")


def test_bad_filters_and_unknown_files_are_refused_plainly(proxy: Any) -> None:
    bad = requests.get(f"{proxy.url}/_proxy/", params={"verdict": "<b>"}, timeout=10)
    assert bad.status_code == 400 and bad.headers["Content-Type"].startswith("text/plain")
    assert bad.text.startswith("unknown verdict '<b>'; one of conforms, deviation, violation")
    also = requests.get(f"{proxy.url}/_proxy/exchanges", params={"verdict": "nope"}, timeout=10)
    assert also.status_code == 400 and also.json()["error"].startswith("unknown verdict 'nope'")
    missing = requests.get(f"{proxy.url}/_proxy/static/../proxy.py", timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"error": "Not found"})
    script = requests.get(f"{proxy.url}/_proxy/static/proxy_page.js", timeout=10)
    assert script.status_code == 200 and script.headers["Content-Type"].startswith(
        "text/javascript")
    page = requests.get(f"{proxy.url}/_proxy/", timeout=10)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    bare = requests.get(f"{proxy.url}/_proxy", timeout=10)  # the page, never forwarded
    assert bare.status_code == 200 and "<h1>Exchanges" in bare.text
    assert requests.get(f"{proxy.url}/_proxy/exchanges", timeout=10).json()["exchanges"] == []
