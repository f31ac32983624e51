"""The control plane: /_control/ — drive the fake's clock, accounts, orders, catalogue, faults,
journal and snapshots over JSON. Thin: each route parses, calls `core.steering` (or the fault
book and the journal), and answers JSON.

One module per resource group, each a small blueprint nested in the `control` blueprint built
here, which holds what every route shares once: the admin token (`Authorization: Bearer ...`,
compared in constant time; without it anything under /_control/ answers 401) and the JSON error
answer for a bad request (400) or an unknown thing (404).
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.config_files import ConfigError
from smmkit.mock_server.core.faults import KINDS, FaultError
from smmkit.mock_server.web.control import accounts, clock, faults, orders, services, snapshots
from smmkit.mock_server.web.control.common import PREFIX

__all__ = ["PREFIX", "control_blueprint"]

# Every resource group's routes, nested under /_control/ (their endpoints: `control.<group>.*`).
GROUPS = (clock.bp, accounts.bp, orders.bp, services.bp, faults.bp, snapshots.bp)


def control_blueprint(token: str) -> Blueprint:
    """The /_control/ blueprint for an app whose admin token is `token`."""
    bp = Blueprint("control", __name__, url_prefix=PREFIX)
    bp.before_app_request(_token_guard(f"Bearer {token}".encode()))
    bp.register_error_handler(steering.ControlError, _bad_request)
    bp.register_error_handler(ConfigError, _bad_request)  # the accounts/catalogue files' rules
    bp.register_error_handler(FaultError, _bad_request)
    bp.add_url_rule("/", view_func=index, methods=["GET"])
    for group in GROUPS:
        bp.register_blueprint(group)
    return bp


def _token_guard(expected: bytes) -> Any:
    """A before-request hook for the whole app (so an unknown /_control/ path is refused too,
    not answered 404 to a caller without the token)."""

    def require_token() -> Response | None:
        if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
            given = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, expected):
                response = jsonify({"error": "Unauthorized: send Authorization: Bearer <token>"})
                response.status_code = 401
                response.headers["WWW-Authenticate"] = 'Bearer realm="smmkit control"'
                return response
        return None

    return require_token


def _bad_request(exc: Exception) -> tuple[Response, int]:
    return jsonify({"error": str(exc)}), 404 if isinstance(exc, steering.NotFound) else 400


def index() -> Any:
    """Every control route and the fault kinds: what a caller can do, read from the app."""
    rules = sorted({f"{' '.join(sorted((r.methods or set()) - {'HEAD', 'OPTIONS'}))} {r.rule}"
                    for r in current_app.url_map.iter_rules()
                    if r.rule.startswith(PREFIX)})
    return jsonify({"routes": rules, "fault_kinds": KINDS})
