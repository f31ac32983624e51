"""The pytest plugin and the bundled suite, run as users run them.

Two child pytest processes prove the plugin loads the way users load it (entry point, or
`-p smmkit.contract_tests.plugin` before the entry point lands): one session holds the two user
files (fixtures, client conformance), the other runs the bundled suite against the fake. The
runs whose point is an outcome, not the loading (a live URL, a broken panel, a usage error, the
options in --help), run in this process through pytester — the same plugin, the same
assertions, without a Python start-up each (several seconds of CPU apiece on this machine).
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

# Plugins of this development environment that the runs here do not use (Faker's `faker`
# fixture, Schemathesis' and anyio's test collection); left out of each child's start-up.
UNUSED_PLUGINS = ("-p", "no:faker", "-p", "no:schemathesis", "-p", "no:anyio")


def plugin_args() -> list[str]:
    registered = any(ep.value == "smmkit.contract_tests.plugin"
                     for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if registered else ["-p", "smmkit.contract_tests.plugin"]


def outcome_counts(report: Path, file: str | None = None) -> dict[str, int]:
    """tests/failures/errors/skipped from a JUnit report: the session's, or one file's."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if not report.exists():
        return counts
    root = ET.parse(report).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    if file is None:
        return {k: int(suite.get(k, "0")) for k in counts}
    for case in suite.iter("testcase"):
        if case.get("classname", "").split(".")[0] == file.removesuffix(".py"):
            counts["tests"] += 1
            for outcome, tag in (("failures", "failure"), ("errors", "error"),
                                 ("skipped", "skipped")):
                counts[outcome] += case.find(tag) is not None
    return counts


def pytest_run(tmp_path: Path, *args: str) -> tuple[int, dict[str, int], str]:
    """Run pytest in a child process; (exit code, outcome counts, output)."""
    report = tmp_path / "junit.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *plugin_args(), *UNUSED_PLUGINS, "-p",
         "no:cacheprovider", f"--junitxml={report}", "-q", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, outcome_counts(report), proc.stdout + proc.stderr


def pytest_inline(pytester: pytest.Pytester, *args: str) -> tuple[int, dict[str, int], str]:
    """`pytest_run` in this process (pytester restores sys.modules after the run)."""
    report = pytester.path / "junit.xml"
    result = pytester.runpytest_inprocess(*plugin_args(), "-p", "no:cacheprovider",
                                          f"--junitxml={report}", "-q", *args)
    return int(result.ret), outcome_counts(report), result.stdout.str() + result.stderr.str()


USER_FILES = {
    "test_fixtures.py": """
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
    """,
    "test_client.py": """
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
    """,
}


@pytest.fixture(scope="module")
def user_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    """Both user files in one child session, as a user's project runs them: (exit code, JUnit
    report, output). Each test below reads its own file's outcomes from the report."""
    where = tmp_path_factory.mktemp("user-project")
    for name, text in USER_FILES.items():
        (where / name).write_text(textwrap.dedent(text))
    code, _, output = pytest_run(where, *USER_FILES)
    return code, where / "junit.xml", output


def test_fixtures_give_a_reset_fake_per_test(user_session: tuple[int, Path, str]) -> None:
    code, report, output = user_session
    assert outcome_counts(report, "test_fixtures.py") == {"tests": 2, "failures": 0,
                                                          "errors": 0, "skipped": 0}, output
    assert code == 0, output


def test_bundled_suite_passes_against_the_fake(tmp_path: Path) -> None:
    code, counts, output = pytest_run(tmp_path, "--pyargs", "smmkit.contract_tests.suite")
    assert code == 0, output
    assert counts["tests"] >= 6 and counts["failures"] == counts["errors"] == 0
    assert counts["skipped"] == 0  # the fake's money may be spent


def test_bundled_suite_on_a_live_url_skips_spending_without_allow_orders(
        pytester: pytest.Pytester, fresh_panel: Any, serve: Any) -> None:
    from _defects import Defect
    from smmkit.mock_server.core.config import DEMO_KEY
    from smmkit.mock_server.web.app import create_app

    live = serve(Defect(create_app(fresh_panel, config=fake_config())))
    args = ["--pyargs", "smmkit.contract_tests.suite", "--smm-url", live.api_url, "--smm-key", DEMO_KEY]
    code, counts, output = pytest_inline(pytester, *args)
    assert code == 0, output
    assert counts["skipped"] == 2 and counts["failures"] == 0
    assert fresh_panel.balance(DEMO_KEY)[0] == 1000  # nothing was spent

    code, counts, output = pytest_inline(pytester, *args, "--smm-allow-orders",
                                      "--smm-budget", "0.01", "--smm-watch", "1")
    assert code == 0, output
    assert counts["skipped"] == 1  # the stateful model never runs live: it has no budget
    assert 0 < 1000 - fresh_panel.balance(DEMO_KEY)[0] <= Decimal("0.01")


def test_bundled_suite_fails_on_a_broken_live_panel(pytester: pytest.Pytester,
                                                   fresh_panel: Any, serve: Any) -> None:
    from _defects import FloatMoney
    from smmkit.mock_server.core.config import DEMO_KEY
    from smmkit.mock_server.web.app import create_app

    broken = serve(FloatMoney(create_app(fresh_panel, config=fake_config())))
    code, counts, output = pytest_inline(pytester, "--pyargs", "smmkit.contract_tests.suite",
                                         "--smm-url", broken.api_url, "--smm-key", DEMO_KEY)
    assert code == 1 and counts["failures"] >= 1
    assert "money_format" in output


def test_url_without_key_is_a_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "test_x.py").write_text("def test_x(smm_target):\n    pass\n")
    code, _, output = pytest_inline(pytester, "test_x.py", "--smm-url", "http://127.0.0.1:9")
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


def test_client_conformance_and_control_through_smm_panel(
        user_session: tuple[int, Path, str]) -> None:
    code, report, output = user_session
    assert outcome_counts(report, "test_client.py") == {"tests": 2, "failures": 0,
                                                        "errors": 0, "skipped": 0}, output
    assert code == 0, output


def test_plugin_with_pytester(pytester: pytest.Pytester) -> None:
    """The same plugin through pytester: options registered, fixtures usable, results counted."""
    pytester.makepyfile(test_user="""
        def test_fake_is_served(smm_target, smm_panel):
            assert not smm_target.live
            body = smm_target.send({"action": "balance"}).json()
            assert body == {"balance": "1000", "currency": "USD"}
            assert smm_panel.clock.now()["frozen"] is True
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *plugin_args())
    result.assert_outcomes(passed=1)
    help_text = pytester.runpytest_inprocess("--help", *plugin_args())
    help_text.stdout.fnmatch_lines(["*--smm-url*", "*--smm-allow-orders*", "*--smm-budget*"])
