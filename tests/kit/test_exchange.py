"""Exchange: one record whatever the transport, key always redacted."""

from __future__ import annotations

import datetime
import json
import shlex
from pathlib import Path
from typing import Any

import requests
from smmkit.contract_tests.exchange import (
    NO_JSON,
    REDACTED,
    Exchange,
    dump,
    fingerprint,
    load_recorded,
)
from smmkit.contract_tests.targets import WsgiTarget

SECRET = "super-secret-key"


def test_build_redacts_the_key_and_keeps_a_fingerprint() -> None:
    exchange = Exchange.build({"key": SECRET, "action": "balance"}, status=200,
                              headers={"Content-Type": "application/json"},
                              body='{"balance": "1"}', url=f"https://p.example/api/v2?key={SECRET}")
    assert exchange.params == {"key": REDACTED, "action": "balance"}
    assert exchange.account == fingerprint(SECRET) != ""
    assert SECRET not in repr(exchange) and SECRET not in exchange.curl()
    assert exchange.json() == {"balance": "1"}


def test_json_sentinel_for_non_json_bodies() -> None:
    exchange = Exchange.build({"action": "x"}, status=502, headers={}, body=b"<html>\xff")
    assert exchange.json() is NO_JSON and not NO_JSON
    assert exchange.error_text is None


def test_curl_lines_reproduce_each_transport() -> None:
    params = {"key": SECRET, "action": "status", "orders": "1,2"}
    for transport, expected in (("form", "--data-urlencode"), ("json", "application/json"),
                                ("query", "?key=***")):
        line = Exchange.build(params, status=200, headers={}, body="{}", transport=transport,
                              url="https://p.example/api/v2").curl()
        assert expected in line and SECRET not in line
        assert shlex.split(line)[0] == "curl"


def _response(body: bytes, content_type: str, method: str = "POST") -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.headers["Content-Type"] = content_type
    response.elapsed = datetime.timedelta(milliseconds=12)
    response.request = requests.Request(method, "https://p.example/api/v2",
                                        json={"key": SECRET}).prepare()
    return response


def test_from_requests() -> None:
    exchange = Exchange.from_requests(_response(b'{"order": 1}', "application/json"),
                                      {"key": SECRET, "action": "add"})
    assert exchange.action == "add" and exchange.transport == "json"
    assert abs(exchange.elapsed - 0.012) < 1e-9 and exchange.json() == {"order": 1}
    assert exchange.content_type == "application/json"


def test_from_werkzeug_through_the_fake(fresh_panel: Any) -> None:
    from smmkit.mock_server.core.config import DEMO_KEY
    from smmkit.mock_server.web.app import create_app

    target = WsgiTarget(create_app(fresh_panel), DEMO_KEY)
    for transport in ("form", "json", "query"):
        exchange = target.send({"action": "balance"}, transport=transport)
        assert exchange.status == 200 and exchange.json()["currency"] == "USD"
        assert exchange.params["key"] == REDACTED and exchange.transport == transport


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    records = [
        Exchange.build({"key": SECRET, "action": "balance"}, status=200,
                       headers={"Content-Type": "application/json"}, body='{"balance": "1"}'),
        Exchange.build({"action": "services"}, status=502, headers={}, body=b"\xff\xfe binary"),
    ]
    path = dump(records, tmp_path / "session.jsonl")
    assert SECRET not in path.read_text()
    assert [json.loads(line)["action"] for line in path.read_text().splitlines()] == \
        ["balance", "services"]
    assert load_recorded(path) == records
