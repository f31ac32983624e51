"""The control plane: /_control/ — drive the fake's clock, accounts, orders, catalogue, faults,
journal and snapshots over JSON. Thin: each route parses, calls `admin`/`faults`/`journal`,
and answers JSON. Every route sits behind the admin token (`Authorization: Bearer ...`,
compared in constant time); without it anything under /_control/ answers 401.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from smmkit.mock_server.core import steering as admin
from smmkit.mock_server.core.clock import parse_duration
from smmkit.mock_server.core.config_files import ConfigError, check_account_body, check_service_body
from smmkit.mock_server.core.faults import KINDS, FaultBook, FaultError
from smmkit.mock_server.core.panel import Panel
from smmkit.mock_server.storage.journal import Journal

PREFIX = "/_control"


def _panel() -> Panel:
    return current_app.extensions["smmkit.panel"]


def _body() -> dict[str, Any]:
    if not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise admin.ControlError("the request body must be a JSON object")
    return data


def _clock_json(panel: Panel) -> dict[str, Any]:
    state = panel.clock_state()
    now = state.now(panel.wall())
    iso = datetime.fromtimestamp(now, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    return {"now": now, "iso": iso, "speed": state.speed, "frozen": state.frozen}


def _seconds(value: Any, what: str) -> float:
    try:
        return float(parse_duration(value))  # float ok: seconds of panel time, not money
    except (ValueError, TypeError):
        raise admin.ControlError(f"bad duration for {what}: {value!r} (e.g. \"90s\", \"2h\", "
                                 "\"3d\")") from None


def _panel_time(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)  # float ok: epoch seconds, not money
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise admin.ControlError(f"bad time {value!r}: epoch seconds or ISO 8601") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    raise admin.ControlError(f"bad time {value!r}: epoch seconds or ISO 8601")


def control_blueprint(token: str) -> Blueprint:
    bp = Blueprint("control", __name__, url_prefix=PREFIX)
    expected = f"Bearer {token}".encode()

    @bp.before_app_request
    def require_token() -> Any:
        if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
            given = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, expected):
                response = jsonify({"error": "Unauthorized: send Authorization: Bearer <token>"})
                response.status_code = 401
                response.headers["WWW-Authenticate"] = 'Bearer realm="smmkit control"'
                return response
        return None

    @bp.errorhandler(admin.ControlError)
    @bp.errorhandler(ConfigError)  # the accounts/catalogue files' rules (config_files)
    @bp.errorhandler(FaultError)
    def bad_request(exc: Exception) -> tuple[Response, int]:
        return jsonify({"error": str(exc)}), 404 if isinstance(exc, admin.NotFound) else 400

    # ------------------------------------------------------------ index and clock

    @bp.get("/")
    def index() -> Any:
        rules = sorted({f"{' '.join(sorted((r.methods or set()) - {'HEAD', 'OPTIONS'}))} {r.rule}"
                        for r in current_app.url_map.iter_rules()
                        if r.rule.startswith(PREFIX)})
        return jsonify({"routes": rules, "fault_kinds": KINDS})

    @bp.get("/clock")
    def clock() -> Any:
        return jsonify(_clock_json(_panel()))

    @bp.post("/clock/<verb>")
    def clock_change(verb: str) -> Any:
        panel, data = _panel(), _body()
        if verb == "advance":
            seconds = _seconds(data.get("by"), "by")
            panel.change_clock(lambda c, wall: c.advanced(wall, seconds))
        elif verb == "freeze":
            panel.change_clock(lambda c, wall: c.frozen_at(wall))
        elif verb == "resume":
            panel.change_clock(lambda c, wall: c.resumed(wall))
        elif verb == "set":
            target = _panel_time(data.get("time"))
            if target < panel.now():
                raise admin.ControlError("the clock cannot go backwards (orders already settled)")
            panel.change_clock(lambda c, wall: c.set_to(wall, target))
        elif verb == "speed":
            speed = data.get("speed")
            if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
                raise admin.ControlError(f"speed must be a positive number, got {speed!r}")
            panel.change_clock(lambda c, wall: c.with_speed(wall, speed))
        else:
            raise admin.NotFound(f"unknown clock operation {verb!r}: advance, freeze, resume, "
                                 "set or speed")
        return jsonify(_clock_json(panel))

    # ------------------------------------------------------------ accounts

    @bp.get("/accounts")
    def accounts() -> Any:
        return jsonify(admin.list_accounts(_panel()))

    @bp.post("/accounts")
    def account_create() -> Any:
        body = _body()
        check_account_body(body)
        return jsonify(admin.create_account(_panel(), body)), 201

    @bp.get("/accounts/<key>")
    def account_get(key: str) -> Any:
        return jsonify(admin.get_account(_panel(), key))

    @bp.patch("/accounts/<key>")
    def account_update(key: str) -> Any:
        body = _body()  # balance and currency under the accounts file's rules (ISO 4217)
        check_account_body({k: v for k, v in body.items() if k in ("balance", "currency")},
                           partial=True)
        return jsonify(admin.update_account(_panel(), key, body))

    @bp.delete("/accounts/<key>")
    def account_delete(key: str) -> Any:
        admin.delete_account(_panel(), key)
        return jsonify({"deleted": key})

    @bp.post("/accounts/<key>/reset")
    def account_reset(key: str) -> Any:
        return jsonify(admin.reset_account(_panel(), key))

    # ------------------------------------------------------------ orders and refills

    @bp.get("/orders")
    def orders() -> Any:
        args = request.args
        service = args.get("service")
        if service is not None and not service.isdigit():
            raise admin.ControlError(f"service must be a number, got {service!r}")
        limit = args.get("limit", "100")
        if not limit.isdigit():
            raise admin.ControlError(f"limit must be a number, got {limit!r}")
        return jsonify(admin.list_orders(_panel(), key=args.get("key"), status=args.get("status"),
                                         service=int(service) if service else None,
                                         limit=int(limit)))

    @bp.get("/orders/<int:order_id>")
    def order_get(order_id: int) -> Any:
        return jsonify(admin.get_order(_panel(), order_id))

    @bp.post("/orders/<int:order_id>/force")
    def order_force(order_id: int) -> Any:
        return jsonify(admin.force_order(_panel(), order_id, _body()))

    @bp.get("/refills")
    def refills() -> Any:
        return jsonify(admin.list_refills(_panel(), key=request.args.get("key")))

    @bp.post("/refills/<int:refill_id>/force")
    def refill_force(refill_id: int) -> Any:
        return jsonify(admin.force_refill(_panel(), refill_id, _body()))

    # ------------------------------------------------------------ catalogue

    @bp.get("/services")
    def services() -> Any:
        return jsonify(admin.list_services(_panel()))

    @bp.post("/services")
    def service_add() -> Any:
        body = _body()
        check_service_body(body)
        return jsonify(admin.upsert_service(_panel(), None, body)), 201

    @bp.patch("/services/<int:service_id>")
    def service_change(service_id: int) -> Any:
        body = _body()
        check_service_body(body, partial=True)
        return jsonify(admin.upsert_service(_panel(), service_id, body))

    @bp.delete("/services/<int:service_id>")
    def service_remove(service_id: int) -> Any:
        admin.remove_service(_panel(), service_id)
        return jsonify({"deleted": service_id})

    # ------------------------------------------------------------ faults and journal

    def _faults() -> FaultBook:
        return current_app.extensions["smmkit.faults"]

    @bp.get("/faults")
    def faults_list() -> Any:
        return jsonify([f.to_json() for f in _faults().list()])

    @bp.post("/faults")
    def faults_add() -> Any:
        return jsonify(_faults().add(_body()).to_json()), 201

    @bp.delete("/faults")
    def faults_clear() -> Any:
        return jsonify({"cleared": _faults().clear()})

    @bp.delete("/faults/<int:fault_id>")
    def fault_clear(fault_id: int) -> Any:
        if not _faults().clear(fault_id):
            raise admin.NotFound(f"unknown fault {fault_id}")
        return jsonify({"cleared": 1})

    def _journal() -> Journal:
        journal = current_app.extensions["smmkit.journal"]
        if journal is None:
            raise admin.ControlError("the journal is off (journal_limit 0)")
        return journal

    @bp.get("/journal")
    def journal() -> Any:
        args = request.args
        for name in ("status", "limit"):
            if name in args and not args[name].isdigit():
                raise admin.ControlError(f"{name} must be a number, got {args[name]!r}")
        return jsonify(_journal().entries(
            action=args.get("action"), key=args.get("key"), fault=args.get("fault"),
            status=int(args["status"]) if "status" in args else None,
            limit=int(args.get("limit", "100"))))

    @bp.delete("/journal")
    def journal_clear() -> Any:
        _journal().clear()
        return jsonify({"cleared": True})

    # ------------------------------------------------------------ reset and snapshots

    @bp.post("/reset")
    def reset() -> Any:
        data = _body()
        if data.get("key") is not None:
            return jsonify(admin.reset_account(_panel(), str(data["key"])))
        admin.reset(_panel())
        _faults().clear()
        journal = current_app.extensions["smmkit.journal"]
        if journal is not None:
            journal.clear()
        return jsonify({"reset": True})

    @bp.get("/snapshot")
    def snapshot() -> Any:
        return jsonify(admin.snapshot(_panel()))

    @bp.post("/restore")
    def restore() -> Any:
        admin.restore(_panel(), request.get_json(silent=True))
        return jsonify({"restored": True})

    return bp
