"""Garbage thrown at the real server: never a 5xx, always JSON, and nothing changes.

Valid adds are excluded by construction: every `link` is malformed and `username` (the one
field a link-less Subscriptions order needs) is never sent, so no request can place an order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smmkit.mock_server.core.config import DEMO_KEY
from support import SECOND_KEY

BIG = "9" * (1 << 20)  # a 1 MB field
MANY_IDS = ",".join(str(23501 + i) for i in range(10_000))
BAD_LINKS = ["", " ", "nope", "ftp://x.example/a", "http://nodot", "https://exa mple.com",
             "instagram.com/p/abc", "javascript:alert(1)", "https://", BIG, "\x00"]
NAMES = ["key", "action", "service", "link", "quantity", "order", "orders", "refill", "refills",
         "runs", "interval", "comments", "usernames", "hashtags", "hashtag", "min", "max",
         "delay", "posts", "expiry", "device", "type_of_traffic", "country", "list", "Key",
         "ACTION", "key[]", "orders[]", ""]
ACTIONS = ["add", "status", "refill", "refill_status", "cancel", "services", "balance", "",
           "ADD", "Status", "nonsense", "add ", "balance\x00", "services,balance"]
WEIRD = ["", " ", "-1", "0", "-0", "1.5", "1e3", "0x10", "NaN", "Infinity", "null", "true",
         "[]", "{}", "١٠٠", "1,2,3", " 23501 ", "23501,23501", ",,,", "9" * 45, "-" + "9" * 30,
         "2" * 31, "1" * 5000, "23503", "23507", "23501,23502,23503,23504,23505,23506,23507",
         "1", "2", "%00", "\r\n", "\ud7ff", "💥", "'; DROP TABLE orders; --", BIG,
         MANY_IDS, "23501, 23502 ,abc", "1" + ",1" * 100]

keys = st.sampled_from([DEMO_KEY, SECOND_KEY, "", "wrong", DEMO_KEY.upper(), " " + DEMO_KEY,
                        "x" * 300, BIG])
numbers = st.one_of(st.integers(-(10**40), 10**40).map(str),
                    st.floats(allow_nan=True).map(repr), st.integers(1, 50).map(str))
values = st.one_of(st.sampled_from(WEIRD), numbers, st.text(max_size=40))


@st.composite
def param_dicts(draw: st.DrawFn) -> dict[str, str]:
    params: dict[str, str] = {}
    if draw(st.booleans()):
        params["key"] = draw(keys)
    if draw(st.integers(0, 4)):
        params["action"] = draw(st.one_of(st.sampled_from(ACTIONS), st.text(max_size=12)))
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=6)):
        params[name] = draw(values)
    for name in draw(st.lists(st.text(max_size=10), max_size=2)):
        params[name] = draw(values)
    return sanitize(params)


def sanitize(params: dict[str, Any]) -> dict[str, Any]:
    """The exclusion: no usable link and no username, so no add can succeed."""
    params.pop("username", None)
    if "link" in params:
        params["link"] = BAD_LINKS[len(str(params["link"])) % len(BAD_LINKS)]
    return params


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30),
              st.floats(allow_nan=False, allow_infinity=False), values),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12)


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:  # an object of garbage, some values lists or nested
        body: Any = draw(param_dicts())
        for name in draw(st.lists(st.sampled_from(NAMES), max_size=3)):
            if name not in ("link", "username"):
                body[name] = draw(json_values)
        body = sanitize(body)
    elif kind == 1:  # arrays and scalars as the whole body
        body = draw(st.one_of(st.lists(json_values, max_size=5), json_values))
    elif kind == 2:
        body = [draw(param_dicts())]
    else:
        body = {"key": DEMO_KEY, "action": draw(st.sampled_from(ACTIONS)),
                "orders": draw(st.lists(st.one_of(st.integers(23495, 23510),
                                                  st.integers(-5, 10**25)), max_size=120)),
                "order": draw(st.integers(23495, 23510)),
                "refill": draw(st.integers(0, 3))}
    return json.dumps(body).encode()


@st.composite
def requests_(draw: st.DrawFn) -> dict[str, Any]:
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "GET", "PUT", "DELETE",
                                   "PATCH", "OPTIONS"]))
    path = draw(st.one_of(
        st.sampled_from(["/api/v2", "/api/v2", "/api/v2/", "/api/v2", "/", "/api",
                         "/api/v2/x", "/api/v1", "/API/V2", "/api/v2.php", "/favicon.ico"]),
        st.text(alphabet="abcxyz019/._-%", max_size=15).map(lambda p: "/" + p)
        .filter(lambda p: not p.startswith("/_"))))
    if method == "OPTIONS" and path == "/":
        method = "GET"  # covered on its own by test_options_is_json_too
    request: dict[str, Any] = {"method": method, "path": path, "headers": {}}
    transport = draw(st.sampled_from(["form", "json", "multipart", "query", "raw", "mixed"]))
    if transport == "form":
        request["data"] = draw(param_dicts())
    elif transport == "json":
        request["data"] = draw(json_bodies())
        request["headers"]["Content-Type"] = draw(st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", ""]))
    elif transport == "multipart":
        request["files"] = {k: (None, v.encode("utf-8", "surrogatepass"))
                            for k, v in draw(param_dicts()).items() if k}
        if not request["files"]:
            request["files"] = {"x": (None, b"")}
    elif transport == "query":
        request["params"] = short(draw(param_dicts()))
    elif transport == "raw":
        request["data"] = draw(st.one_of(
            st.binary(max_size=200),
            st.sampled_from([b"\xff\xfe\xfd", b"key=\xff&action=balance", b"{", b"[",
                             b"key=smmkit-demo-key&action=balance&key=\xc3\x28",
                             b"\x00" * 100, b"%%%&&&===", b'{"key": "smmkit-demo-key", '
                             b'"action": "status", "order": {"a": [1]}}'])))
        request["headers"]["Content-Type"] = draw(st.sampled_from([
            "", "application/x-www-form-urlencoded", "application/json", "text/plain",
            "multipart/form-data", "multipart/form-data; boundary=zzz", "application/xml",
            "application/x-www-form-urlencoded; charset=latin-1"]))
    else:
        request["params"] = short(draw(param_dicts()))
        request["data"] = draw(param_dicts())
    return request


def short(params: dict[str, str]) -> dict[str, str]:
    """Query strings stay under the HTTP servers' request-line limits (werkzeug answers an
    over-long URL itself, before the app, with an HTML 414): long values go in bodies."""
    return {k[:100]: v[:1000] for k, v in params.items()}


def snapshot(db: sqlite3.Connection) -> tuple:
    return tuple(tuple(db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall())
                 for table in ("accounts", "orders", "refills", "ledger", "services"))


@pytest.fixture(scope="module")
def prepared() -> Iterator[Any]:
    """Orders of a bystander account (ids 23501…: a new store, as ids survive resets) that
    garbage must not reach."""
    from smmkit.mock_server.core.config import Config
    from smmkit.mock_server.serving.server import start_background

    server = start_background(Config(port=0, db=":memory:", clock="manual", seed=1))
    panel = server.panel
    panel.create_account("bystander-key", "100")
    for i in range(6):
        panel.add_order("bystander-key", {"service": "1", "link": f"https://a.com/{i}",
                                          "quantity": "100"})
    panel.advance(86_400)
    panel.add_order("bystander-key", {"service": "1", "link": "https://a.com/live",
                                      "quantity": "100"})
    panel.refill("bystander-key", [23503])
    yield server
    server.stop()
    panel.store.close()


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(request=requests_())
def test_garbage_never_breaks_or_changes_anything(prepared: Any, request: dict[str, Any]) -> None:
    db = prepared.panel.store.connection()
    before = snapshot(db)
    url = prepared.url + request.pop("path")
    response = requests.request(url=url, timeout=30, **request)
    assert response.status_code < 500, response.text[:300]
    assert response.headers.get("Content-Type", "").startswith("application/json"), \
        (response.status_code, response.headers, response.content[:200])
    body = response.json()
    assert isinstance(body, (dict, list))
    if isinstance(body, dict) and "error" in body:
        assert isinstance(body["error"], str) and body["error"]
    assert snapshot(db) == before


def test_snapshot_sees_a_change(prepared: Any) -> None:
    """The property above can fail: a real add does change the snapshot."""
    db = prepared.panel.store.connection()
    before = snapshot(db)
    prepared.panel.create_account("probe-key", "1")
    assert snapshot(db) != before


@pytest.mark.parametrize("path", ["/", "/api/v2", "/api/v2/", "/nope"])
def test_options_is_json_too(server: Any, path: str) -> None:
    response = requests.options(server.url + path, timeout=10)
    assert response.status_code < 500
    assert response.headers.get("Content-Type", "").startswith("application/json"), \
        (response.status_code, response.headers, response.content[:100])
    assert isinstance(response.json(), dict)
