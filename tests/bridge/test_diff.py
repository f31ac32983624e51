"""`smmkit diff`: a second fake with injected quirks stands in for the live panel; the diff
finds each quirk, and the dialect file it writes brings the fidelity to 100%."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from smmkit.contract_tests.bridge.diff import run_diff
from smmkit.contract_tests.bridge.infer import infer_dialect
from smmkit.contract_tests.targets import HttpTarget
from smmkit.schemas.dialects import load_dialect

from smmkit.cli import main

QUIRKS = {
    "name": "quirky", "extends": "raw-keys",
    "money": {"as": "number", "decimals": 2, "trim_zeros": False},
    "rate": {"as": "number"},
    "currency": {"status": False, "balance": False},
    "services": {"cancel": False, "dripfeed": True},
    "statuses": {"Pending": "pending"},
    "types": {"services.service": "string", "services.min": "integer", "add.order": "string",
              "status.remains": "integer"},
    "errors": {"invalid_key": "API key is wrong", "incorrect_request": "Bad request"},
}
# What the read-only script can see of each quirk, as (kind, where) of a difference.
READ_ONLY_QUIRKS = {
    ("text", "$.error"),  # invalid_key, incorrect_request, incorrect_order, refill_not_found
    ("text", "$.<id>.error"), ("text", "$[*].status.error"),
    ("type", "$.balance"), ("shape", "$.currency"),  # money as number; no currency
    ("type", "$[*].rate"), ("type", "$[*].service"), ("type", "$[*].min"),
    ("shape", "$[*].cancel"), ("shape", "$[*].dripfeed"),
}
SPENDING_QUIRKS = {("type", "$.order"), ("spelling", "$.status"), ("type", "$.remains"),
                   ("type", "$.charge"), ("shape", "$.<id>.currency")}


def kinds(fidelity: Any) -> set[tuple[str, str]]:
    return {(d.kind, d.where) for p in fidelity.pairs for d in p.differences}


@pytest.fixture
def quirky_live(live: Any, tmp_path: Path) -> Any:
    path = tmp_path / "injected.json"
    path.write_text(json.dumps(QUIRKS))
    return live(dialect=str(path))


def test_diff_finds_each_injected_quirk_and_its_dialect_makes_the_fake_identical(
        quirky_live: Any, key: str, tmp_path: Path) -> None:
    target = HttpTarget(quirky_live.api_url, key)
    before = run_diff(target, key=key)
    assert kinds(before) >= READ_ONLY_QUIRKS
    assert before.score < 0.5
    errors = {str(d) for p in before.pairs for d in p.differences if d.kind == "text"}
    assert 'text at $.error: live "API key is wrong", fake "Invalid API key"' in errors
    written = tmp_path / "written.json"
    result = CliRunner().invoke(main, ["diff", quirky_live.api_url, "--key", key,
                                       "--write-dialect", str(written)])
    assert result.exit_code == 0, result.output
    assert "fidelity: " in result.output and key not in written.read_text()
    table = before.by_action()  # the printed table's rows: per action, identical or how not
    assert {"balance", "services", "status"} <= set(table)
    assert table["balance"]["identical"] < table["balance"]["exchanges"]
    assert any("$.balance" in how for how in table["balance"]["how"])
    assert any("$[*].cancel" in how for how in table["services"]["how"])
    for action, row in table.items():
        assert row["how"] or row["identical"] == row["exchanges"]
        assert any(line.lstrip("│┃ ").startswith(action) for line in result.output.splitlines())
    spec = load_dialect(str(written))
    assert spec.errors["invalid_key"] == "API key is wrong"
    assert spec.errors["incorrect_order"] == "error.incorrect_order_id"
    assert (spec.money["as"], spec.money["decimals"], spec.rate["as"]) == ("number", 2, "number")
    after = run_diff(target, key=key, dialect=str(written))
    assert after.score == 1.0, [str(d) for p in after.pairs for d in p.differences]
    result = CliRunner().invoke(main, ["diff", quirky_live.api_url, "--key", key,
                                       "--dialect", str(written)])
    assert "fidelity: 100.0%" in result.output
    assert all(row["identical"] == row["exchanges"] and not row["how"]
               for row in after.by_action().values())


def test_the_spending_script_sees_order_quirks_within_the_budget(quirky_live: Any,
                                                                key: str) -> None:
    target = HttpTarget(quirky_live.api_url, key)
    opening = Decimal(str(target.send({"action": "balance"}).json()["balance"]))
    before = run_diff(target, key=key, allow_orders=True, budget=Decimal("0.5"))
    assert kinds(before) >= READ_ONLY_QUIRKS | SPENDING_QUIRKS
    doc = infer_dialect(before.pairs, "learned")
    assert doc["statuses"] == {"Pending": "pending"}
    assert doc["types"]["add.order"] == "string" and doc["currency"]["status"] is False
    after = run_diff(target, key=key, allow_orders=True, budget=Decimal("0.5"),
                     dialect=load_dialect(doc))
    assert after.score == 1.0, [str(d) for p in after.pairs for d in p.differences]
    closing = Decimal(str(target.send({"action": "balance"}).json()["balance"]))
    assert opening - closing <= Decimal("1.0")  # two runs, each within its budget of 0.5


def test_a_seed_panel_is_learned_too(live: Any, key: str) -> None:
    target = HttpTarget(live(dialect="seed").api_url, key)
    before = run_diff(target, key=key)
    assert ("text", "$[*].status.error") in kinds(before)  # Incorrect refill ID
    assert ("shape", "$[*].cancel") in kinds(before)
    after = run_diff(target, key=key, dialect=load_dialect(infer_dialect(before.pairs)))
    assert after.score == 1.0, [str(d) for p in after.pairs for d in p.differences]


def test_a_canonical_panel_is_identical_to_the_fake(live: Any, key: str) -> None:
    assert run_diff(HttpTarget(live().api_url, key), key=key).score == 1.0


def test_diff_refuses_what_it_cannot_do(live: Any, tmp_path: Path) -> None:
    panel = live()
    result = CliRunner().invoke(main, ["diff", panel.api_url, "--key", "nobody-knows-me"])
    assert result.exit_code == 1
    assert "the live panel refused `balance`: 'Invalid API key'" in result.output
    assert "nobody-knows-me" not in result.output
    result = CliRunner().invoke(main, ["diff", panel.api_url, "--key", "k", "--allow-orders"])
    assert result.exit_code == 2 and "--allow-orders needs --budget" in result.output
    result = CliRunner().invoke(main, ["diff", panel.api_url, "--key", "k", "--dialect",
                                       str(tmp_path / "none.json")])
    assert result.exit_code == 1 and "neither one of" in result.output
