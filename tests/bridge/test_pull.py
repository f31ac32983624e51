"""`catalog pull`: a live panel's services become a catalogue the fake serves back unchanged."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from smmkit.contract_tests.bridge.pull import DEFAULT_TIMINGS, PullError, fetch_services, to_catalog
from smmkit.mock_server import start_background
from smmkit.mock_server.core.config import Config

from smmkit.cli import main

CATALOG = [
    {"service": 3, "name": "Likes", "type": "Default", "category": "Instagram", "rate": "0.90",
     "min": 50, "max": 10000, "refill": True, "cancel": True, "dripfeed": True},
    {"service": 11, "name": "Ten comments", "type": "Custom Comments Package",
     "category": "Instagram", "rate": "12.50000", "min": 1, "max": 1},
    {"service": 40, "name": "Followers", "type": "Subscriptions", "category": "TikTok",
     "rate": "1.2", "min": 10, "max": 500, "cancel": True},
]


def services(url: str, key: str) -> Any:
    return requests.post(url, data={"key": key, "action": "services"}, timeout=10).json()


def test_pull_round_trips_field_by_field(live: Any, key: str, tmp_path: Path) -> None:
    source = tmp_path / "source.json"
    source.write_text(json.dumps(CATALOG))
    panel = live(catalog=str(source))
    out = tmp_path / "pulled.json"
    result = CliRunner().invoke(main, ["catalog", "pull", panel.api_url, "--key", key,
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 3 services" in result.output
    assert key not in result.output and key not in out.read_text()
    pulled = json.loads(out.read_text())
    # The canonical fake's services never say `dripfeed`: the pull invents none.
    assert [(p["service"], p["rate"], p["dripfeed"]) for p in pulled] == [
        (3, "0.90", False), (11, "12.50000", False), (40, "1.2", False)]
    with start_background(Config(port=0, db=":memory:", catalog=str(out))) as replay:
        assert services(replay.api_url, key) == services(panel.api_url, key)


def test_pull_from_a_seed_dialect_panel_keeps_every_item(live: Any, key: str) -> None:
    panel = live(dialect="seed")
    answer = fetch_services(panel.api_url, key)
    pulled = to_catalog(answer)
    assert not pulled.skipped
    assert [p["service"] for p in pulled.services] == [a["service"] for a in answer]
    assert all(p["cancel"] is False for p in pulled.services)  # the seed sends no cancel


def test_numbers_strings_and_flags_are_read_as_panels_send_them() -> None:
    pulled = to_catalog([{"service": "7", "name": "x", "type": "custom comments",
                          "category": "c", "rate": Decimal("0.0450"), "min": "10",
                          "max": Decimal("100.0"), "refill": "1", "cancel": 0, "dripfeed": "false"}])
    assert pulled.services == [{
        "service": 7, "name": "x", "type": "Custom Comments", "category": "c",
        "rate": "0.0450", "min": 10, "max": 100, "refill": True, "cancel": False,
        "dripfeed": False, **DEFAULT_TIMINGS["Custom Comments"]}]


@pytest.mark.parametrize("item, reason", [
    ({"service": 1, "type": "Teleportation", "rate": "1", "min": 1, "max": 2},
     "unknown service type"),
    ({"service": 1, "type": "Default", "rate": "-1", "min": 1, "max": 2}, "rate"),
    ({"service": 1, "type": "Default", "rate": 0.5, "min": 1, "max": 2}, "rate"),
    ({"service": 1, "type": "Default", "rate": "1", "min": 5, "max": 2}, "inconsistent"),
    ({"service": "x", "type": "Default", "rate": "1", "min": 1, "max": 2}, "service"),
    ({"service": 1, "type": "Default", "rate": "1", "min": 1, "max": 2, "refill": "maybe"},
     "refill"),
    ({"service": 1, "name": "", "type": "Default", "category": "c", "rate": "1", "min": 1,
      "max": 2}, "empty name"),
    ({"service": 1, "name": "n", "type": "Default", "rate": "1", "min": 1, "max": 2},
     "empty category"),
    ("not an object", "not an object"),
])
def test_unusable_items_are_skipped_with_the_reason(item: Any, reason: str) -> None:
    good = {"service": 2, "name": "ok", "type": "Default", "category": "c", "rate": "1",
            "min": 1, "max": 2}
    pulled = to_catalog([item, good])
    assert [p["service"] for p in pulled.services] == [2]
    assert len(pulled.skipped) == 1 and reason in pulled.skipped[0]


def test_a_refused_key_writes_nothing(live: Any, tmp_path: Path) -> None:
    panel = live()
    out = tmp_path / "catalog.json"
    result = CliRunner().invoke(main, ["catalog", "pull", panel.api_url,
                                       "--key", "wrong-key-123", "-o", str(out)])
    assert result.exit_code == 1
    assert "Invalid API key" in result.output and "wrong-key-123" not in result.output
    assert not out.exists()
    panel.control.faults.next("services", "maintenance")
    with pytest.raises(PullError, match="HTTP 200 with a body that is not JSON"):
        fetch_services(panel.api_url, "k")
