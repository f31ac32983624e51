"""Every control route fuzzed through HTTP with any JSON, or a body that is not JSON at all,
and `restore` with a real snapshot mutated (issue 16 item 6). After every call: no 5xx, a
JSON answer, no traceback in the log, the conservation law in the store, every endpoint
still answering, and a refused call (4xx) changed nothing in the store (the clock is frozen
around the call so only the call itself can change it).

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
raw_bodies = st.one_of(  # (bytes, Content-Type): what is not a JSON document
    st.tuples(st.binary(max_size=40), st.sampled_from(["application/json", "text/plain", ""])),
    st.tuples(st.sampled_from([b"", b"{", b'{"by": 1', b"[1,", b"NaN", b'{"by": NaN}',
                               b'{"balance": 1e999}', b'{"a": 1, "a": 2}', b"\xef\xbb\xbf{}",
                               b'{"key": "\\ud800"}', b"by=10&speed=2", b"null"]),
              st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                               "application/json; charset=latin-1"])))
path_ids = st.one_of(st.integers(0, 30), st.integers(23495, 23520),
                     st.sampled_from(["abc", "-1", "1.5", "²", "٣"]))
path_keys = st.one_of(st.sampled_from([DEMO_KEY, "nobody", "x" * 300]), st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#%"),
    min_size=1, max_size=12))
verbs = st.sampled_from(["advance", "freeze", "resume", "set", "speed", "nope"])
queries = st.dictionaries(st.sampled_from(["key", "status", "service", "limit", "action"]),
                          st.one_of(st.text(max_size=8), numbers.map(str)), max_size=2)


@st.composite
def control_calls(draw: st.DrawFn) -> tuple[str, str, bytes, str, dict[str, str]]:
    """(method, path, body, Content-Type, query)."""
    method, template = draw(st.sampled_from(ROUTES))
    path = template.format(verb=draw(verbs), key=draw(path_keys), id=draw(path_ids))
    if draw(st.integers(0, 4)) == 0:
        body, kind = draw(raw_bodies)
    else:
        body, kind = json.dumps(draw(bodies)).encode(), "application/json"
    return method, path, body, kind, draw(queries)


TABLES = ("state", "accounts", "services", "orders", "refills", "ledger", "faults",
          "sequences")


def _store(srv: Serve) -> dict[str, list[tuple]]:
    return {table: sorted(srv.db_rows(f"SELECT * FROM {table}"), key=repr) for table in TABLES}


def _prepare(srv: Serve, orders: int) -> None:
    """A fresh panel with `orders` orders to act on, its clock frozen."""
    srv.reset()
    for i in range(orders):
        requests.post(srv.api, timeout=10, data={"key": DEMO_KEY, "action": "add",
                                                 "service": "1", "quantity": "100",
                                                 "link": f"https://x.com/c{i}"})
    assert srv.control("POST", "/clock/freeze").status_code == 200


def _call(srv: Serve, method: str, path: str, body: bytes, kind: str,
          query: dict[str, str] | None = None) -> None:
    """Make the call; no 5xx, JSON back, and a refusal changed nothing."""
    watch, before = Watch(srv), _store(srv)
    headers = {"Content-Type": kind} if kind else {}
    answer = srv.control(method, path, params=query, data=body, headers=headers)
    assert answer.status_code < 500, (method, path, body[:300], answer.text[:300])
    assert answer.headers.get("Content-Type", "").startswith("application/json")
    if 400 <= answer.status_code < 500:
        after = _store(srv)
        changed = {table for table in TABLES if before[table] != after[table]}
        assert not changed, (method, path, body[:300], answer.text[:200], changed)
    watch.check((method, path, body[:300]))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("fuzz-control"), "gunicorn")
    yield server
    server.stop()


@fuzz_settings(share=2.0)
@given(call=control_calls(), orders=st.integers(0, 3))
def test_any_json_on_any_control_route(srv: Serve, call: tuple[str, str, bytes, str, dict],
                                       orders: int) -> None:
    method, path, body, kind, query = call
    _prepare(srv, orders)
    _call(srv, method, path, body, kind, query)


@st.composite
def mutations(draw: st.DrawFn, snapshot: Any) -> Any:
    """`snapshot` with 1-3 changes deep in it: a value replaced, a key or row dropped, a row
    duplicated or an entry added."""
    doc = json.loads(json.dumps(snapshot))
    for _ in range(draw(st.integers(1, 3))):
        parent, node = None, doc
        while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)):
            index = draw(st.sampled_from(sorted(node) if isinstance(node, dict)
                                         else range(len(node))))
            parent, node = (node, index), node[index]
        if parent is None:
            continue
        container, index = parent
        action = draw(st.sampled_from(["set", "set", "set", "drop", "duplicate", "add"]))
        if action == "set":
            container[index] = draw(json_values)
        elif action == "drop":
            del container[index]
        elif action == "duplicate" and isinstance(container, list):
            container.append(json.loads(json.dumps(node)))
        elif isinstance(container, dict):
            container[draw(st.text(max_size=6))] = draw(json_values)
    return doc


@fuzz_settings()
@given(data=st.data(), orders=st.integers(0, 3))
def test_any_mutated_snapshot_restored(srv: Serve, data: st.DataObject, orders: int) -> None:
    """`restore` validates the whole snapshot before touching anything: a mutated one is
    taken whole (and the panel keeps its law) or refused with nothing changed."""
    _prepare(srv, orders)
    snapshot = srv.control("GET", "/snapshot").json()
    doc = data.draw(mutations(snapshot))
    _call(srv, "POST", "/restore", json.dumps(doc).encode(), "application/json")
