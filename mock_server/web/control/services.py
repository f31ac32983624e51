"""/_control/services: the catalogue — list, add, change and remove services. Bodies follow the
catalogue file's rules (`core.config_files`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.config_files import check_service_body
from smmkit.mock_server.web.control.common import body, panel

bp = Blueprint("services", __name__)


@bp.get("/services")
def services() -> Any:
    return jsonify(steering.list_services(panel()))


@bp.post("/services")
def service_add() -> Any:
    data = body()
    check_service_body(data)
    return jsonify(steering.upsert_service(panel(), None, data)), 201


@bp.patch("/services/<service_id>")
def service_change(service_id: str) -> Any:
    data = body()
    check_service_body(data, partial=True)
    return jsonify(steering.upsert_service(panel(), steering.parse_id(service_id, "service"),
                                           data))


@bp.delete("/services/<service_id>")
def service_remove(service_id: str) -> Any:
    number = steering.parse_id(service_id, "service")
    steering.remove_service(panel(), number)
    return jsonify({"deleted": number})
