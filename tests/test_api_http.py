"""The /api/v2 endpoint over a real socket: shapes, types, error bodies, transports and dialects
(docs/PROTOCOL.md §1, §2, §4, §7)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from smmkit.mock_server.core import lifecycle as lc
from smmkit.mock_server.core.catalog import load_catalog
from smmkit.mock_server.core.config import DEMO_KEY, Config
from smmkit.mock_server.serving.server import start_background
from support import SECOND_KEY, ApiClient

ACTIVE = "You have active order with this link. Please wait until order being completed."
DAY = 86_400


def add(api: ApiClient, service: int = 1, link: str = "https://instagram.com/u/1",
        quantity: int = 1000, **extra: Any) -> int:
    body = api.call(action="add", service=service, link=link, quantity=quantity, **extra)
    assert set(body) == {"order"}, body
    return body["order"]


def outcome_of(api: ApiClient, order: int) -> str:
    return api.panel.store.connection().execute(
        "SELECT outcome FROM orders WHERE id = ?", (order,)).fetchone()[0]


def completed(api: ApiClient, service: int = 1) -> int:
    for i in range(40):
        order = add(api, service=service, link=f"https://a.com/c/{i}", quantity=100)
        if outcome_of(api, order) in ("normal", "over"):
            api.panel.advance(DAY)
            return order
    raise AssertionError("no completing order")


# ---------------------------------------------------------------- success shapes


def test_services_shape(api: ApiClient) -> None:
    body = api.call(action="services")
    catalog = load_catalog()
    assert isinstance(body, list) and len(body) == len(catalog)
    for item, service in zip(body, catalog, strict=False):
        assert set(item) == {"service", "name", "type", "category", "rate", "min", "max",
                             "refill", "cancel"}
        assert type(item["service"]) is int and item["service"] == service.service
        for name in ("name", "type", "category", "rate", "min", "max"):
            assert type(item[name]) is str, (name, item)
        assert re.fullmatch(r"\d+(\.\d+)?", item["rate"])
        assert re.fullmatch(r"\d+", item["min"]) and re.fullmatch(r"\d+", item["max"])
        assert type(item["refill"]) is bool and type(item["cancel"]) is bool
    assert body[0] == {"service": 1, "name": "Instagram Followers [Real, 30 days refill]",
                       "type": "Default", "category": "Instagram Followers", "rate": "0.90",
                       "min": "50", "max": "10000", "refill": True, "cancel": True}


def test_add_and_status_shapes(api: ApiClient) -> None:
    order = add(api, service=4, quantity=333)
    assert type(order) is int and order == 23501
    status = api.call(action="status", order=order)
    assert status == {"charge": "0.16151", "start_count": "0", "status": "Pending",
                      "remains": "333", "currency": "USD"}
    api.panel.advance(DAY)
    status = api.call(action="status", order=str(order))
    assert set(status) == {"charge", "start_count", "status", "remains", "currency"}
    assert all(type(v) is str for v in status.values())
    assert status["status"] in lc.FINAL
    assert re.fullmatch(r"-?\d+", status["remains"])
    assert re.fullmatch(r"\d+", status["start_count"])
    assert re.fullmatch(r"\d+(\.\d{1,5})?", status["charge"])
    assert not status["charge"].endswith("0") or status["charge"] == "0"


def test_money_strings_trimmed(api: ApiClient) -> None:
    order = add(api, service=1, quantity=1000)
    assert api.call(action="status", order=order)["charge"] == "0.9"
    assert api.call(action="balance") == {"balance": "999.1", "currency": "USD"}
    api.key = SECOND_KEY
    assert api.call(action="balance") == {"balance": "250", "currency": "EUR"}


def test_multi_status_keyed_by_id_strings(api: ApiClient) -> None:
    a = add(api, link="https://a.com/1")
    b = add(api, link="https://a.com/2")
    body = api.call(action="status", orders=f"{a}, 999 ,{b}")
    assert list(body) == [str(a), "999", str(b)]
    assert body["999"] == {"error": "Incorrect order ID"}
    assert body[str(a)]["status"] == "Pending" and body[str(a)]["remains"] == "1000"
    assert set(body[str(b)]) == {"charge", "start_count", "status", "remains", "currency"}


def test_refill_shapes(api: ApiClient) -> None:
    order = completed(api)
    assert api.call(action="refill", order=order) == {"refill": "1"}
    api.panel.advance(lc.REFILL_START_DELAY + lc.REFILL_DURATION)
    body = api.call(action="refill", orders=f"{order},3")
    assert body == [{"order": order, "refill": 2},
                    {"order": 3, "refill": {"error": "Incorrect order ID"}}]
    assert type(body[0]["refill"]) is int and type(body[0]["order"]) is int
    assert api.call(action="refill_status", refill=2) == {"status": "Pending"}
    body = api.call(action="refill_status", refills="1, 2,3")
    assert body[0]["refill"] == 1 and body[0]["status"] in ("Completed", "Rejected")
    assert body[1:] == [{"refill": 2, "status": "Pending"},
                        {"refill": 3, "status": {"error": "Refill not found"}}]


def test_cancel_shapes(api: ApiClient) -> None:
    a = add(api, link="https://a.com/1")
    b = add(api, link="https://a.com/2")
    assert api.call(action="cancel", orders=f"{a},9") == [
        {"order": a, "cancel": 1}, {"order": 9, "cancel": {"error": "Incorrect order ID"}}]
    assert api.call(action="cancel", order=b) == [{"order": b, "cancel": 1}]
    api.panel.advance(lc.CANCEL_DELAY)
    assert api.call(action="status", order=a)["status"] == "Canceled"
    assert api.call(action="balance")["balance"] == "1000"


def test_balance_shape(api: ApiClient) -> None:
    assert api.call(action="balance") == {"balance": "1000", "currency": "USD"}


# ---------------------------------------------------------------- error bodies


@pytest.mark.parametrize(("params", "text"), [
    ({"key": "wrong", "action": "balance"}, "Invalid API key"),
    ({"key": "", "action": "balance"}, "Invalid API key"),
    ({"action": "balance"}, "Invalid API key"),
    ({"key": "wrong", "action": "nonsense"}, "Invalid API key"),
    ({"key": "wrong"}, "Invalid API key"),
    ({"key": "wrong", "action": "add", "service": "999"}, "Invalid API key"),
    ({"key": DEMO_KEY}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": ""}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": "nonsense"}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": "ADD"}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": "nonsense", "service": "999"}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": "add", "service": "999", "link": "x"}, "Incorrect service ID"),
    ({"key": DEMO_KEY, "action": "add", "link": "https://a.com", "quantity": "100"},
     "Incorrect service ID"),
    ({"key": DEMO_KEY, "action": "add", "service": "1", "link": "bad", "quantity": "100"},
     "Incorrect link"),
    ({"key": DEMO_KEY, "action": "add", "service": "1", "link": "https://a.com",
      "quantity": "49"}, "Quantity less than minimal 50"),
    ({"key": DEMO_KEY, "action": "add", "service": "1", "link": "https://a.com",
      "quantity": "10001"}, "Quantity more than maximum 10000"),
    ({"key": DEMO_KEY, "action": "add", "service": "1", "link": "https://a.com",
      "quantity": "1e3"}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": "add", "service": "1", "link": "https://a.com"},
     "Incorrect request"),
    ({"key": DEMO_KEY, "action": "status"}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": "status", "order": "424242"}, "Incorrect order ID"),
    ({"key": DEMO_KEY, "action": "status", "order": "abc"}, "Incorrect order ID"),
    ({"key": DEMO_KEY, "action": "status", "orders": "1,abc"}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": "refill"}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": "refill", "order": "424242"}, "Incorrect order ID"),
    ({"key": DEMO_KEY, "action": "refill_status"}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": "refill_status", "refill": "77"}, "Refill not found"),
    ({"key": DEMO_KEY, "action": "refill_status", "refill": "x"}, "Refill not found"),
    ({"key": DEMO_KEY, "action": "cancel"}, "Incorrect request"),
    ({"key": DEMO_KEY, "action": "cancel", "orders": ","}, "Incorrect request"),
])
def test_error_bodies(api: ApiClient, params: dict, text: str) -> None:
    response = api.post(params)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": text}


@pytest.mark.parametrize("action,name", [("status", "orders"), ("refill", "orders"),
                                         ("refill_status", "refills"), ("cancel", "orders")])
def test_more_than_100_ids(api: ApiClient, action: str, name: str) -> None:
    ids = ",".join(str(i) for i in range(1, 102))
    assert api.call(action=action, **{name: ids}) == {"error": "Incorrect request"}
    ok = api.call(action=action, **{name: ",".join(str(i) for i in range(1, 101))})
    assert len(ok) == 100


def test_funds_error(api: ApiClient) -> None:
    api.key = SECOND_KEY
    add(api, service=21, quantity=5000, link="https://youtube.com/c/1")
    add(api, service=21, quantity=5000, link="https://youtube.com/c/2")
    assert api.call(action="add", service=21, quantity=5000, link="https://youtube.com/c/3") == \
        {"error": "Not enough funds on balance"}
    assert api.call(action="balance") == {"balance": "70", "currency": "EUR"}


def test_active_link_error(api: ApiClient) -> None:
    add(api, link="https://a.com/dup")
    assert api.call(action="add", service=1, link="https://a.com/dup", quantity=100) == \
        {"error": ACTIVE}


def test_refill_and_cancel_errors(api: ApiClient) -> None:
    no_refill = add(api, service=2, quantity=100)
    assert api.call(action="refill", order=no_refill) == \
        {"error": "Refill is disabled for this service"}
    pending = add(api, service=1)
    assert api.call(action="refill", order=pending) == \
        {"error": "Refill is not available for this order"}
    assert api.call(action="cancel", orders=no_refill) == \
        [{"order": no_refill, "cancel": {"error": "Cancel is not available for this order"}}]
    body = api.call(action="refill", orders=f"{no_refill},{pending}")
    assert body == [
        {"order": no_refill, "refill": {"error": "Refill is disabled for this service"}},
        {"order": pending, "refill": {"error": "Refill is not available for this order"}}]


def test_other_keys_orders_are_unknown(api: ApiClient) -> None:
    order = add(api)
    api.key = SECOND_KEY
    assert api.call(action="status", order=order) == {"error": "Incorrect order ID"}
    assert api.call(action="status", orders=str(order)) == \
        {str(order): {"error": "Incorrect order ID"}}
    assert api.call(action="cancel", orders=order) == \
        [{"order": order, "cancel": {"error": "Incorrect order ID"}}]
    assert api.call(action="refill", order=order) == {"error": "Incorrect order ID"}


# ---------------------------------------------------------------- transports


def test_post_json(api: ApiClient) -> None:
    r = requests.post(api.url, json={"key": DEMO_KEY, "action": "add", "service": 1,
                                     "link": "https://a.com/j", "quantity": 100}, timeout=10)
    assert r.json() == {"order": 23501}
    r = requests.post(api.url, json={"key": DEMO_KEY, "action": "status",
                                     "orders": [23501, 5]}, timeout=10)
    assert set(r.json()) == {"23501", "5"}


def test_post_multipart(api: ApiClient) -> None:
    fields = {"key": DEMO_KEY, "action": "add", "service": "1", "link": "https://a.com/m",
              "quantity": "100"}
    r = requests.post(api.url, files={k: (None, v) for k, v in fields.items()}, timeout=10)
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"order": 23501}


def test_get_query_and_trailing_slash(api: ApiClient) -> None:
    params = {"key": DEMO_KEY, "action": "balance"}
    for url in (api.url, api.url + "/"):
        r = requests.get(url, params=params, timeout=10)
        assert r.status_code == 200 and r.json() == {"balance": "1000", "currency": "USD"}
        r = requests.post(url, data=params, timeout=10)
        assert r.json() == {"balance": "1000", "currency": "USD"}


def test_body_beats_query(api: ApiClient) -> None:
    r = requests.post(api.url, params={"key": "wrong", "action": "services"},
                      data={"key": DEMO_KEY, "action": "balance"}, timeout=10)
    assert r.json() == {"balance": "1000", "currency": "USD"}
    r = requests.post(api.url, params={"key": DEMO_KEY, "action": "balance"},
                      data={"key": "wrong"}, timeout=10)
    assert r.json() == {"error": "Invalid API key"}
    r = requests.post(api.url, params={"action": "balance"}, json={"key": SECOND_KEY},
                      timeout=10)
    assert r.json() == {"balance": "250", "currency": "EUR"}  # the two halves combine


def test_errors_are_http_200_json(api: ApiClient) -> None:
    for r in (requests.get(api.url, timeout=10), requests.post(api.url, data="", timeout=10),
              requests.post(api.url, data={"key": DEMO_KEY, "action": "x"}, timeout=10)):
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/json"
        assert set(r.json()) == {"error"}


@pytest.mark.parametrize("path", ["/api/v3", "/api", "/api/v2/x", "/api/v2//", "/nope",
                                  "/api/v2.php"])
def test_other_paths_404_json(server: Any, path: str) -> None:
    r = requests.post(server.url + path, data={"key": DEMO_KEY, "action": "balance"}, timeout=10)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"error": "Not found"}


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_methods_405_json(api: ApiClient, method: str) -> None:
    r = requests.request(method, api.url, data={"key": DEMO_KEY, "action": "balance"},
                         timeout=10)
    assert r.status_code == 405
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"error": "Method not allowed"}
    assert "POST" in r.headers["Allow"]


def test_huge_body_413_json(api: ApiClient) -> None:
    body = b"key=" + DEMO_KEY.encode() + b"&action=balance&pad=" + b"x" * (8 * 1024 * 1024 + 1)
    r = requests.post(api.url, data=body,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert r.status_code == 413
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"error": "Request too large"}


# ---------------------------------------------------------------- dialects


@pytest.fixture(scope="module")
def seed_api() -> Iterator[ApiClient]:
    running = start_background(Config(port=0, clock="manual", dialect="seed"))
    yield ApiClient(running.api_url, running.panel)
    running.stop()


@pytest.fixture(scope="module")
def raw_api() -> Iterator[ApiClient]:
    running = start_background(Config(port=0, clock="manual", dialect="raw-keys"))
    yield ApiClient(running.api_url, running.panel)
    running.stop()


def test_seed_dialect_shapes(seed_api: ApiClient) -> None:
    seed_api.panel.reset()
    services = seed_api.call(action="services")
    assert all(set(s) == {"service", "name", "type", "category", "rate", "min", "max",
                          "refill"} for s in services)
    order = add(seed_api)
    assert set(seed_api.call(action="status", order=order)) == \
        {"charge", "start_count", "status", "remains"}
    assert seed_api.call(action="refill_status", refill=5) == {"error": "Incorrect refill ID"}
    assert seed_api.call(action="refill_status", refills="5") == \
        [{"refill": 5, "status": {"error": "Incorrect refill ID"}}]
    assert seed_api.call(action="status", order=1) == {"error": "Incorrect order ID"}


def test_seed_dialect_currency_is_vnd(seed_api: ApiClient) -> None:
    # docs/PROTOCOL.md §7: the `seed` dialect is the api-docs template, "currency VND".
    seed_api.panel.reset()
    assert seed_api.call(action="balance")["currency"] == "VND"


def test_raw_keys_dialect_texts(raw_api: ApiClient) -> None:
    raw_api.panel.reset()
    a = raw_api
    assert a.call(action="add", service=999) == {"error": "error.incorrect_service_id"}
    assert a.call(action="add", service=1, link="x", quantity=100) == \
        {"error": "neworder.error.link"}
    assert a.call(action="add", service=1, link="https://a.com", quantity=1) == \
        {"error": "neworder.error.min_quantity"}
    assert a.call(action="add", service=1, link="https://a.com", quantity=10**6) == \
        {"error": "neworder.error.max_quantity"}
    add(a, link="https://a.com/d")
    assert a.call(action="add", service=1, link="https://a.com/d", quantity=100) == \
        {"error": "neworder.error.link_duplicate"}
    a.key = SECOND_KEY
    for i in range(2):
        add(a, service=21, quantity=5000, link=f"https://y.com/{i}")
    assert a.call(action="add", service=21, quantity=5000, link="https://y.com/x") == \
        {"error": "neworder.error.not_enough_funds"}
    assert a.call(action="status", order=1) == {"error": "error.incorrect_order_id"}
    assert a.call(action="refill_status", refill=1) == {"error": "error.incorrect_refill_id"}
    assert a.call(action="nonsense") == {"error": "Incorrect request"}
    a.key = "wrong"
    assert a.call(action="balance") == {"error": "Invalid API key"}


def test_ids_tolerate_spaces_and_duplicates(api: ApiClient) -> None:
    order = add(api)
    assert api.call(action="status", order=f" {order} ")["status"] == "Pending"
    assert list(api.call(action="status", orders=f"{order},{order}, {order}")) == [str(order)]


def test_non_ascii_digits_are_not_ids(api: ApiClient) -> None:
    # docs/PROTOCOL.md §1: ids are decimal integers. "٢٣٥٠١" (Arabic-Indic digits) is not order 23501.
    order = add(api)
    assert order == 23501
    assert api.call(action="status", order="٢٣٥٠١") == {"error": "Incorrect order ID"}
    body = api.call(action="status", orders="٢٣٥٠١")
    assert body == {"error": "Incorrect request"}
    assert api.call(action="add", service=1, link="https://a.com/x", quantity="١٠٠") == \
        {"error": "Incorrect request"}
