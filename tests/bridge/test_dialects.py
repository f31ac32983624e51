"""Dialect files: the built-in dialects are files in the documented format, the fake answers
in any dialect file, and the kit judges a panel against the dialect it declares."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from smmkit.contract_tests.bridge.judge import Judge
from smmkit.contract_tests.targets import HttpTarget
from smmkit.mock_server.core.errors import TEXTS_BY_STYLE
from smmkit.mock_server.web.dialects import Dialect, encode
from smmkit.schemas import contract
from smmkit.schemas.dialects import BUILTIN, DialectError, builtin, load_dialect, schema

from smmkit.cli import main

QUIRKY = {
    "name": "quirky", "extends": "raw-keys",
    "money": {"as": "number", "decimals": 2, "trim_zeros": False},
    "rate": {"as": "number"},
    "currency": {"status": False, "balance": False},
    "services": {"cancel": False, "dripfeed": True},
    "statuses": {"In progress": "In Progress", "Canceled": "Cancelled", "Pending": "pending"},
    "types": {"services.service": "string", "services.min": "integer", "add.order": "string",
              "status.remains": "integer", "refill.refill": "integer"},
    "errors": {"invalid_key": "API key is wrong"},
}


@pytest.fixture
def quirky(tmp_path: Path) -> Path:
    path = tmp_path / "quirky.json"
    path.write_text(json.dumps(QUIRKY))
    return path


def test_the_built_in_dialects_are_valid_files_and_the_error_catalogue_is_theirs() -> None:
    Draft202012Validator.check_schema(schema())
    assert BUILTIN == contract.ERROR_STYLES
    for name in BUILTIN:
        spec = builtin(name)  # validated against dialect.schema.json, `extends` resolved
        # the catalogue is derived from these files, by a loader that skips jsonschema: both
        # resolutions of `extends` agree, and the fake answers with these texts
        assert dict(spec.errors) == contract.error_texts(name) == TEXTS_BY_STYLE[name]
        assert set(spec.errors) == set(contract.ERROR_CODES)
    assert builtin("seed").schema_dialect == "seed"
    assert builtin("raw-keys").schema_dialect == "perfectpanel"


def run_script(url: str, key: str) -> list[Any]:
    target = HttpTarget(url, key)
    exchanges = [target.send({"action": "services"}), target.send({"action": "balance"}),
                 target.send({"action": "add", "service": "1", "quantity": "55",
                              "link": "https://instagram.com/q"})]
    order = exchanges[-1].json()["order"]
    exchanges += [target.send({"action": "status", "order": order}),
                  target.send({"action": "status", "orders": f"{order},99"}),
                  target.send({"action": "balance", "key": "not-a-key"}),
                  target.send({"action": "add", "service": "1", "quantity": "5",
                               "link": "https://instagram.com/r"}),
                  target.send({"action": "cancel", "orders": str(order)}),
                  target.send({"action": "refill_status", "refills": "1"}),
                  target.send({"action": "balance"})]
    return exchanges


def test_the_fake_answers_in_a_dialect_file(live: Any, key: str, quirky: Path) -> None:
    panel = live(dialect=str(quirky))
    ex = run_script(panel.api_url, key)
    first = ex[0].json()[0]
    assert b'"rate":0.90,' in ex[0].body  # a number with the configured digits, no float
    assert (first["service"], first["min"], first["max"], first["dripfeed"]) == ("1", 50,
                                                                                  "10000", True)
    assert "cancel" not in first
    assert ex[1].body == b'{"balance":1000.00}'
    assert isinstance(ex[2].json()["order"], str)
    assert ex[3].body == b'{"charge":0.05,"start_count":"0","status":"pending","remains":55}'
    assert ex[5].json() == {"error": "API key is wrong"}
    assert ex[6].json() == {"error": "neworder.error.min_quantity"}  # from raw-keys
    assert ex[9].body == b'{"balance":999.95}'


def test_the_kit_judges_a_panel_against_its_dialect(live: Any, key: str, quirky: Path) -> None:
    exchanges = run_script(live(dialect=str(quirky)).api_url, key)
    as_declared = [Judge(str(quirky)).judge(e) for e in exchanges]
    assert [v.verdict for v in as_declared] == ["conforms"] * len(exchanges)
    assert {v.dialect for v in as_declared} == {"quirky"}
    canonical = Judge("perfectpanel")
    assert [v.verdict for v in map(canonical.judge, exchanges)].count("violation") >= 4


def test_a_panel_that_breaks_its_declared_dialect_is_caught(live: Any, key: str,
                                                            quirky: Path) -> None:
    exchanges = run_script(live().api_url, key)  # a canonical panel, judged as quirky
    judge = Judge(str(quirky))
    messages = [f["message"] for e in exchanges for f in judge.judge(e).findings
                if f["check"] == "dialect"]
    assert "services.service is a JSON integer; the dialect declares string" in messages
    assert "balance.balance is a JSON string; the dialect declares number" in messages
    assert "error text 'Invalid API key' is not one of the dialect's texts" in messages


@pytest.mark.parametrize("content, problem", [
    ("{nope", "is not JSON"),
    (json.dumps({"name": "x", "colour": "red"}), "Additional properties"),
    (json.dumps({"name": "x", "errors": {"no_such_code": "t"}}), "no_such_code"),
    (json.dumps({"name": "x", "money": {"decimals": 12}}), "12 is greater than"),
    (json.dumps({"name": "x", "extends": "mars"}), "'mars' is not one of"),
    (json.dumps({"name": "x", "types": {"add.order": "float"}}), "'float' is not one of"),
    (json.dumps({"description": "no name"}), "'name' is a required property"),
])
def test_a_bad_dialect_file_is_refused_with_the_reason(tmp_path: Path, content: str,
                                                       problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DialectError, match=problem.replace("(", r"\(")):
        load_dialect(str(path))
    with pytest.raises(ValueError, match="not"):
        Dialect(str(path))


def test_serve_refuses_a_bad_dialect_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--dialect", str(tmp_path / "missing.json")])
    assert result.exit_code == 2
    assert "neither one of perfectpanel, seed, raw-keys nor a file" in result.output


def test_money_numbers_are_written_with_their_digits_only_where_declared() -> None:
    dialect = Dialect(load_dialect(builtin("perfectpanel")))
    assert encode(dialect.balance(Decimal("2.50"), "USD")) == \
        b'{"balance":"2.5","currency":"USD"}'
    assert encode({"name": "\x00n:12"}) == b'{"name":"\\u0000n:12"}'  # a string stays one


def test_proxy_and_offline_check_judge_against_a_dialect_file(live: Any, key: str,
                                                              quirky: Path,
                                                              tmp_path: Path) -> None:
    from smmkit.contract_tests.bridge.proxy import ProxyConfig, start_proxy

    panel = live(dialect=str(quirky))
    record = tmp_path / "quirky.jsonl"
    with start_proxy(ProxyConfig(upstream=panel.api_url, dialect=str(quirky),
                                 record=str(record), allow_orders=True,
                                 budget=Decimal("1"))) as proxy:
        run_script(proxy.api_url, key)
        verdicts = [(e.verdict.verdict, e.verdict.dialect) for e in proxy.proxy.journal]
    assert verdicts == [("conforms", "quirky")] * 10
    as_declared = CliRunner().invoke(main, ["check", "--from-recording", str(record),
                                            "--dialect", str(quirky)])
    assert as_declared.exit_code == 0, as_declared.output
    canonical = CliRunner().invoke(main, ["check", "--from-recording", str(record)])
    assert canonical.exit_code == 1
    live_check = CliRunner().invoke(main, ["check", panel.api_url, "--key", key,
                                           "--dialect", str(quirky)])
    assert live_check.exit_code == 0, live_check.output  # judged live against the file too
    assert "(quirky)" in live_check.output
