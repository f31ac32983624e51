"""Fixtures for the bridge's tests: a second fake on loopback stands in for "the live panel",
started in another dialect, with --robust, or with faults armed through its control API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from smmkit.mock_server import ControlClient, start_background
from smmkit.mock_server.core.config import DEMO_KEY, Config

LIVE_TOKEN = "bridge-test-admin-token"


@pytest.fixture
def live() -> Iterator[Callable[..., Any]]:
    """`live(**config)` starts a fake as the live panel; each is stopped after the test."""
    started: list[Any] = []

    def start(**options: Any) -> Any:
        options = {"port": 0, "db": ":memory:", "clock": "manual", "seed": 7,
                   "admin_token": LIVE_TOKEN, **options}
        running = start_background(Config(**options))
        running.control = ControlClient(running.url, LIVE_TOKEN)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()  # the store and its journal are collected with the panel


@pytest.fixture
def key() -> str:
    return DEMO_KEY
