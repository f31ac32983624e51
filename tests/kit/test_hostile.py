"""The checker survives the panels it judges: faults of our fake, and malicious panels (deep
JSON, huge numbers, slow drip, huge body, cross-origin redirect, key echo). Every run ends
within its deadline, writes all its reports, names what went wrong, and the key is in no
artifact. Plus: money spent never exceeds the budget, even where every invalid order is taken."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from minipanel import KEY, MiniPanel
from smmkit.contract_tests.cli import check
from smmkit.contract_tests.runner import CheckConfig, run_check

SECRET = "hostile-secret-key-0123"


def run_cli(url: str, tmp_path: Path, key: str, *extra: str) -> tuple[Any, dict[str, str]]:
    paths = {name: tmp_path / f"r.{name}" for name in ("xml", "json", "html")}
    result = CliRunner().invoke(check, [url, "--key", key, "--seed", "3", "--examples", "3",
                                        "--junit", str(paths["xml"]), "--json",
                                        str(paths["json"]), "--html", str(paths["html"]),
                                        *extra], catch_exceptions=False)
    texts = {name: path.read_text("utf-8") for name, path in paths.items()}
    for name, text in texts.items():
        assert key not in text, f"the key leaked into the {name} report"
    assert key not in result.output
    return result, texts


# ------------------------------------------------------------------ our fake, faults armed
# latency last: the fake finishes a slow add after the kit gave up on it, which would land
# in the next test's (reset) world.
@pytest.mark.parametrize(("kind", "options", "named"), [
    ("rate_limit", {"retry_after": 1}, set()),
    ("drop", {}, {"transport_error"}),
    ("truncated_json", {}, {"transport_error", "json_body"}),
    ("latency", {"ms": 2500}, {"transport_error"}),
])
def test_faults_of_the_fake_never_abort_the_run(fake: Any, tmp_path: Path, kind: str,
                                                options: dict[str, Any], named: set[str]) -> None:
    from smmkit.mock_server.client.control import ControlClient
    from smmkit.mock_server.core.config import DEMO_KEY

    control = ControlClient(fake.url, fake.config.admin_token)
    control.faults.add(kind, "status", count=2, **options)
    control.faults.add(kind, "add", count=1, **options)
    result, texts = run_cli(fake.api_url, tmp_path, DEMO_KEY, "--allow-orders", "--budget",
                            "0.5", "--admin-token", fake.config.admin_token, "--timeout", "1",
                            "--retries", "3")
    data = json.loads(texts["json"])
    found = {f["check"] for f in data["findings"]}
    assert result.exit_code in (0, 1), result.output
    assert "<testsuite" in texts["xml"] and "<!DOCTYPE html>" in texts["html"]
    if kind == "latency":
        time.sleep(2)  # let the fake finish what it was still doing
    if named:
        assert found & named, (kind, found)
        assert result.exit_code == 1
    else:  # a 429 with Retry-After is waited out, not reported
        assert "transport_error" not in found and result.exit_code == 0, result.output


# ------------------------------------------------------------------ malicious panels
def _key_of(environ: dict[str, Any]) -> str:
    from werkzeug.wrappers import Request

    request = Request(environ)
    return {**request.args.to_dict(), **request.form.to_dict()}.get("key", "")


def answering(body: Any, content_type: str = "application/json") -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        data = body(environ) if callable(body) else body
        start_response("200 OK", [("Content-Type", content_type)])
        yield data if isinstance(data, bytes) else data.encode()
    return app


def deep(environ: dict[str, Any]) -> str:
    return "[" * 200_000 + "]" * 200_000


def huge_numbers(environ: dict[str, Any]) -> str:
    from werkzeug.wrappers import Request

    action = Request(environ).values.get("action")
    if action == "services":
        return json.dumps([{"service": 1, "name": "x", "type": "Default", "category": "c",
                            "rate": "1e999999999", "min": "9" * 5000, "max": "9" * 5000,
                            "refill": False, "cancel": False}])
    return '{"balance": 1e999999999, "currency": "USD", "n": ' + "7" * 5000 + "}"


def drip(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    for _ in range(60):
        time.sleep(0.5)
        yield b" "


def huge_body(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    yield b"["
    for _ in range(50):
        yield b'"' + b"x" * (1024 * 1024) + b'",'
    yield b"0]"


def echo(environ: dict[str, Any]) -> str:
    from werkzeug.wrappers import Request

    request = Request(environ)
    return json.dumps({"error": f"echo {request.get_data(as_text=True)} "
                                f"{request.query_string.decode()} {_key_of(environ)}"})


@pytest.mark.parametrize(("name", "app", "deadline"), [
    ("deep JSON", answering(deep), 60),
    ("huge numbers", answering(huge_numbers), 60),
    ("slow drip", drip, 30),
    ("huge body", huge_body, 60),
    ("key echo", answering(echo), 60),
])
def test_malicious_panels_end_in_time_write_reports_and_keep_the_key(
        serve: Any, tmp_path: Path, name: str, app: Any, deadline: float) -> None:
    url = serve(app).api_url
    started = time.monotonic()
    result, texts = run_cli(url, tmp_path, SECRET, "--timeout", "2", "--retries", "0")
    assert time.monotonic() - started < deadline, name
    assert result.exit_code in (1, 3), (name, result.output)
    data = json.loads(texts["json"])
    assert data["exit_code"] == result.exit_code
    assert data["headline"] or data["findings"], name


def test_a_redirect_to_another_origin_is_not_followed(serve: Any, tmp_path: Path) -> None:
    seen: list[str] = []

    def elsewhere(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        seen.append(environ.get("PATH_INFO", ""))
        start_response("200 OK", [("Content-Type", "application/json")])
        yield b'{"balance": "1", "currency": "USD"}'

    other = serve(elsewhere).api_url

    def redirect(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("307 Temporary Redirect", [("Location", other),
                                                  ("Content-Type", "application/json")])
        yield b"{}"

    result, texts = run_cli(serve(redirect).api_url, tmp_path, SECRET, "--retries", "0")
    assert seen == [], "the kit followed a redirect to another origin"
    assert result.exit_code in (1, 3)
    assert "redirect" in {f["check"] for f in json.loads(texts["json"])["findings"]} \
        or json.loads(texts["json"])["headline"]


def test_panel_text_cannot_inject_markup_into_the_html_report(serve: Any,
                                                              tmp_path: Path) -> None:
    class Scripted(MiniPanel):
        def services(self, key: str, p: dict[str, str]) -> Any:
            items = super().services(key, p)
            items[0]["name"] = "<script>alert(1)</script>"
            items[0]["rate"] = 0.5  # a float: a finding, so the body is shown in the report
            return items

    result, texts = run_cli(serve(Scripted()).api_url, tmp_path, KEY)
    assert result.exit_code == 1
    assert "<script" not in texts["html"] and "&lt;script&gt;" in texts["html"]


# ------------------------------------------------------------------ the budget
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck),
          database=None)
@given(seed=st.integers(0, 10_000), budget=st.decimals("0.001", "3", places=3))
@example(seed=1, budget=Decimal("0.001"))  # an unknown service was reserved at 0, taken at 0.005
def test_spending_never_exceeds_the_budget_even_if_every_invalid_order_is_taken(
        seed: int, budget: Decimal) -> None:
    panel = MiniPanel("accept_invalid", balance="1000")
    from smmkit.contract_tests.targets import WsgiTarget
    from werkzeug.serving import make_server  # noqa: F401 - served in-process below

    def advance(seconds: float) -> None:
        panel.now += seconds

    run_check(CheckConfig("http://mini/api/v2", KEY, allow_orders=True, budget=budget,
                          seed=seed, examples=8, target=WsgiTarget(panel, KEY),
                          clock=advance))
    taken = sum((o["charge"] for o in panel.orders.values() if o["key"] == KEY), Decimal(0))
    assert taken <= budget
