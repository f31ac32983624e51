"""The checks: each reads `Exchange` records and returns a list of `Violation`.

Per-exchange checks (schema, error catalogue, transport, money format, multi-id answers) are plain
functions; checks across exchanges (charges, remains, final statuses, money conservation, another
key's ids) live in `History`. `violations(...)` runs them all; `assert_conforms(...)` raises one
`ContractViolation` listing every finding. No transport is imported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from smmkit.contract_tests.catalogue import parse_decimal
from smmkit.contract_tests.exchange import NO_JSON, Exchange
from smmkit.contract_tests.history import History
from smmkit.contract_tests.registry import _DEVIATING, per_exchange, per_exchange_checks
from smmkit.contract_tests.texts import (
    RAW_STYLE,
    TEXTS_BY_STYLE,
    accepted_texts,
    classify_error_text,
    expected_text,
)
from smmkit.contract_tests.violation import ContractViolation, Violation, failing, finding

from smmkit import schemas

__all__ = [
    "Violation", "ContractViolation", "History", "violations", "assert_conforms",
    "check_schema", "check_error_texts", "check_transport", "check_money_format",
    "check_multi_ids", "check_expected_error", "error_texts_in", "classify_error_text",
    "exchange_checks",
]

__all__ += ["accepted_texts", "RAW_STYLE", "TEXTS_BY_STYLE", "check_content_type",
            "check_json_body", "check_http_status"]
MONEY_FIELDS = ("charge", "balance", "rate")


def error_texts_in(exchange: Exchange) -> list[tuple[str, Any]]:
    """Every ``{"error": ...}`` in a body as (where, value): top level, multi-status values,
    and the per-item errors of refill / refill_status / cancel lists."""
    data = exchange.json()
    found: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        if "error" in data:
            found.append(("$", data["error"]))
        elif exchange.params.get("orders") is not None and exchange.action == "status":
            for key, value in data.items():
                if isinstance(value, dict) and "error" in value:
                    found.append((f"$.{key}", value["error"]))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                continue
            for name in ("refill", "cancel", "status"):
                value = item.get(name)
                if isinstance(value, dict) and "error" in value:
                    found.append((f"$[{i}].{name}", value["error"]))
    return found


# ---------------------------------------------------------------- per-exchange checks
def _form(exchange: Exchange) -> str:
    try:
        return schemas.response_form(exchange.action, exchange.params)
    except Exception:  # an unknown action: the single form of an error answer
        return "single"


@per_exchange("schema", "schema", "the body matches the action's response schema: tolerant "
              "misses are violations, strict-only misses deviations", **_DEVIATING)
def check_schema(exchange: Exchange, *, dialect: str = "perfectpanel") -> list[Violation]:
    """The body against the action's response schema: strict misses are deviations, tolerant
    misses violations. Unknown actions must be answered with an error."""
    data = exchange.json()
    if data is NO_JSON:
        return []  # check_transport reports it
    if exchange.action not in schemas.ACTIONS:
        if exchange.error_text is None:
            return [finding("schema", "schema",
                            f"unknown action {exchange.action!r} not answered with an error",
                            exchange)]
        return []
    verdict = schemas.check_response(exchange.action, _form(exchange), data, dialect=dialect)
    if verdict.kind == "violation":
        return [finding("schema", "schema", "; ".join(verdict.tolerant_errors), exchange)]
    if verdict.kind == "deviation":
        return [finding("schema", "schema", "; ".join(verdict.strict_errors), exchange,
                        severity="deviation")]
    return []


@per_exchange("error_catalogue", "errors", "every error text is the dialect's or a raw i18n key; "
              "another dialect's text is a deviation", **_DEVIATING)
def check_error_texts(exchange: Exchange, *, dialect: str = "perfectpanel") -> list[Violation]:
    """Every error text is a known text of the dialect or a raw i18n key (docs/PROTOCOL.md §4)."""
    found: list[Violation] = []
    for where, value in error_texts_in(exchange):
        if not isinstance(value, str):
            found.append(finding("error_catalogue", "errors",
                                 f"{where}: error is {value!r}, not a text", exchange))
            continue
        kind, code, _ = classify_error_text(value, dialect)
        if kind == "unknown":
            found.append(finding("error_catalogue", "errors",
                                 f"{where}: {value!r} is not in the {dialect} error catalogue",
                                 exchange))
        elif kind == "other-dialect":
            found.append(finding("error_catalogue", "errors",
                                 f"{where}: {value!r} is another dialect's text for {code}",
                                 exchange, severity="deviation"))
    return found


@per_exchange("content_type", "transport", "answers are served as application/json")
def check_content_type(exchange: Exchange, *, dialect: str = "perfectpanel") -> list[Violation]:
    content_type = exchange.content_type.split(";")[0].strip().lower()
    if content_type == "application/json":
        return []
    return [finding("content_type", "transport",
                    f"Content-Type is {exchange.content_type!r}, not application/json", exchange)]


@per_exchange("json_body", "transport", "every answer body is JSON")
def check_json_body(exchange: Exchange, *, dialect: str = "perfectpanel") -> list[Violation]:
    if exchange.json() is not NO_JSON:
        return []
    return [finding("json_body", "transport",
                    f"HTTP {exchange.status} body is not JSON: {exchange.text(120)!r}", exchange)]


@per_exchange("http_status", "transport", "HTTP 200 for answers, and for errors in the canonical "
              "dialect (clients drop the text of a non-2xx error); a non-2xx error in another "
              "dialect is a deviation", **_DEVIATING)
def check_http_status(exchange: Exchange, *, dialect: str = "perfectpanel") -> list[Violation]:
    if exchange.status == 200 or exchange.json() is NO_JSON:
        return []
    is_error = exchange.error_text is not None
    severity = "violation" if (dialect == "perfectpanel" or not is_error) else "deviation"
    what = "an error" if is_error else "an answer"
    return [finding("http_status", "transport",
                    f"{what} served with HTTP {exchange.status}, not 200", exchange,
                    severity=severity)]


def check_transport(exchange: Exchange, *, dialect: str = "perfectpanel") -> list[Violation]:
    """JSON content type and body; HTTP 200 for success, and for errors in the canonical
    dialect (the three transport checks at once)."""
    return [*check_content_type(exchange, dialect=dialect),
            *check_json_body(exchange, dialect=dialect),
            *check_http_status(exchange, dialect=dialect)]


def _money_values(data: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in MONEY_FIELDS:
                yield f"$.{key}", value
            elif isinstance(value, dict):
                for where, inner in _money_values(value):
                    yield f"$.{key}{where[1:]}", inner
    elif isinstance(data, list):
        for i, item in enumerate(data):
            for where, inner in _money_values(item):
                yield f"$[{i}]{where[1:]}", inner


@per_exchange("money_format", "money", "money is a decimal string without exponent")
def check_money_format(exchange: Exchange, *, dialect: str = "perfectpanel") -> list[Violation]:
    """Money is a decimal string without exponent, never a JSON number (docs/PROTOCOL.md §2)."""
    found: list[Violation] = []
    for where, value in _money_values(exchange.json()):
        if not isinstance(value, str):
            found.append(finding("money_format", "money",
                                 f"{where} is {value!r} ({type(value).__name__}), "
                                 "not a decimal string", exchange))
        elif not re.fullmatch(r"-?\d+(\.\d+)?", value.strip()) or parse_decimal(value) is None:
            found.append(finding("money_format", "money",
                                 f"{where} is {value!r}, not a plain decimal", exchange))
    return found


def requested_ids(params: Mapping[str, str], name: str) -> list[str]:
    return [part.strip() for part in str(params.get(name, "")).split(",") if part.strip()]


@per_exchange("multi_ids", "semantics", "a multi answer covers exactly the requested ids")
def check_multi_ids(exchange: Exchange, *, dialect: str = "perfectpanel") -> list[Violation]:
    """A multi answer covers exactly the requested ids: keys as strings for `status`, the
    `order` / `refill` field of each item for the list answers."""
    data = exchange.json()
    if exchange.error_text is not None or data is NO_JSON:
        return []
    action = exchange.action
    name = "refills" if action == "refill_status" else "orders"
    if name not in exchange.params or _form(exchange) == "single":
        return []
    wanted = set(requested_ids(exchange.params, name))
    if action == "status":
        if not isinstance(data, dict):
            return []  # the schema check reports the shape
        got = set(data)
        if any(not isinstance(k, str) for k in got):
            got = {str(k) for k in got}
    else:
        if not isinstance(data, list):
            return []
        field = "refill" if action == "refill_status" else "order"
        got = {str(item.get(field)) for item in data if isinstance(item, dict)}
    if got == wanted:
        return []
    missing, extra = sorted(wanted - got), sorted(got - wanted)
    return [finding("multi_ids", "semantics",
                    f"answer ids differ from the requested ids: missing {missing[:10]}, "
                    f"unexpected {extra[:10]}", exchange)]


def check_expected_error(
    exchange: Exchange, code: str | Iterable[str], *, dialect: str = "perfectpanel",
    limit: int | None = None, name: str = "expected_error",
) -> list[Violation]:
    """A probe that must fail with catalogue error `code` (and its `limit`) did so. `code` may
    be several codes where docs/PROTOCOL.md lets the panel choose, or "*" for any catalogue
    error."""
    codes = {code} if isinstance(code, str) else set(code)
    text = exchange.error_text
    first = sorted(codes)[0]
    shown = ("a catalogue error" if first == "*"
             else " or ".join(repr(expected_text(c, dialect, limit)) for c in sorted(codes)))
    if text is None:
        return [finding(name, "probe",
                        f"{exchange.note or 'probe'}: expected error {shown}, got HTTP "
                        f"{exchange.status} {exchange.text(160)!r}", exchange)]
    kind, got_code, got_limit = classify_error_text(text, dialect)
    if "*" in codes and got_code is not None:
        return []
    if got_code not in codes or (limit is not None and got_limit not in (None, limit)):
        return [finding(name, "probe",
                        f"{exchange.note or 'probe'}: expected {shown}, got {text!r}",
                        exchange)]
    return []


def exchange_checks(exchange: Exchange, *, dialect: str = "perfectpanel",
                    enabled: Iterable[str] | None = None) -> list[Violation]:
    """All registered checks that need only this exchange (those in `enabled`, default all).
    An exchange that got no HTTP answer at all is judged by the transport checks only."""
    if exchange.status == 0:
        return []
    found: list[Violation] = []
    for check in per_exchange_checks(enabled):
        assert check.run is not None
        found += check.run(exchange, dialect=dialect)
    return found


def _flatten(items: Iterable[Exchange | Iterable[Exchange]]) -> list[Exchange]:
    flat: list[Exchange] = []
    for item in items:
        if isinstance(item, Exchange):
            flat.append(item)
        else:
            flat.extend(item)
    return flat


def violations(
    *exchanges: Exchange | Iterable[Exchange],
    dialect: str = "perfectpanel",
    history: History | None = None,
) -> list[Violation]:
    """Every finding (violations and deviations) for `exchanges`, in order. Cross-exchange
    checks use `history` (a fresh one when not given), fed in the order given."""
    history = history if history is not None else History(dialect=dialect)
    found: list[Violation] = []
    for exchange in _flatten(exchanges):
        found.extend(exchange_checks(exchange, dialect=dialect))
        found.extend(history.observe(exchange))
    return found


def assert_conforms(
    *exchanges: Exchange | Iterable[Exchange],
    dialect: str = "perfectpanel",
    history: History | None = None,
    strict: bool = False,
) -> None:
    """Raise one `ContractViolation` listing every violation (and deviation when `strict`)."""
    bad = failing(violations(*exchanges, dialect=dialect, history=history), strict=strict)
    if bad:
        raise ContractViolation(bad)
