"""/_control/reset, /_control/snapshot and /_control/restore: start over (the whole panel or
one account), or save the whole state as JSON and put it back."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from smmkit.mock_server.core import steering
from smmkit.mock_server.web.control.common import body, fault_book, journal_or_none, panel

bp = Blueprint("snapshots", __name__)


@bp.post("/reset")
def reset() -> Any:
    data = body()
    if data.get("key") is not None:
        return jsonify(steering.reset_account(panel(), str(data["key"])))
    steering.reset(panel())
    fault_book().clear()
    journal = journal_or_none()
    if journal is not None:
        journal.clear()
    return jsonify({"reset": True})


@bp.get("/snapshot")
def snapshot() -> Any:
    return jsonify(steering.snapshot(panel()))


@bp.post("/restore")
def restore() -> Any:
    steering.restore(panel(), request.get_json(silent=True))
    return jsonify({"restored": True})
