"""/_control/faults and /_control/journal: the fault rules the fake plays on /api/v2, and the
journal of requests it answered (listed with filters, or cleared)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from smmkit.mock_server.core import steering
from smmkit.mock_server.storage.engines import AnyJournal
from smmkit.mock_server.web.control.common import body, fault_book, journal_or_none

bp = Blueprint("faults", __name__)


@bp.get("/faults")
def faults_list() -> Any:
    return jsonify([f.to_json() for f in fault_book().list()])


@bp.post("/faults")
def faults_add() -> Any:
    return jsonify(fault_book().add(body()).to_json()), 201


@bp.delete("/faults")
def faults_clear() -> Any:
    return jsonify({"cleared": fault_book().clear()})


@bp.delete("/faults/<fault_id>")
def fault_clear(fault_id: str) -> Any:
    if not fault_book().clear(steering.parse_id(fault_id, "fault")):
        raise steering.NotFound(f"unknown fault {fault_id}")
    return jsonify({"cleared": 1})


@bp.get("/journal")
def journal() -> Any:
    args = request.args
    status = steering.parse_count(args["status"], "status", high=999) \
        if "status" in args else None
    return jsonify(_journal().entries(
        action=args.get("action"), key=args.get("key"), fault=args.get("fault"),
        status=status, limit=steering.parse_count(args.get("limit", "100"), "limit")))


@bp.delete("/journal")
def journal_clear() -> Any:
    _journal().clear()
    return jsonify({"cleared": True})


def _journal() -> AnyJournal:
    found = journal_or_none()
    if found is None:
        raise steering.ControlError("the journal is off (journal_limit 0)")
    return found
