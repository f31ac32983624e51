"""Issue 16, control plane: hostile control calls are refused cleanly and change nothing;
reset, account deletion and account views hold up against real API traffic on real threads.

Each case here answered 500 (several after committing, some leaving the API failing until a
reset) before the control plane validated its input and ran reset and deletion atomically.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import requests
from engines import table_rows
from smmkit.mock_server.core.config import DEMO_KEY, Config
from smmkit.mock_server.serving.server import start_background

LINK = "https://instagram.com/p/{}"


@pytest.fixture(scope="module")
def server() -> Any:
    running = start_background(Config(port=0, clock="manual", seed=7, admin_token="t0ken"))
    yield running
    running.stop()
    running.panel.store.close()


def control(server: Any, method: str, path: str, body: Any = None, *,
            raw: str | None = None) -> requests.Response:
    headers = {"Authorization": "Bearer t0ken"}
    if raw is not None:
        headers["Content-Type"] = "application/json"
        return requests.request(method, f"{server.url}/_control{path}", data=raw,
                                headers=headers, timeout=30)
    return requests.request(method, f"{server.url}/_control{path}", json=body, headers=headers,
                            timeout=30)


def api(server: Any, key: str = DEMO_KEY, **params: Any) -> requests.Response:
    return requests.post(server.api_url, data={"key": key, **params}, timeout=30)


def tables(server: Any) -> dict[str, list[tuple]]:
    """Every table of the store, on either engine (tests/engines.py)."""
    return table_rows(server.panel.store)


@pytest.fixture
def placed(server: Any) -> int:
    """A fresh panel with one acknowledged order (it must stay findable whatever fails)."""
    assert control(server, "POST", "/reset").status_code == 200
    body = api(server, action="add", service=1, link=LINK.format("kept"), quantity=100).json()
    return int(body["order"])


def snapshot_with(server: Any, change: Callable[[dict[str, Any]], None]) -> str:
    data = control(server, "GET", "/snapshot").json()
    change(data)
    import json

    return json.dumps(data)


def _cell(data: dict[str, Any], table: str, column: str, value: Any, row: int = 0) -> None:
    at = data[table]["columns"].index(column)
    data[table]["rows"][row][at] = value


HOSTILE: list[tuple[str, str, Any, str | None, str]] = [
    # method, path, JSON body, raw body, a word the error must contain
    ("PATCH", f"/accounts/{DEMO_KEY}", {"top_up": "1e23"}, None, "amount"),
    ("PATCH", f"/accounts/{DEMO_KEY}", {"top_up": "1" + "0" * 23}, None, "15 digits"),
    ("PATCH", f"/accounts/{DEMO_KEY}", {"top_up": "999999999999999"}, None, "above"),
    ("PATCH", f"/accounts/{DEMO_KEY}", {"balance": "1e25"}, None, "amount"),
    ("PATCH", f"/accounts/{DEMO_KEY}", {"balance": "NaN"}, None, "NaN"),
    ("PATCH", f"/accounts/{DEMO_KEY}", None, '{"balance": Infinity}', "float"),
    ("PATCH", f"/accounts/{DEMO_KEY}", {"balance": "0.000001"}, None, "5 after"),
    ("PATCH", f"/accounts/{DEMO_KEY}", {"currency": "dollars", "top_up": "5"}, None, "dollars"),
    ("PATCH", f"/accounts/{DEMO_KEY}", {"top_up": "5", "enabled": "yes"}, None, "enabled"),
    ("POST", "/accounts", {"key": "new", "currency": "dollars"}, None, "'dollars'"),
    ("POST", "/accounts", {"key": "new", "balance": "-1e400"}, None, "balance"),
    ("PATCH", "/services/1", {"rate": "1e25"}, None, "rate"),
    ("PATCH", "/services/1", {"rate": "NaN"}, None, "rate"),
    ("PATCH", "/services/1", {"speed": 10**12}, None, "speed"),
    ("PATCH", "/services/1", {"max": 10**30}, None, "max"),
    ("POST", "/clock/advance", {"by": 1e13}, None, "century"),
    ("POST", "/clock/advance", {"by": "10000000000000"}, None, "century"),
    ("POST", "/clock/advance", None, '{"by": Infinity}', "duration"),
    ("POST", "/clock/set", None, '{"time": Infinity}', "finite"),
    ("POST", "/clock/set", None, '{"time": NaN}', "finite"),
    ("POST", "/clock/set", {"time": 1e300}, None, "9999"),
    ("POST", "/clock/set", {"time": 10**400}, None, "too large"),
    ("POST", "/clock/set", {"time": "9999-12-31T23:59:59.999999+00:00"}, None, "9999"),
    ("POST", "/clock/speed", {"speed": 1e25}, None, "speed"),
    ("POST", "/clock/speed", None, '{"speed": Infinity}', "speed"),
    ("POST", "/clock/speed", {"speed": 0}, None, "speed"),
    ("GET", "/orders/9223372036854775808", None, None, "unknown order"),
    ("GET", "/orders/%C2%B2", None, None, "unknown order"),
    ("GET", "/orders/" + "9" * 40, None, None, "unknown order"),
    ("POST", "/orders/9223372036854775808/force", {"status": "Canceled"}, None, "unknown order"),
    ("POST", "/refills/%C2%B2/force", {"status": "Completed"}, None, "unknown refill"),
    ("PATCH", "/services/9223372036854775808", {"rate": "1"}, None, "unknown service"),
    ("DELETE", "/services/%D9%A3", None, None, "unknown service"),
    ("DELETE", "/faults/18446744073709551616", None, None, "unknown fault"),
    ("GET", "/orders?limit=%C2%B2", None, None, "limit"),
    ("GET", "/orders?service=%C2%B2", None, None, "service"),
    ("GET", "/orders?limit=99999999999999999999", None, None, "limit"),
    ("GET", "/orders?service=9223372036854775808", None, None, "service"),
    ("GET", "/journal?limit=%C2%B2", None, None, "limit"),
    ("GET", "/journal?status=%C2%B2", None, None, "status"),
]


@pytest.mark.parametrize(("method", "path", "body", "raw", "needle"), HOSTILE,
                         ids=[f"{m} {p} {b or r}"[:70] for m, p, b, r, _ in HOSTILE])
def test_hostile_control_calls_are_refused_and_change_nothing(
        server: Any, placed: int, method: str, path: str, body: Any, raw: str | None,
        needle: str) -> None:
    before = tables(server)
    response = control(server, method, path, body, raw=raw)
    assert response.status_code in (400, 404), (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    assert needle in response.json()["error"], response.json()
    assert tables(server) == before
    _still_serving(server, placed)


def _still_serving(server: Any, placed: int) -> None:
    """Every surface still answers, and the acknowledged order is still found (a failed call
    must leave no thread on a stale snapshot)."""
    for _ in range(8):  # several requests: they land on several server threads
        status = api(server, action="status", order=placed)
        assert status.status_code == 200 and "status" in status.json(), status.text
    assert "balance" in api(server, action="balance").json()
    for path in ("/clock", "/accounts", f"/accounts/{DEMO_KEY}", "/orders", "/services",
                 f"/orders/{placed}", "/snapshot"):
        response = control(server, "GET", path)
        assert response.status_code == 200, (path, response.text[:300])


def _break_state(data: dict[str, Any]) -> None:
    data["state"]["rows"] = []


RESTORES: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_break_state, "exactly one row"),
    (lambda d: _cell(d, "accounts", "balance", "NaN"), "balance"),
    (lambda d: _cell(d, "accounts", "balance", "1e25"), "balance"),
    (lambda d: _cell(d, "accounts", "balance", 12.5), "text"),
    (lambda d: _cell(d, "accounts", "currency", "dollars"), "dollars"),
    (lambda d: _cell(d, "orders", "charge", "-5"), "negative"),
    (lambda d: _cell(d, "orders", "outcome", "vanish"), "outcome"),
    (lambda d: _cell(d, "orders", "total", "100"), "integer"),
    (lambda d: _cell(d, "orders", "account_id", 424242), "accounts"),
    (lambda d: _cell(d, "state", "speed", 1e30), "speed"),
    (lambda d: _cell(d, "state", "anchor_panel", 1e300), "real"),
    (lambda d: _cell(d, "services", "data", "{not json"), "JSON"),
    (lambda d: d.pop("ledger"), "ledger"),
    (lambda d: d["orders"]["columns"].append("extra"), "columns"),
    (lambda d: d["orders"]["rows"][0].pop(), "list of"),
    (lambda d: d["accounts"]["rows"].append(list(d["accounts"]["rows"][0])), "twice"),
    (lambda d: d.update(format="smmkit-snapshot/0"), "format"),
]


@pytest.mark.parametrize(("change", "needle"), RESTORES)
def test_a_bad_snapshot_is_refused_whole_before_anything_changes(
        server: Any, placed: int, change: Callable[[dict[str, Any]], None], needle: str) -> None:
    raw = snapshot_with(server, change)
    before = tables(server)
    response = control(server, "POST", "/restore", raw=raw)
    assert response.status_code == 400, response.text[:300]
    assert needle in response.json()["error"], response.json()
    assert tables(server) == before
    _still_serving(server, placed)


def test_a_good_snapshot_still_restores(server: Any, placed: int) -> None:
    saved = control(server, "GET", "/snapshot").json()
    api(server, action="add", service=1, link=LINK.format("later"), quantity=100)
    assert control(server, "POST", "/restore", copy.deepcopy(saved)).status_code == 200
    assert control(server, "GET", f"/orders/{placed}").status_code == 200
    assert len(control(server, "GET", "/orders").json()) == 1


# ---------------------------------------------------------------- races with real threads


def _hammer(server: Any, stop: threading.Event, failures: list[str], key: str = DEMO_KEY,
            actions: tuple[str, ...] = ("add", "status", "balance")) -> None:
    session = requests.Session()
    n = 0
    while not stop.is_set():
        n += 1
        action = actions[n % len(actions)]
        params: dict[str, Any] = {"key": key, "action": action}
        if action == "add":
            params.update(service=1, link=LINK.format(f"{threading.get_ident()}-{n}"),
                          quantity=100)
        elif action == "status":
            params["order"] = 23501 + n % 50
        try:
            response = session.post(server.api_url, data=params, timeout=30)
        except requests.RequestException as exc:  # pragma: no cover - reported, not hidden
            failures.append(f"{action}: {exc}")
            continue
        if response.status_code >= 500 or "error" not in response.text and \
                response.status_code != 200:
            failures.append(f"{action}: {response.status_code} {response.text[:200]}")


def _race(server: Any, steer: Callable[[], None], rounds: int, **hammer: Any) -> list[str]:
    stop, failures = threading.Event(), []
    threads = [threading.Thread(target=_hammer, args=(server, stop, failures), kwargs=hammer)
               for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(rounds):
            steer()
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    return failures


@pytest.mark.slow  # a real server under concurrent load for seconds (README: -m slow)
def test_reset_racing_api_traffic_never_answers_5xx(server: Any) -> None:
    control(server, "POST", "/reset")

    def steer() -> None:
        assert control(server, "POST", "/reset").status_code == 200

    assert _race(server, steer, 40) == []


@pytest.mark.slow  # a real server under concurrent load for seconds (README: -m slow)
def test_deleting_an_account_racing_its_adds_never_answers_5xx(server: Any) -> None:
    control(server, "POST", "/reset")
    created = 0

    def steer() -> None:
        nonlocal created
        response = control(server, "POST", "/accounts", {"key": "racer", "balance": "100000"})
        assert response.status_code == 201, response.text
        created += 1
        for _ in range(3):
            api(server, "racer", action="add", service=1, link=LINK.format(f"r{created}-{_}"),
                quantity=100)
        assert control(server, "DELETE", "/accounts/racer").status_code == 200

    failures = _race(server, steer, 25, key="racer", actions=("add", "balance", "status"))
    assert failures == []


@pytest.mark.slow  # a real server under concurrent load for seconds (README: -m slow)
def test_the_account_view_is_conserved_under_concurrent_adds(server: Any) -> None:
    control(server, "POST", "/reset")
    control(server, "PATCH", f"/accounts/{DEMO_KEY}", {"balance": "1000000"})
    broken: list[dict[str, Any]] = []

    def steer() -> None:
        view = control(server, "GET", f"/accounts/{DEMO_KEY}").json()
        if Decimal(view["balance"]) + Decimal(view["charges"]) != \
                Decimal(view["opening"]) + Decimal(view["topups"]):
            broken.append(view)
        control(server, "POST", "/clock/advance", {"by": "7s"})  # orders finish: refunds move

    failures = _race(server, steer, 60, actions=("add", "add", "status"))
    assert failures == [] and broken == []
