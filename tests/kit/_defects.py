"""Broken fakes: WSGI wrappers around the real fake, each seeding ONE defect into its answers.

Each defect names the check that must catch it. They are served on real ports by the tests
(werkzeug's server on a pool of threads, as `start_background` serves the fake), so the kit meets them exactly as it meets a live panel.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from smmkit.mock_server.serving.pooled import PooledWSGIServer


def _params(environ: dict[str, Any], body: bytes) -> dict[str, str]:
    params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    content_type = environ.get("CONTENT_TYPE", "")
    if "json" in content_type:
        try:
            params.update({k: str(v) for k, v in json.loads(body or b"{}").items()})
        except (ValueError, AttributeError):
            pass
    else:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


class Defect:
    """Pass-through wrapper; subclasses change `mutate` (and may keep state across calls)."""

    check = ""  # the check that must report this defect

    def __init__(self, app: Any) -> None:
        self.app = app
        self.forget()

    def forget(self) -> None:
        """Drop what was learnt from earlier answers (call it with the panel's reset)."""
        self.owners: dict[str, str] = {}  # order id -> key that placed it

    def call(self, environ: dict[str, Any], body: bytes) -> tuple[str, list, bytes]:
        environ = dict(environ, **{"wsgi.input": io.BytesIO(body),
                                   "CONTENT_LENGTH": str(len(body))})
        box: dict[str, Any] = {}

        def start(status: str, headers: list, *exc: Any) -> Callable[[bytes], None]:
            box["status"], box["headers"] = status, headers
            return lambda data: None

        out = b"".join(self.app(environ, start))
        return box["status"], list(box["headers"]), out

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        params = _params(environ, body)
        status, headers, out = self.call(environ, body)
        data = _json(out)
        if params.get("action") == "add" and isinstance(data, dict) and "order" in data:
            self.owners[str(data["order"])] = params.get("key", "")
        status, headers, out = self.mutate(params, status, headers, out, environ)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(out))))
        start_response(status, headers)
        return [out]

    def mutate(self, params: dict[str, str], status: str, headers: list, body: bytes,
               environ: dict[str, Any]) -> tuple[str, list, bytes]:
        data = _json(body)
        if data is not None:
            changed = self.change(params, data)
            if changed is not None:
                return status, headers, json.dumps(changed).encode()
        return status, headers, body

    def change(self, params: dict[str, str], data: Any) -> Any:
        return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _status_items(params: dict[str, str], data: Any) -> list[dict]:
    """The order-status objects of a status answer (single or multi)."""
    if params.get("action") != "status" or not isinstance(data, dict):
        return []
    if "status" in data:
        return [data]
    return [v for v in data.values() if isinstance(v, dict) and "status" in v]


class FloatMoney(Defect):
    check = "money_format"

    def change(self, params, data):
        if isinstance(data, dict) and "balance" in data:
            return {**data, "balance": float(data["balance"])}


class WrongErrorText(Defect):
    check = "error_catalogue"

    def change(self, params, data):
        if isinstance(data, dict) and data.get("error") == "Invalid API key":
            return {"error": "Invalid api key"}


class MultiStatusKeyedByPosition(Defect):
    check = "multi_ids"

    def change(self, params, data):
        if params.get("action") == "status" and "orders" in params and isinstance(data, dict) \
                and "error" not in data:
            return {str(i): v for i, v in enumerate(data.values())}


class ChargeMisreported(Defect):
    check = "charge"

    def change(self, params, data):
        items = _status_items(params, data)
        for item in items:
            item["charge"] = str(Decimal(item["charge"]) + Decimal("0.01"))
        return data if items else None


class RefundHiddenFromCharge(Defect):
    """The refund reached the balance, but `status` still reports the original charge."""

    check = "money_conservation"

    def forget(self) -> None:
        super().forget()
        self.first_charge: dict[str, str] = {}

    def change(self, params, data):
        if params.get("action") != "status" or not isinstance(data, dict):
            return None
        pairs = ([(params.get("order", "").strip(), data)] if "status" in data
                 else [(k, v) for k, v in data.items() if isinstance(v, dict) and "status" in v])
        for ident, item in pairs:
            first = self.first_charge.setdefault(ident, item["charge"])
            item["charge"] = first
        return data if pairs else None


class LeavesCompleted(Defect):
    check = "final_status"

    def forget(self) -> None:
        super().forget()
        self.completed_seen = 0

    def change(self, params, data):
        items = _status_items(params, data)
        flipped = False
        for item in items:
            if item["status"] == "Completed":
                self.completed_seen += 1
                if self.completed_seen > 1:
                    item["status"], item["remains"] = "In progress", "1"
                    flipped = True
        return data if flipped else None


class ForeignOrderVisible(Defect):
    """Answers `status` of another key's order with that order's real status."""

    check = "foreign_ids_invisible"

    def mutate(self, params, status, headers, body, environ):
        ident = params.get("order", "").strip()
        owner = self.owners.get(ident)
        if params.get("action") == "status" and owner and owner != params.get("key"):
            form = json.dumps({**params, "key": owner}).encode()
            json_environ = dict(environ, CONTENT_TYPE="application/json", QUERY_STRING="",
                                REQUEST_METHOD="POST")
            return self.call(json_environ, form)
        return status, headers, body


class ErrorsAsHttp500(Defect):
    check = "http_status"

    def mutate(self, params, status, headers, body, environ):
        data = _json(body)
        if isinstance(data, dict) and "error" in data:
            return "500 INTERNAL SERVER ERROR", headers, body
        return status, headers, body


class HtmlContentType(Defect):
    check = "content_type"

    def mutate(self, params, status, headers, body, environ):
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        return status, [*headers, ("Content-Type", "text/html; charset=utf-8")], body


class OrderIdAsString(Defect):
    check = "schema"

    def change(self, params, data):
        if params.get("action") == "add" and isinstance(data, dict) and "order" in data:
            return {"order": str(data["order"])}


class RemainsAboveQuantity(Defect):
    check = "remains"

    def change(self, params, data):
        items = _status_items(params, data)
        for item in items:
            item["remains"] = str(int(item["remains"]) + 100_000)
        return data if items else None


class UnknownRefillAsSuccess(Defect):
    check = "expected_error"

    def change(self, params, data):
        if params.get("action") == "refill_status" and "refill" in params \
                and isinstance(data, dict) and "error" in data:
            return {"status": "Completed"}


DEFECTS: tuple[type[Defect], ...] = (
    FloatMoney, WrongErrorText, MultiStatusKeyedByPosition, ChargeMisreported,
    RefundHiddenFromCharge, LeavesCompleted, ForeignOrderVisible, ErrorsAsHttp500,
    HtmlContentType, OrderIdAsString, RemainsAboveQuantity, UnknownRefillAsSuccess,
)


class Served:
    """A WSGI app on a real ephemeral port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.server = PooledWSGIServer("127.0.0.1", 0, app)  # the server start_background uses
        # serve_forever looks for shutdown() every poll_interval: 0.5 s by default, which each
        # stop() waited out (about half a second per broken panel in the kit's tests).
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={
            "poll_interval": 0.05}, daemon=True)
        self.thread.start()
        host, port = self.server.server_address[:2]
        self.api_url = f"http://{host}:{port}/api/v2"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
