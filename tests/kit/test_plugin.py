"""The pytest plugin and the bundled suite, run in child pytest processes.

Child processes rather than `pytester`: `pytest_plugins = ["pytester"]` is refused in a
non-top-level conftest like tests/kit's, and a child process also proves the plugin loads the
way users load it (entry point, or `-p smmkit.contract_tests.plugin` before the entry point lands).
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kit_support import ROOT, fake_config


def plugin_args() -> list[str]:
    registered = any(ep.value == "smmkit.contract_tests.plugin"
                     for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if registered else ["-p", "smmkit.contract_tests.plugin"]


def pytest_run(tmp_path: Path, *args: str) -> tuple[int, dict[str, int], str]:
    """Run pytest in a child process; (exit code, outcome counts, output)."""
    report = tmp_path / "junit.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *plugin_args(), "-p", "no:cacheprovider",
         f"--junitxml={report}", "-q", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if report.exists():
        suite = ET.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, "0")) for k in counts}
    return proc.returncode, counts, proc.stdout + proc.stderr


def test_fixtures_give_a_reset_fake_per_test(tmp_path: Path) -> None:
    (tmp_path / "test_fixtures.py").write_text(textwrap.dedent("""
        from decimal import Decimal
        PORTS = set()

        def test_first_spends(smm_target, smm_panel, smm_server):
            assert not smm_target.live and smm_target.panel is smm_panel
            assert smm_target.url == smm_server.api_url
            PORTS.add(smm_server.url)
            answer = smm_target.send({"action": "add", "service": "16", "quantity": "100",
                                      "link": "https://t.me/plugin/a"}).json()
            assert "order" in answer
            assert Decimal(smm_panel.accounts.get(smm_target.key)["balance"]) < Decimal("1000")

        def test_then_the_panel_is_reset(smm_target, smm_panel, smm_server):
            PORTS.add(smm_server.url)
            assert len(PORTS) == 1
            assert Decimal(smm_panel.accounts.get(smm_target.key)["balance"]) == Decimal("1000")
            assert smm_target.send({"action": "status", "order": "23501"}).error_text
    """))
    code, counts, output = pytest_run(tmp_path, "test_fixtures.py")
    assert code == 0, output
    assert counts == {"tests": 2, "failures": 0, "errors": 0, "skipped": 0}


def test_bundled_suite_passes_against_the_fake(tmp_path: Path) -> None:
    code, counts, output = pytest_run(tmp_path, "--pyargs", "smmkit.contract_tests.suite")
    assert code == 0, output
    assert counts["tests"] >= 6 and counts["failures"] == counts["errors"] == 0
    assert counts["skipped"] == 0  # the fake's money may be spent


def test_bundled_suite_on_a_live_url_skips_spending_without_allow_orders(
        tmp_path: Path, fresh_panel: Any, serve: Any) -> None:
    from _defects import Defect
    from smmkit.mock_server.core.config import DEMO_KEY
    from smmkit.mock_server.web.app import create_app

    live = serve(Defect(create_app(fresh_panel, config=fake_config())))
    args = ["--pyargs", "smmkit.contract_tests.suite", "--smm-url", live.api_url, "--smm-key", DEMO_KEY]
    code, counts, output = pytest_run(tmp_path, *args)
    assert code == 0, output
    assert counts["skipped"] == 2 and counts["failures"] == 0
    assert fresh_panel.balance(DEMO_KEY)[0] == 1000  # nothing was spent

    code, counts, output = pytest_run(tmp_path, *args, "--smm-allow-orders",
                                      "--smm-budget", "0.01", "--smm-watch", "1")
    assert code == 0, output
    assert counts["skipped"] == 1  # the stateful model never runs live: it has no budget
    assert 0 < 1000 - fresh_panel.balance(DEMO_KEY)[0] <= Decimal("0.01")


def test_bundled_suite_fails_on_a_broken_live_panel(tmp_path: Path, fresh_panel: Any,
                                                   serve: Any) -> None:
    from _defects import FloatMoney
    from smmkit.mock_server.core.config import DEMO_KEY
    from smmkit.mock_server.web.app import create_app

    broken = serve(FloatMoney(create_app(fresh_panel, config=fake_config())))
    code, counts, output = pytest_run(tmp_path, "--pyargs", "smmkit.contract_tests.suite",
                                      "--smm-url", broken.api_url, "--smm-key", DEMO_KEY)
    assert code == 1 and counts["failures"] >= 1
    assert "money_format" in output


def test_url_without_key_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(smm_target):\n    pass\n")
    code, _, output = pytest_run(tmp_path, "test_x.py", "--smm-url", "http://127.0.0.1:9")
    assert code != 0 and "--smm-url and --smm-key go together" in output


def test_importing_the_plugin_is_cheap() -> None:
    code = ("import sys, smmkit.contract_tests.plugin\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "{'hypothesis', 'requests', 'faker', 'flask', 'rich'} "
            "or m.startswith(('smmkit.mock_server', 'smmkit.schemas'))]\n"
            "assert not heavy, heavy\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_client_conformance_and_control_through_smm_panel(tmp_path: Path) -> None:
    (tmp_path / "test_client.py").write_text(textwrap.dedent("""
        import pytest
        import requests

        def my_client_places(url, key):  # a client under test, with a bug in one call
            requests.post(url, data={"key": key, "action": "add", "service": "1",
                                     "link": "https://instagram.com/p/ok", "quantity": "100"})
            requests.post(url, data={"key": key, "action": "add", "service": "1",
                                     "link": "https://instagram.com/p/bad", "quantity": "1e3"})

        def test_conformance_is_checked(smm_server, smm_panel):
            my_client_places(smm_server.api_url, "smmkit-demo-key")
            bad = smm_panel.nonconforming_requests()
            assert [e["params"]["quantity"] for e in bad] == ["1e3"]
            assert bad[0]["request_violations"]
            with pytest.raises(AssertionError, match="1 request"):
                smm_panel.assert_client_conformed()

        def test_scenario_in_a_few_lines(smm_server, smm_panel):
            url, key = smm_server.api_url, "smmkit-demo-key"
            order = requests.post(url, data={"key": key, "action": "add", "service": "1",
                                  "link": "https://x.com/p", "quantity": "100"}).json()["order"]
            smm_panel.orders.force(order, outcome="partial", remains=40)
            smm_panel.clock.advance("6h")
            status = requests.post(url, data={"key": key, "action": "status",
                                              "order": order}).json()
            assert (status["status"], status["remains"]) == ("Partial", "40")
            assert smm_panel.accounts.get(key)["balance"] == "999.946"
            smm_panel.faults.next("add", "lost_after_commit")
            with pytest.raises(requests.ConnectionError):
                requests.post(url, data={"key": key, "action": "add", "service": "1",
                                         "link": "https://x.com/q", "quantity": "100"})
            smm_panel.assert_client_conformed()
    """))
    code, counts, output = pytest_run(tmp_path, "test_client.py")
    assert code == 0, output
    assert counts == {"tests": 2, "failures": 0, "errors": 0, "skipped": 0}


def test_plugin_with_pytester(pytester: pytest.Pytester) -> None:
    """The same plugin through pytester: options registered, fixtures usable, results counted."""
    pytester.makepyfile(test_user="""
        def test_fake_is_served(smm_target, smm_panel):
            assert not smm_target.live
            body = smm_target.send({"action": "balance"}).json()
            assert body == {"balance": "1000", "currency": "USD"}
            assert smm_panel.clock.now()["frozen"] is True
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *plugin_args())
    result.assert_outcomes(passed=1)
    help_text = pytester.runpytest_subprocess("--help", *plugin_args())
    help_text.stdout.fnmatch_lines(["*--smm-url*", "*--smm-allow-orders*", "*--smm-budget*"])
