"""`smmkit check` through click's CliRunner, and the three report formats it writes."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from _defects import ErrorsAsHttp500
from click.testing import CliRunner
from kit_support import fake_config
from smmkit.contract_tests.cli import check


def demo_key() -> str:
    from smmkit.mock_server.core.config import DEMO_KEY

    return DEMO_KEY


def run(*args: str) -> Any:
    return CliRunner().invoke(check, list(args), catch_exceptions=False)


def reports(tmp_path: Path) -> list[str]:
    return ["--junit", str(tmp_path / "r.xml"), "--json", str(tmp_path / "r.json"),
            "--html", str(tmp_path / "r.html")]


def assert_self_contained(page: str) -> None:
    assert page.lstrip().startswith("<!DOCTYPE html>") and "<style>" in page
    for reference in ("<script", "<link", "<img", "src=", "href=", "@import", "url("):
        assert reference not in page, reference


def test_check_of_the_fake_exits_0_and_writes_reports(fake: Any, tmp_path: Path) -> None:
    result = run(fake.api_url, "--key", demo_key(), "--allow-orders", "--budget", "0.5",
                 "--seed", "5", "--admin-token", fake.config.admin_token, *reports(tmp_path))
    assert result.exit_code == 0, result.output
    assert "conforms" in result.output and "spent" in result.output
    assert demo_key() not in result.output

    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    assert int(suite.get("tests", "0")) == len(suite.findall("testcase")) > 5

    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ok"] is True and data["findings"] == [] and data["seed"] == 5
    assert data["ledger"] and all(re.fullmatch(r"\d+\.\d+", e["expected_charge"])
                                  for e in data["ledger"])
    assert 0 < float(data["spent"]) <= 0.5

    page = (tmp_path / "r.html").read_text()
    assert_self_contained(page)
    assert "Spend ledger" in page and "By check family" in page


def test_check_of_a_broken_fake_exits_1_and_names_the_check(fresh_panel: Any, serve: Any,
                                                             tmp_path: Path) -> None:
    from smmkit.mock_server.web.app import create_app

    served = serve(ErrorsAsHttp500(create_app(fresh_panel, config=fake_config())))
    result = run(served.api_url, "--key", demo_key(), "--seed", "6", *reports(tmp_path))
    assert result.exit_code == 1
    assert "http_status" in result.output and "curl" in result.output

    suite = ET.parse(tmp_path / "r.xml").getroot()
    failures = suite.findall("testcase/failure")
    assert int(suite.get("failures", "0")) == len(failures) > 0
    assert any("http_status" in (f.text or "") for f in failures)

    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ok"] is False
    assert {f["check"] for f in data["findings"]} >= {"http_status"}
    assert all(f["reproduction"].startswith("curl ") for f in data["findings"])

    page = (tmp_path / "r.html").read_text()
    assert_self_contained(page)
    assert "http_status" in page and "curl -X POST" in page and demo_key() not in page


def test_configuration_errors_exit_2(tmp_path: Path) -> None:
    result = run("ftp://nowhere", "--key", "k")
    assert result.exit_code == 2 and "Error:" in result.output and "http" in result.output
    result = run("http://127.0.0.1:9/api/v2", "--key", "k", "--allow-orders")
    assert result.exit_code == 2 and "budget" in result.output
    result = run("http://127.0.0.1:9/api/v2", "--key", "k", "--budget", "lots")
    assert result.exit_code == 2 and "decimal" in result.output
