"""Fixtures for the kit's own tests: the real fake on a port, and broken fakes around it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kit_support import fake_config


@pytest.fixture(scope="session")
def fake_server() -> Iterator[Any]:
    """The real fake, as `start_background` serves it."""
    from smmkit.mock_server.serving.server import start_background

    running = start_background(fake_config())
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fake(fake_server: Any) -> Any:
    """The real fake, reset: demo accounts, catalogue, no orders."""
    fake_server.panel.reset()
    return fake_server


@pytest.fixture
def serve() -> Iterator[Any]:
    """`serve(app)` puts a WSGI app on a real ephemeral port; all are stopped afterwards."""
    from _defects import Served

    started: list[Served] = []

    def start(app: Any) -> Served:
        served = Served(app)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture
def fresh_panel() -> Any:
    """A new in-process Panel (manual clock) for broken fakes and WSGI targets."""
    from smmkit.mock_server.core.config import build_panel

    return build_panel(fake_config())
