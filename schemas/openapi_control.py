"""The control API (/_control/) of smmkit's fake panel, as OpenAPI 3.1 paths.

Every operation needs the admin token (`Authorization: Bearer TOKEN`, the `adminToken` security
scheme); without it the answer is 401. Account and service bodies are the published
configuration schemas (`config/accounts.json`, `config/catalog.json`), the same rules the
`--accounts` / `--catalog` files follow.
"""

from __future__ import annotations

from typing import Any

from smmkit.schemas import contract

SECURITY_SCHEMES = {"adminToken": {
    "type": "http", "scheme": "bearer",
    "description": "The admin token `smmkit serve` prints (choose it with --admin-token or "
                   "SMMKIT_ADMIN_TOKEN).",
}}

_OBJECT = {"type": "object"}
_LIST = {"type": "array", "items": {"type": "object"}}
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
FAULT_KINDS = ["latency", "http_5xx", "maintenance", "html_content_type", "error_4xx",
               "rate_limit", "drop", "lost_after_commit", "truncated_json", "malformed_json"]


def _path_param(name: str, kind: str = "integer") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _query(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": kind}}


def _body(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": True, "content": {"application/json": media}}


def _op(summary: str, op_id: str, answer: dict[str, Any] = _OBJECT, *, status: str = "200",
        body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None,
        missing: bool = False) -> dict[str, Any]:
    json_of = {"application/json": {"schema": {"$ref": "#/components/schemas/ControlError"}}}
    responses: dict[str, Any] = {
        status: {"description": "Done.", "content": {"application/json": {"schema": answer}}},
        "400": {"description": "The request cannot be carried out; `error` says why.",
                "content": json_of},
        "401": {"description": "No or wrong admin token.", "content": json_of},
    }
    if missing:
        responses["404"] = {"description": "No such thing.", "content": json_of}
    operation: dict[str, Any] = {"summary": summary, "operationId": op_id, "tags": ["control"],
                                 "security": [{"adminToken": []}], "responses": responses}
    if body is not None:
        operation["requestBody"] = body
    if params:
        operation["parameters"] = params
    return operation


def control_paths(account: dict[str, str], service: dict[str, str]) -> dict[str, Any]:
    """The /_control/ paths; `account` and `service` are `$ref`s to the config schemas."""
    key, order, refill = (_path_param("key", "string"), _path_param("order_id"),
                          _path_param("refill_id"))
    service_id, fault_id = _path_param("service_id"), _path_param("fault_id")
    account_patch = {"type": "object", "additionalProperties": False, "properties": {
        "balance": {"type": ["string", "integer"], "description": "Set the balance."},
        "top_up": {"type": ["string", "integer"], "description": "Add (or, negative, take)."},
        "currency": {"type": "string"}, "enabled": {"type": "boolean"}}}
    force = {"type": "object", "properties": {
        "status": {"type": "string"}, "remains": {"type": "integer"},
        "start_count": {"type": "integer"}, "force": {"type": "boolean"},
        "outcome": {"enum": list(contract.OUTCOMES)}}}
    fault = {"type": "object", "required": ["kind"], "properties": {
        "kind": {"enum": FAULT_KINDS}, "action": {"type": "string", "default": "*"},
        "key": {"type": "string"}, "count": {"type": "integer", "minimum": 1},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
        "ms": {"type": "integer"}, "min_ms": {"type": "integer"}, "max_ms": {"type": "integer"},
        "status": {"type": "integer"}, "retry_after": {"type": "integer"},
        "error": {"type": "string"}}}
    clock_body = {"type": "object", "properties": {
        "by": {"type": ["string", "number"], "description": "advance: \"90s\", \"2h\", \"3d\""},
        "time": {"type": ["string", "number"], "description": "set: ISO 8601 or epoch seconds"},
        "speed": {"type": "number", "exclusiveMinimum": 0, "description": "speed: factor"}}}
    return {
        "/_control/": {"get": _op("Routes and fault kinds", "controlIndex")},
        "/_control/clock": {"get": _op("Read the panel clock", "clockShow")},
        "/_control/clock/{verb}": {"post": _op(
            "advance, freeze, resume, set or speed the panel clock", "clockChange",
            body=_body(clock_body, {"by": "2h"}),
            params=[{"name": "verb", "in": "path", "required": True,
                     "schema": {"enum": ["advance", "freeze", "resume", "set", "speed"]}}])},
        "/_control/accounts": {
            "get": _op("List accounts", "accountsList", _LIST),
            "post": _op("Create an account", "accountCreate", status="201",
                        body=_body(account, {"key": "k1", "balance": "50", "currency": "EUR"})),
        },
        "/_control/accounts/{key}": {
            "get": _op("One account", "accountShow", params=[key], missing=True),
            "patch": _op("Change balance, top up, currency or enabled (all or none)",
                         "accountChange", params=[key], missing=True,
                         body=_body(account_patch, {"top_up": "10"})),
            "delete": _op("Delete an account and its history", "accountDelete", params=[key],
                          missing=True),
        },
        "/_control/accounts/{key}/reset": {"post": _op(
            "Forget one account's orders; its balance back to the opening one", "accountReset",
            params=[key], missing=True)},
        "/_control/orders": {"get": _op("List orders", "ordersList", _LIST, params=[
            _query("key"), _query("status"), _query("service", "integer"),
            _query("limit", "integer")])},
        "/_control/orders/{order_id}": {"get": _op("One order", "orderShow", params=[order],
                                                   missing=True)},
        "/_control/orders/{order_id}/force": {"post": _op(
            "Move an order (legal moves only unless force)", "orderForce", params=[order],
            missing=True, body=_body(force, {"status": "Partial", "remains": 40}))},
        "/_control/refills": {"get": _op("List refills", "refillsList", _LIST,
                                         params=[_query("key")])},
        "/_control/refills/{refill_id}/force": {"post": _op(
            "Move a refill", "refillForce", params=[refill], missing=True,
            body=_body(force, {"status": "Completed"}))},
        "/_control/services": {
            "get": _op("The catalogue", "servicesList", _LIST),
            "post": _op("Add a service", "serviceAdd", status="201", body=_body(service)),
        },
        "/_control/services/{service_id}": {
            "patch": _op("Change fields of a service (orders keep their price)",
                         "serviceChange", params=[service_id], missing=True,
                         body=_body(_OBJECT, {"rate": "1.20", "enabled": False})),
            "delete": _op("Remove a service", "serviceRemove", params=[service_id],
                          missing=True),
        },
        "/_control/faults": {
            "get": _op("Armed faults", "faultsList", _LIST),
            "post": _op("Arm a fault", "faultAdd", status="201", body=_body(
                fault, {"kind": "lost_after_commit", "action": "add", "count": 1})),
            "delete": _op("Disarm every fault", "faultsClear"),
        },
        "/_control/faults/{fault_id}": {"delete": _op("Disarm one fault", "faultClear",
                                                      params=[fault_id], missing=True)},
        "/_control/journal": {
            "get": _op("The newest API requests and answers", "journal", _LIST, params=[
                _query("action"), _query("key"), _query("status", "integer"),
                _query("fault"), _query("limit", "integer")]),
            "delete": _op("Empty the journal", "journalClear"),
        },
        "/_control/reset": {"post": _op(
            "Everything back to the start (or one account with {\"key\": ...})", "reset")},
        "/_control/snapshot": {"get": _op("The whole state", "snapshot")},
        "/_control/restore": {"post": _op("Replace the whole state with a snapshot", "restore",
                                          body=_body(_OBJECT))},
        "/_control/openapi.json": {"get": _op("This description", "controlOpenapi")},
    }


CONTROL_ERROR = _ERROR
