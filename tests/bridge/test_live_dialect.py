"""`smmkit check URL --dialect FILE` on a live panel: judged against that dialect file only (its
declared quirks undone, as the proxy and the offline judge do), so a panel speaking its file
conforms and the same panel fails when held to perfectpanel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from smmkit.contract_tests.cli import check

TWEAKED = {
    "name": "tweaked", "extends": "perfectpanel",
    "money": {"as": "string", "decimals": 2, "trim_zeros": False},
    "errors": {"invalid_key": "Wrong API key, sorry", "incorrect_order": "No such order",
               "incorrect_service": "No such service"},
}


@pytest.fixture
def tweaked(tmp_path: Path) -> Path:
    path = tmp_path / "tweaked.json"
    path.write_text(json.dumps(TWEAKED))
    return path


def _check(url: str, key: str, dialect: str, *extra: str) -> Any:
    return CliRunner().invoke(check, [url, "--key", key, "--dialect", dialect, "--seed", "3",
                                      "--examples", "3", "--watch", "0", *extra],
                              catch_exceptions=False)


def test_a_panel_speaking_its_dialect_file_passes_against_that_file(live: Any, key: str,
                                                                    tweaked: Path) -> None:
    panel = live(dialect=str(tweaked))
    result = _check(panel.api_url, key, str(tweaked))
    assert result.exit_code == 0, result.output
    assert "(tweaked)" in result.output  # reported under the file's dialect
    held_to_canonical = _check(panel.api_url, key, "perfectpanel")
    assert held_to_canonical.exit_code == 1, held_to_canonical.output


def test_placing_orders_against_a_dialect_file(live: Any, key: str, tmp_path: Path) -> None:
    # Five decimals, zeros kept: with fewer, the balance and the shown charges are rounded
    # apart and the kit's exact money conservation cannot hold (a known limit of History).
    path = tmp_path / "padded.json"
    path.write_text(json.dumps({**TWEAKED, "name": "padded",
                                "money": {"as": "string", "decimals": 5, "trim_zeros": False}}))
    panel = live(dialect=str(path))
    result = _check(panel.api_url, key, str(path), "--allow-orders", "--budget", "1")
    assert result.exit_code == 0, result.output
    assert "(padded)" in result.output
    assert _check(panel.api_url, key, "perfectpanel", "--allow-orders", "--budget",
                  "1").exit_code == 1


def test_a_canonical_panel_breaks_the_file_it_is_held_to(live: Any, key: str,
                                                         tweaked: Path) -> None:
    result = _check(live().api_url, key, str(tweaked))
    assert result.exit_code == 1
    assert "is not one of the dialect's texts" in result.output


def test_an_unreadable_dialect_file_is_a_usage_error(live: Any, key: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = CliRunner().invoke(check, [live().api_url, "--key", key, "--dialect", str(bad)])
    assert result.exit_code == 2
    assert "is not JSON" in " ".join(result.output.split())  # wrapped to the terminal's width
