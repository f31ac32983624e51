"""/_control/accounts: list, create, read, change, delete and reset API keys' accounts. Bodies
follow the accounts file's rules (`core.config_files`), so a file and the API agree."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.config_files import check_account_body
from smmkit.mock_server.web.control.common import body, panel

bp = Blueprint("accounts", __name__)


@bp.get("/accounts")
def accounts() -> Any:
    return jsonify(steering.list_accounts(panel()))


@bp.post("/accounts")
def account_create() -> Any:
    data = body()
    check_account_body(data)
    return jsonify(steering.create_account(panel(), data)), 201


@bp.get("/accounts/<key>")
def account_get(key: str) -> Any:
    return jsonify(steering.get_account(panel(), key))


@bp.patch("/accounts/<key>")
def account_update(key: str) -> Any:
    data = body()  # balance and currency under the accounts file's rules (ISO 4217)
    check_account_body({k: v for k, v in data.items() if k in ("balance", "currency")},
                       partial=True)
    return jsonify(steering.update_account(panel(), key, data))


@bp.delete("/accounts/<key>")
def account_delete(key: str) -> Any:
    steering.delete_account(panel(), key)
    return jsonify({"deleted": key})


@bp.post("/accounts/<key>/reset")
def account_reset(key: str) -> Any:
    return jsonify(steering.reset_account(panel(), key))
