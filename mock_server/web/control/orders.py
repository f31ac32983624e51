"""/_control/orders and /_control/refills: list and read them, force an outcome.

Ids are taken as text and parsed by `steering.parse_id`: ASCII digits below 2^62, or a JSON 404
(Werkzeug's int converter lets '²' through to int() and hands 2^63 to SQLite)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from smmkit.mock_server.core import steering
from smmkit.mock_server.web.control.common import body, panel

bp = Blueprint("orders", __name__)


@bp.get("/orders")
def orders() -> Any:
    args = request.args
    service = args.get("service")
    service_id = steering.parse_count(service, "service", high=steering.MAX_ID - 1) \
        if service is not None else None
    limit = steering.parse_count(args.get("limit", "100"), "limit")
    return jsonify(steering.list_orders(panel(), key=args.get("key"), status=args.get("status"),
                                        service=service_id, limit=limit))


@bp.get("/orders/<order_id>")
def order_get(order_id: str) -> Any:
    return jsonify(steering.get_order(panel(), steering.parse_id(order_id, "order")))


@bp.post("/orders/<order_id>/force")
def order_force(order_id: str) -> Any:
    return jsonify(steering.force_order(panel(), steering.parse_id(order_id, "order"), body()))


@bp.get("/refills")
def refills() -> Any:
    return jsonify(steering.list_refills(panel(), key=request.args.get("key")))


@bp.post("/refills/<refill_id>/force")
def refill_force(refill_id: str) -> Any:
    return jsonify(steering.force_refill(panel(), steering.parse_id(refill_id, "refill"),
                                         body()))
