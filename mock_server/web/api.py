"""The /api/v2 request path without a web framework: bytes in, a `Reply` out.

`read_params` turns the three transports real clients use (POST form or multipart, POST JSON,
GET query) into one dict of strings; `Api.handle` checks key, then action, then calls one
panel method and lets the dialect shape the answer. Handlers parse, call, shape — nothing more.
The WSGI glue in `app.py` feeds it; tests can call it directly.

Text that is not Unicode — bytes that are not UTF-8 in any transport, or a lone surrogate
escaped in JSON (`"\\ud800"`) — never reaches the panel: such a field is named in
`Params.broken`, its value is kept only in a printable form (U+FFFD for each bad byte, for the
journal), and the request gets the catalogue's error for that field (`BROKEN_FIELD_ERRORS`).
A stored order is always exactly what the client sent.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

from smmkit.mock_server.core.errors import (
    HTTP_TEXTS,
    IncorrectLink,
    IncorrectOrder,
    IncorrectRequest,
    IncorrectService,
    InvalidKey,
    PanelError,
    RefillNotFound,
)
from smmkit.mock_server.core.panel import Account, Panel
from smmkit.mock_server.storage.errors import StoreUnavailable
from smmkit.mock_server.web.dialects import Awkward, Body, Dialect, encode

MAX_IDS = 100
_ID = re.compile(r"^[0-9]{1,30}$")  # ASCII only: int() also reads "١٠٠"
_SURROGATE = re.compile("[\ud800-\udfff]")  # what undecodable bytes / JSON escapes become
JSON_TYPE = "application/json"

# The error a field that is not Unicode text gets, after the key and action checks (docs/PROTOCOL.md
# §1): each field's own catalogue error where it has one, "Incorrect request" otherwise.
BROKEN_FIELD_ERRORS: dict[str, type[PanelError]] = {
    "key": InvalidKey, "service": IncorrectService, "link": IncorrectLink,
    "order": IncorrectOrder, "refill": RefillNotFound,
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


class Pending(NamedTuple):
    """An order checked and priced but not yet placed: `place(db)` writes it inside a write
    transaction (its id, or it raises why not); `finish` turns that outcome into the answer."""

    place: Callable[[Any], int]
    finish: Callable[[int | Exception], Reply]


def json_reply(body: Body, status: int = 200) -> Reply:
    return Reply(status, encode(body))


def http_error(status: int, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, encode({"error": HTTP_TEXTS[status]}), headers=headers)


@dataclass
class Params:
    """A request's parameters as strings; `malformed` when the body could not be understood;
    `broken` names the fields whose bytes were not Unicode text (their values are printable
    stand-ins, never what the client meant)."""

    values: dict[str, str] = field(default_factory=dict)
    malformed: bool = False
    broken: frozenset[str] = frozenset()
    journal_fields: Any = None  # the journal's fields for these values, set by the endpoint

    def first_broken(self) -> PanelError | None:
        """The error for the first broken field in check order (key, action, then the rest)."""
        if not self.broken:
            return None
        for name in ("key", "action", "service", "link"):
            if name in self.broken:
                return BROKEN_FIELD_ERRORS.get(name, IncorrectRequest)(f"{name} is not UTF-8")
        name = min(self.broken)
        return BROKEN_FIELD_ERRORS.get(name, IncorrectRequest)(f"{name[:40]!r} is not UTF-8")


def _clean(values: dict[str, str]) -> tuple[dict[str, str], frozenset[str]]:
    """Values with lone surrogates replaced by U+FFFD, and the names of the fields that had any
    (in the name or the value)."""
    broken = {name for name, value in values.items()
              if _SURROGATE.search(name) or _SURROGATE.search(value)}
    if not broken:
        return values, frozenset()
    clean = {_printable(name): _printable(value) for name, value in values.items()}
    return clean, frozenset(_printable(name) for name in broken)


def _printable(text: str) -> str:
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


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
    try:  # undecodable bytes inside strings stay visible (as surrogates) to mark their field
        data = json.loads(raw.decode("utf-8", "surrogateescape"))
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


def _from_form(raw: bytes) -> dict[str, str]:
    """`a=1&b=%FF` → {"a": "1", "b": "\udcff"}: bad bytes, raw or %-escaped, stay visible.
    parse_qsl's answer, without its per-field Python: only a part holding `+` or `%` is
    unescaped (an add's link always is, the rest of a form seldom)."""
    text = raw.decode("utf-8", "surrogateescape")
    if text.count("&") >= 1000:  # parse_qsl's field limit, and its refusal, past that
        try:
            return dict(parse_qsl(text, keep_blank_values=True, errors="surrogateescape",
                                  max_num_fields=10_000))
        except ValueError:
            return {}
    escaped = "%" in text or "+" in text
    values = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            if escaped:
                name, value = _unescaped(name), _unescaped(value)
            values[name] = value
    return values


def _unescaped(part: str) -> str:
    if "+" in part:
        part = part.replace("+", " ")
    return unquote(part, errors="surrogateescape") if "%" in part else part


def read_params(query: str, content_type: str, body: bytes,
                multipart: Callable[[], dict[str, str]] | None = None) -> Params:
    """One dict from query and body; a name in both takes the body's value (docs/PROTOCOL.md §1).

    `query` is the WSGI QUERY_STRING: the request's bytes as latin-1 text."""
    values = _from_form(query.encode("latin-1", "replace")) if query else {}
    kind = content_type.split(";", 1)[0].strip().lower()
    malformed = False
    if kind == "application/json" or (not kind and body[:1] in (b"{", b"[")):
        parsed = _from_json(body) if body.strip() else Params()
        values.update(parsed.values)
        malformed = parsed.malformed
    else:
        if kind == "multipart/form-data" and multipart is not None:
            values.update(multipart())
        elif body:
            values.update(_from_form(body))
        if body.isascii() and query.isascii() and b"%" not in body and "%" not in query:
            return Params(values)  # ASCII without %-escapes cannot hold a lone surrogate
    clean, broken = _clean(values)
    return Params(clean, malformed, broken)


def parse_ids(raw: str) -> list[int]:
    """`"1, 10,100"` → [1, 10, 100]; IncorrectRequest for junk, no ids or more than 100."""
    items = raw.split(",")
    if (len(items) <= MAX_IDS and raw.isascii() and raw.replace(",", "").isdigit()
            and all(0 < len(item) <= 30 for item in items)):
        return list(map(int, items))  # plain digits and commas: what _ID accepts, item by item
    return parse_any_ids(raw)


def parse_any_ids(raw: str) -> list[int]:
    """`parse_ids` for any text (spaces, empty items, junk)."""
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
        reply = self._handle(params, later=False)
        assert isinstance(reply, Reply)
        return reply

    def handle_later(self, params: Params) -> Reply | Pending:
        """`handle`, but an order that passes every check comes back as a `Pending`: its write,
        for the caller to carry out with others (`Panel.place_orders`), and its answer."""
        return self._handle(params, later=True)

    def _handle(self, params: Params, *, later: bool) -> Reply | Pending:
        try:
            if "key" in params.broken:
                raise InvalidKey("key is not UTF-8")
            account = self.panel.authenticate(params.values.get("key"))
            handler = self.actions.get(params.values.get("action", ""))
            if params.malformed or handler is None:
                raise IncorrectRequest(f"unknown action {params.values.get('action', '')[:40]!r}")
            broken = params.first_broken()
            if broken is not None:
                raise broken
            if later and handler == self.add:
                return Pending(self.panel.prepare_order(account, params.values), self.placed)
            body = handler(account, params.values)
            if isinstance(body, Reply):
                return body
        except StoreUnavailable:  # answered 503 by the endpoint, not as a bug
            raise
        except Exception as exc:  # noqa: BLE001 - every failure gets its answer
            return self.failure(exc)
        return self._reply(body)

    def placed(self, outcome: int | Exception) -> Reply:
        """The answer to an order carried out later: its id, or why it was refused."""
        if isinstance(outcome, Exception):
            return self.failure(outcome)
        return self._reply(self.dialect.order(outcome))

    def failure(self, exc: Exception) -> Reply:
        """A panel error in this dialect; anything else is a bug: said in JSON, never with a
        traceback on the wire. StoreUnavailable is the endpoint's to answer (503)."""
        if isinstance(exc, PanelError):
            return self._reply(self.dialect.error(exc))
        if isinstance(exc, StoreUnavailable):
            raise exc
        traceback.print_exception(exc, file=sys.stderr)
        return Reply(500, encode({"error": "Internal error"}))

    def _reply(self, body: Body) -> Reply:
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

    def status(self, account: Account, params: Mapping[str, str]) -> Body | Reply:
        if _has(params, "orders"):
            return self.dialect.statuses(
                self.panel.order_statuses(account, parse_ids(params["orders"])))
        if not _has(params, "order"):
            raise IncorrectRequest("status needs order or orders")
        order_id = parse_id(params["order"], IncorrectOrder)
        view = self.panel.order_status(account, order_id)
        if self.awkward:
            return self.dialect.status(view)
        return Reply(200, self.dialect.status_bytes(view))

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
