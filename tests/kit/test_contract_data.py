"""Contract data defined once, the check registry, and the kit's import graph."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kit_support import ROOT
from smmkit.contract_tests import registry
from smmkit.contract_tests.cli import check
from smmkit.schemas import contract

from smmkit import schemas


def test_the_catalogue_is_data_the_loader_serves_and_names_skip() -> None:
    doc = schemas.data("contract")
    assert not any(name.startswith("_data") for name in schemas.names())
    assert "errors" not in doc  # the texts live in the built-in dialect files, once
    assert doc["error_styles"] == list(contract.ERROR_STYLES) == ["perfectpanel", "seed",
                                                                  "raw-keys"]
    assert doc["dialects"] == list(contract.DIALECTS) == list(schemas.DIALECTS)
    assert contract.error_text("min_quantity", limit=50) == "Quantity less than minimal 50"
    assert contract.error_text("refill_not_found", "seed") == "Incorrect refill ID"
    assert contract.error_text("incorrect_order", "raw-keys") == "error.incorrect_order_id"
    with pytest.raises(schemas.SchemaError):
        schemas.data("../index")
    with pytest.raises(schemas.SchemaError):
        schemas.data("nothing")


def test_the_fake_answers_with_the_contract_texts() -> None:
    from smmkit.mock_server.core import errors

    for style in contract.ERROR_STYLES:
        assert errors.TEXTS_BY_STYLE[style] == contract.error_texts(style)
    assert errors.QuantityTooHigh(limit=9).text() == "Quantity more than maximum 9"


def test_statuses_and_redaction_are_one_definition() -> None:
    assert contract.FINAL_STATUSES == {"Completed", "Partial", "Canceled"}
    assert contract.reachable("Pending", "Completed")
    assert not contract.reachable("In progress", "Pending")
    assert contract.redact({"key": "s3cret", "action": "balance"}) == {
        "key": "***", "action": "balance"}
    assert len(contract.fingerprint("k")) == 10 and contract.fingerprint("") == ""
    assert contract.scrub("a s3cret b s3cret", ["s3cret"]) == "a *** b ***"


def _kit_imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "contract_tests").glob("*.py"):
        name = path.stem
        tree = ast.parse(path.read_text("utf-8"))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                       for n in block.body}  # annotations only: not an import at run time
        found = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    "smmkit.contract_tests"):
                parts = node.module.split(".")
                if len(parts) > 2:
                    found.add(parts[2])
                else:
                    found.update(alias.name for alias in node.names)
        graph[name] = found - {name, "__init__"}
    return graph


def test_the_kit_has_no_import_cycle_even_inside_functions() -> None:
    graph = _kit_imports()
    graph.pop("__init__", None)

    def visit(node: str, path: list[str]) -> None:
        assert node not in path, "import cycle: " + " -> ".join([*path, node])
        for nxt in graph.get(node, ()):
            visit(nxt, [*path, node])

    for module in graph:
        visit(module, [])


def test_every_finding_names_a_registered_check() -> None:
    source = "\n".join(p.read_text("utf-8") for p in (ROOT / "contract_tests").glob("*.py"))
    used = set(re.findall(r'finding\(\s*"([a-z_]+)"', source))
    assert used and used <= set(registry.CHECKS), used - set(registry.CHECKS)
    for row in registry.describe():
        assert row["default"] and row["strict"] and row["about"]


def test_selecting_checks() -> None:
    assert registry.select() == frozenset(registry.CHECKS)
    assert registry.select(["schema", "funds"], ["funds"]) == {"schema"}
    with pytest.raises(ValueError, match="known"):
        registry.select(["nope"])


def test_the_cli_keeps_hypothesis_out_of_the_working_directory(fake: Any, tmp_path: Path,
                                                               monkeypatch: Any) -> None:
    from smmkit.mock_server.core.config import DEMO_KEY

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(check, [fake.api_url, "--key", DEMO_KEY, "--examples", "3",
                                        "--json", "r.json"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / ".hypothesis").exists()
    assert json.loads(Path("r.json").read_text())["ok"] is True


def test_ctrl_c_leaves_partial_reports(fake: Any, tmp_path: Path) -> None:
    from smmkit.contract_tests import reports
    from smmkit.contract_tests.runner import CheckConfig, run_check
    from smmkit.contract_tests.targets import HttpTarget
    from smmkit.mock_server.core.config import DEMO_KEY

    class Interrupted(HttpTarget):
        def send(self, params: Any, **options: Any) -> Any:
            if self.requests_sent >= 8:
                raise KeyboardInterrupt
            return super().send(params, **options)

    report = run_check(CheckConfig(fake.api_url, DEMO_KEY, seed=1,
                                   target=Interrupted(fake.api_url, DEMO_KEY)))
    assert report.partial and report.exit_code == 3 and len(report.exchanges) == 8
    written = reports.write(report, json_path=tmp_path / "r.json", html_path=tmp_path / "r.html",
                            junit=tmp_path / "r.xml")
    assert len(written) == 3
    assert json.loads((tmp_path / "r.json").read_text())["partial"] is True
    assert "partial" in (tmp_path / "r.html").read_text()


def test_the_dialect_names_written_where_importing_the_contract_costs_too_much() -> None:
    """The root CLI and the pytest plugin load before anything else (the plugin in every pytest
    run), so they spell the schema dialects out rather than import the contract: pinned here."""
    import click
    from smmkit.contract_tests import plugin, runner

    import smmkit.cli

    [option] = [p for p in smmkit.cli.openapi.params if p.name == "dialect"]
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == contract.DIALECTS

    class Recorder:
        def __init__(self) -> None:
            self.options: dict[str, dict[str, Any]] = {}

        def getgroup(self, *_: Any) -> Recorder:
            return self

        def addoption(self, name: str, **kwargs: Any) -> None:
            self.options[name] = kwargs

    recorder = Recorder()
    plugin.pytest_addoption(recorder)  # type: ignore[arg-type]
    assert tuple(recorder.options["--smm-dialect"]["choices"]) == runner.DIALECT_CHOICES \
        == (*contract.DIALECTS, "auto")
