"""What the control routes share: the app's panel, fault book and journal, and the request
body as a JSON object (or a clear 400)."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.faults import FaultBook
from smmkit.mock_server.core.panel import Panel
from smmkit.mock_server.storage.engines import AnyJournal

PREFIX = "/_control"


def panel() -> Panel:
    return current_app.extensions["smmkit.panel"]


def fault_book() -> FaultBook:
    return current_app.extensions["smmkit.faults"]


def journal_or_none() -> AnyJournal | None:
    """The request journal, or None when it is off (journal_limit 0)."""
    return current_app.extensions["smmkit.journal"]


def body() -> dict[str, Any]:
    """The request's JSON object; an empty body is an empty object."""
    if not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise steering.ControlError("the request body must be a JSON object")
    return data
