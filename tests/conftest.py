"""Shared fixtures for the fake panel's tests: a core panel on a manual clock and one
in-process server per session (reset per test). Plain helpers are in support.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from smmkit.mock_server.core.config import Config
from smmkit.mock_server.core.panel import Panel
from support import ApiClient, manual_panel

# pytester tests the kit's pytest plugin; pytest only accepts this in the top-level conftest.
pytest_plugins = ["pytester", "engines"]  # engines: SMMKIT_TEST_ENGINE=postgres (tests/engines.py)


@pytest.fixture
def panel() -> Iterator[Panel]:
    p = manual_panel()
    yield p
    p.store.close()


@pytest.fixture(scope="session")
def server() -> Iterator[Any]:
    from smmkit.mock_server.serving.server import start_background

    running = start_background(Config(port=0, db=":memory:", clock="manual", seed=1))
    yield running
    running.stop()
    running.panel.store.close()


@pytest.fixture
def api(server: Any) -> ApiClient:
    server.panel.reset()
    return ApiClient(server.api_url, server.panel)
