"""Every control route fuzzed through HTTP with any JSON (issue 16 item 6). After every
call: no 5xx, a JSON answer, no traceback in the log, the conservation law in the store, and
every endpoint still answering.

Nothing is kept out: each class of input this fuzz once broke the control plane with (huge
amounts, rates and clock moves, a NaN snapshot, a list as a fault kind) has its regression
test in test_control_findings.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fuzzing import Watch, fuzz_settings
from hardening_support import DEMO_KEY, Serve
from hypothesis import given
from hypothesis import strategies as st

ROUTES = [
    ("GET", "/"), ("GET", "/clock"), ("POST", "/clock/{verb}"), ("GET", "/accounts"),
    ("POST", "/accounts"), ("GET", "/accounts/{key}"), ("PATCH", "/accounts/{key}"),
    ("DELETE", "/accounts/{key}"), ("POST", "/accounts/{key}/reset"), ("GET", "/orders"),
    ("GET", "/orders/{id}"), ("POST", "/orders/{id}/force"), ("GET", "/refills"),
    ("POST", "/refills/{id}/force"), ("GET", "/services"), ("POST", "/services"),
    ("PATCH", "/services/{id}"), ("DELETE", "/services/{id}"), ("GET", "/faults"),
    ("POST", "/faults"), ("DELETE", "/faults"), ("DELETE", "/faults/{id}"),
    ("GET", "/journal"), ("DELETE", "/journal"), ("POST", "/reset"), ("GET", "/snapshot"),
    ("POST", "/restore"),
]
FIELDS = ["key", "balance", "top_up", "currency", "enabled", "by", "time", "speed", "status",
          "remains", "start_count", "service", "name", "type", "rate", "min", "max", "refill",
          "cancel", "kind", "action", "times", "ms", "error", "retry_after", "state", "limit"]
numbers = st.one_of(st.integers(-(10**30), 10**30), st.floats(allow_nan=True),
                    st.sampled_from([0, 1, -1, 100, 1e23, 1e25, 10**13, 2**63, 1e308]))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20),
                    st.sampled_from(["1", "0.5", "NaN", "Infinity", "-1", "1e25", "USD",
                                     "Completed", "Partial", "rate_limit", "latency",
                                     "http_5xx", "add", DEMO_KEY, "", "²"]))
json_values = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=6), kids, max_size=3)),
    max_leaves=8)
bodies = st.one_of(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5),
                   json_values)
path_ids = st.one_of(st.integers(0, 30), st.integers(23495, 23520),
                     st.sampled_from(["abc", "-1", "1.5", "²", "٣"]))
path_keys = st.one_of(st.sampled_from([DEMO_KEY, "nobody", "x" * 300]), st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#%"),
    min_size=1, max_size=12))
verbs = st.sampled_from(["advance", "freeze", "resume", "set", "speed", "nope"])
queries = st.dictionaries(st.sampled_from(["key", "status", "service", "limit", "action"]),
                          st.one_of(st.text(max_size=8), numbers.map(str)), max_size=2)


@st.composite
def control_calls(draw: st.DrawFn) -> tuple[str, str, Any, dict[str, str]]:
    method, template = draw(st.sampled_from(ROUTES))
    path = template.format(verb=draw(verbs), key=draw(path_keys), id=draw(path_ids))
    return method, path, draw(bodies), draw(queries)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("fuzz-control"), "gunicorn")
    yield server
    server.stop()


@fuzz_settings(share=2.0)
@given(call=control_calls(), orders=st.integers(0, 3))
def test_any_json_on_any_control_route(srv: Serve, call: tuple[str, str, Any, dict],
                                       orders: int) -> None:
    method, path, body, query = call
    srv.reset()
    for i in range(orders):  # something for the control call to act on
        requests.post(srv.api, timeout=10, data={"key": DEMO_KEY, "action": "add",
                                                 "service": "1", "quantity": "100",
                                                 "link": f"https://x.com/c{i}"})
    watch = Watch(srv)
    answer = srv.control(method, path, params=query, data=json.dumps(body),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code < 500, (method, path, body, answer.text[:300])
    assert answer.headers.get("Content-Type", "").startswith("application/json")
    watch.check((method, path, body))
