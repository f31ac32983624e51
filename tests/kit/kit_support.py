"""Helpers for the kit's own tests (fixtures live in conftest.py; a separate module because
tests/ and tests/kit/ both have a conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SECOND_KEY = "smmkit-second-key"  # the second account of mock_server/data/accounts.json


def fake_config(**changes: Any) -> Any:
    from smmkit.mock_server.core.config import Config

    values: dict[str, Any] = {"db": ":memory:", "seed": 1, "clock": "manual", "port": 0}
    values.update(changes)
    return Config(**values)
