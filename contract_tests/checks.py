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
from smmkit.contract_tests.violation import ContractViolation, Violation, failing, finding
from smmkit.mock_server.core.errors import TEXTS_BY_STYLE

from smmkit import schemas

__all__ = [
    "Violation", "ContractViolation", "History", "violations", "assert_conforms",
    "check_schema", "check_error_texts", "check_transport", "check_money_format",
    "check_multi_ids", "check_expected_error", "error_texts_in", "classify_error_text",
    "exchange_checks",
]

RAW_STYLE = "raw-keys"
MONEY_FIELDS = ("charge", "balance", "rate")


# ---------------------------------------------------------------- error texts
def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(template).replace(re.escape("{limit}"), r"(-?\d+)") + "$")


def _matches(text: str, style: str) -> tuple[str, int | None] | None:
    """(code, limit) when `text` is one of `style`'s texts, else None."""
    for code, template in TEXTS_BY_STYLE[style].items():
        if "{limit}" in template:
            match = _pattern(template).match(text)
            if match:
                return code, int(match.group(1))
        elif text == template:
            return code, None
    return None


def classify_error_text(text: str, dialect: str) -> tuple[str, str | None, int | None]:
    """("dialect" | "raw-key" | "other-dialect" | "unknown", code, limit) for an error text."""
    found = _matches(text, dialect)
    if found:
        return "dialect", found[0], found[1]
    raw = _matches(text, RAW_STYLE)
    if raw and text != TEXTS_BY_STYLE[dialect].get(raw[0]):
        return "raw-key", raw[0], raw[1]
    for style in TEXTS_BY_STYLE:
        found = _matches(text, style)
        if found:
            return "other-dialect", found[0], found[1]
    return "unknown", None, None


def accepted_texts(code: str, dialect: str) -> set[str]:
    """The texts a client may meet for `code`: the dialect's and the raw i18n key."""
    return {TEXTS_BY_STYLE[dialect][code], TEXTS_BY_STYLE[RAW_STYLE][code]}


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


def check_transport(exchange: Exchange, *, dialect: str = "perfectpanel") -> list[Violation]:
    """JSON content type and body; HTTP 200 for success, and for errors in the canonical
    dialect (clients drop the error text of a non-2xx answer)."""
    found: list[Violation] = []
    content_type = exchange.content_type.split(";")[0].strip().lower()
    if content_type != "application/json":
        found.append(finding("content_type", "transport",
                             f"Content-Type is {exchange.content_type!r}, not application/json",
                             exchange))
    if exchange.json() is NO_JSON:
        found.append(finding("json_body", "transport",
                             f"HTTP {exchange.status} body is not JSON: {exchange.text(120)!r}",
                             exchange))
        return found
    if exchange.status != 200:
        is_error = exchange.error_text is not None
        severity = "violation" if (dialect == "perfectpanel" or not is_error) else "deviation"
        what = "an error" if is_error else "an answer"
        found.append(finding("http_status", "transport",
                             f"{what} served with HTTP {exchange.status}, not 200",
                             exchange, severity=severity))
    return found


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


def check_money_format(exchange: Exchange) -> list[Violation]:
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


def check_multi_ids(exchange: Exchange) -> list[Violation]:
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
    exchange: Exchange, code: str, *, dialect: str = "perfectpanel", limit: int | None = None,
) -> list[Violation]:
    """A probe that must fail with catalogue error `code` (and its `limit`) did so."""
    text = exchange.error_text
    wanted = TEXTS_BY_STYLE[dialect][code]
    shown = wanted.format(limit=limit) if limit is not None else wanted
    if text is None:
        return [finding("expected_error", "probe",
                        f"{exchange.note or 'probe'}: expected error {shown!r}, got "
                        f"{exchange.text(160)!r}", exchange)]
    kind, got_code, got_limit = classify_error_text(text, dialect)
    if got_code != code or (limit is not None and got_limit not in (None, limit)):
        return [finding("expected_error", "probe",
                        f"{exchange.note or 'probe'}: expected {shown!r}, got {text!r}",
                        exchange)]
    return []


def exchange_checks(exchange: Exchange, *, dialect: str = "perfectpanel") -> list[Violation]:
    """All checks that need only this exchange."""
    return [
        *check_transport(exchange, dialect=dialect),
        *check_schema(exchange, dialect=dialect),
        *check_error_texts(exchange, dialect=dialect),
        *check_money_format(exchange),
        *check_multi_ids(exchange),
    ]


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
