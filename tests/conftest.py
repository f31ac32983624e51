"""Shared fixtures for the fake panel's tests: a core panel on a manual clock and one
in-process server per session (reset per test). Plain helpers are in support.py.

Hypothesis profiles, for the property tests that leave the number of examples to the profile
(tests that pin `max_examples` do so because each example is costly, e.g. an HTTP round trip):

    dev  (default)  300 examples: the everyday run, a few seconds for every property
    ci              2000 examples: the thorough run of .ci/run

Choose with `--hypothesis-profile ci` or `SMMKIT_HYPOTHESIS_PROFILE=ci`. Neither profile has a
deadline: the machine is shared, and timing is never what a test asserts. A failure prints the
blob that replays it (`@reproduce_failure`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import bytecode_cache  # noqa: F401 - first: compiled modules are cached from here on
import pytest
from hypothesis import settings
from smmkit.mock_server.core.config import Config
from smmkit.mock_server.core.panel import Panel
from suite_order import SLOWEST_FILES
from support import ApiClient, manual_panel

# pytester tests the kit's pytest plugin; pytest only accepts this in the top-level conftest.
pytest_plugins = ["pytester", "engines"]  # engines: SMMKIT_TEST_ENGINE=postgres (tests/engines.py)

settings.register_profile("dev", max_examples=300, deadline=None, print_blob=True)
settings.register_profile("ci", max_examples=2000, deadline=None, print_blob=True,
                          database=None)
# `--hypothesis-profile NAME` (Hypothesis' own option) is applied after this and wins.
settings.load_profile(os.environ.get("SMMKIT_HYPOTHESIS_PROFILE", "dev"))


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slowest files first (suite_order.py), the rest in collection order."""
    rank = {name: place for place, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable
