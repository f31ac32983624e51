"""The /api/v2 request path without a web framework: bytes in, a `Reply` out.

`read_params` turns the three transports real clients use (POST form or multipart, POST JSON,
GET query) into one dict of strings; `Api.handle` checks key, then action, then calls one
panel method and lets the dialect shape the answer. Handlers parse, call, shape — nothing more.
The WSGI glue in `app.py` feeds it; tests can call it directly.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from smmkit.mock_server.core.errors import (
    HTTP_TEXTS,
    IncorrectOrder,
    IncorrectRequest,
    PanelError,
    RefillNotFound,
)
from smmkit.mock_server.core.panel import Account, Panel
from smmkit.mock_server.storage.errors import StoreUnavailable
from smmkit.mock_server.web.dialects import Awkward, Body, Dialect, encode

MAX_IDS = 100
_ID = re.compile(r"^[0-9]{1,30}$")  # ASCII only: int() also reads "١٠٠"
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(body: Body, status: int = 200) -> Reply:
    return Reply(status, encode(body))


def http_error(status: int, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, encode({"error": HTTP_TEXTS[status]}), headers=headers)


@dataclass
class Params:
    """A request's parameters as strings; `malformed` when the body could not be understood."""

    values: dict[str, str] = field(default_factory=dict)
    malformed: bool = False


def _scalar(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return None


def _from_json(raw: bytes) -> Params:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Params(malformed=True)
    if not isinstance(data, dict):
        return Params(malformed=True)
    params = Params()
    for name, value in data.items():
        text = _scalar(value)
        if text is None and isinstance(value, list) and all(_scalar(v) is not None for v in value):
            text = ",".join(_scalar(v) or "" for v in value)  # "orders": [1, 2] as "1,2"
        if text is None:
            params.malformed = True
        else:
            params.values[name] = text
    return params


def _from_form(raw: bytes | str) -> dict[str, str]:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        return dict(parse_qsl(text, keep_blank_values=True, errors="replace",
                              max_num_fields=10_000))
    except ValueError:
        return {}


def read_params(query: str, content_type: str, body: bytes,
                multipart: Callable[[], dict[str, str]] | None = None) -> Params:
    """One dict from query and body; a name in both takes the body's value (docs/PROTOCOL.md §1)."""
    values = _from_form(query.encode("latin-1", "replace")) if query else {}
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json" or (not kind and body[:1] in (b"{", b"[")):
        parsed = _from_json(body) if body.strip() else Params()
        values.update(parsed.values)
        return Params(values, parsed.malformed)
    if kind == "multipart/form-data" and multipart is not None:
        values.update(multipart())
    elif body:
        values.update(_from_form(body))
    return Params(values)


def parse_ids(raw: str) -> list[int]:
    """`"1, 10,100"` → [1, 10, 100]; IncorrectRequest for junk, no ids or more than 100."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items or len(items) > MAX_IDS or not all(_ID.match(item) for item in items):
        raise IncorrectRequest(f"bad id list {raw[:60]!r}")
    return [int(item) for item in items]


def parse_id(raw: str, missing: type[PanelError]) -> int:
    text = raw.strip()
    if not _ID.match(text):
        raise missing(f"bad id {text[:40]!r}")
    return int(text)


def _has(params: Mapping[str, str], name: str) -> bool:
    return params.get(name, "").strip() != ""


class Api:
    """The action table and the one error handler of /api/v2."""

    def __init__(self, panel: Panel, dialect: Dialect | None = None, *,
                 awkward: Awkward | None = None) -> None:
        self.panel = panel
        self.dialect = dialect or Dialect()
        self.awkward = awkward  # robustness mode: reshape answers into tolerant variants
        self._services: tuple[object, Reply] | None = None  # (catalogue, encoded answer)
        self.actions: dict[str, Callable[[Account, Mapping[str, str]], Body]] = {
            "services": self.services, "add": self.add, "status": self.status,
            "balance": self.balance, "refill": self.refill, "refill_status": self.refill_status,
            "cancel": self.cancel,
        }

    def handle(self, params: Params) -> Reply:
        try:
            account = self.panel.authenticate(params.values.get("key"))
            handler = self.actions.get(params.values.get("action", ""))
            if params.malformed or handler is None:
                raise IncorrectRequest(f"unknown action {params.values.get('action', '')[:40]!r}")
            body = handler(account, params.values)
            if isinstance(body, Reply):
                return body
        except PanelError as exc:
            body = self.dialect.error(exc)
        except StoreUnavailable:  # answered 503 by the endpoint, not as a bug
            raise
        except Exception:  # a bug: say so in JSON, never with a traceback on the wire
            traceback.print_exc(file=sys.stderr)
            return Reply(500, encode({"error": "Internal error"}))
        return json_reply(self.awkward.reshape(body) if self.awkward else body)

    # Each handler: parse, call, shape.

    def services(self, account: Account, params: Mapping[str, str]) -> Body | Reply:
        """The catalogue answer is encoded once per catalogue version (it is the biggest body
        and the same for every key)."""
        catalog = self.panel.catalog()
        if self.awkward:
            return self.dialect.services(self.panel.services(account))
        cached = self._services
        if cached is None or cached[0] is not catalog:
            reply = json_reply(self.dialect.services(self.panel.services(account)))
            self._services = cached = (catalog, reply)
        return cached[1]

    def add(self, account: Account, params: Mapping[str, str]) -> Body:
        return self.dialect.order(self.panel.add_order(account, params))

    def status(self, account: Account, params: Mapping[str, str]) -> Body:
        if _has(params, "orders"):
            return self.dialect.statuses(
                self.panel.order_statuses(account, parse_ids(params["orders"])))
        if not _has(params, "order"):
            raise IncorrectRequest("status needs order or orders")
        order_id = parse_id(params["order"], IncorrectOrder)
        return self.dialect.status(self.panel.order_status(account, order_id))

    def balance(self, account: Account, params: Mapping[str, str]) -> Body:
        return self.dialect.balance(*self.panel.balance(account))

    def refill(self, account: Account, params: Mapping[str, str]) -> Body:
        if _has(params, "orders"):
            return self.dialect.refills(self.panel.refill(account, parse_ids(params["orders"])))
        if not _has(params, "order"):
            raise IncorrectRequest("refill needs order or orders")
        order_id = parse_id(params["order"], IncorrectOrder)
        result = self.panel.refill(account, [order_id])[order_id]
        if isinstance(result, PanelError):
            raise result
        return self.dialect.refill(result)

    def refill_status(self, account: Account, params: Mapping[str, str]) -> Body:
        if _has(params, "refills"):
            return self.dialect.refill_statuses(
                self.panel.refill_statuses(account, parse_ids(params["refills"])))
        if not _has(params, "refill"):
            raise IncorrectRequest("refill_status needs refill or refills")
        refill_id = parse_id(params["refill"], RefillNotFound)
        result = self.panel.refill_statuses(account, [refill_id])[refill_id]
        if isinstance(result, PanelError):
            raise result
        return self.dialect.refill_status(result)

    def cancel(self, account: Account, params: Mapping[str, str]) -> Body:
        raw = params["orders"] if _has(params, "orders") else params.get("order", "")
        return self.dialect.cancels(self.panel.cancel(account, parse_ids(raw)))
