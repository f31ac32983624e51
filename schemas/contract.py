"""The contract's data, defined once: dialects, statuses, outcomes, the error catalogue per
style, and how an API key is redacted.

The values live in `_data/contract.json` (so other languages read the same file) and are loaded
through the package's one loader, `smmkit.schemas.data`. The error texts are the one exception:
they live in the built-in dialect files, `_dialects/<style>.json` (`errors`, over the `extends`
chain), because a dialect is exactly a panel's texts and quirks; the catalogue here is derived
from those files. Importing this module does not import jsonschema: the fake reads its error
texts from here at start-up (the files are validated by `smmkit.schemas.dialects` and its tests).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

from smmkit.schemas import data

_DOC = data("contract")

DIALECTS: tuple[str, ...] = tuple(_DOC["dialects"])
ERROR_STYLES: tuple[str, ...] = tuple(_DOC["error_styles"])
ORDER_STATUSES: tuple[str, ...] = tuple(_DOC["order_statuses"])
FINAL_STATUSES: frozenset[str] = frozenset(_DOC["final_order_statuses"])
ORDER_TRANSITIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {k: frozenset(v) for k, v in _DOC["order_transitions"].items()})
REFILL_STATUSES: tuple[str, ...] = tuple(_DOC["refill_statuses"])
FINAL_REFILL_STATUSES: frozenset[str] = frozenset(_DOC["final_refill_statuses"])
REFILL_TRANSITIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {k: frozenset(v) for k, v in _DOC["refill_transitions"].items()})
OUTCOMES: tuple[str, ...] = tuple(_DOC["outcomes"])

REDACTED: str = _DOC["redaction"]["placeholder"]
SECRET_PARAMS: frozenset[str] = frozenset(_DOC["redaction"]["secret_params"])
_PRINT_CHARS: int = _DOC["redaction"]["fingerprint_hex_chars"]


def _dialect_errors(style: str, seen: tuple[str, ...] = ()) -> dict[str, str]:
    """The error texts of built-in dialect `style`: its file's `errors` over its parent's (a
    built-in other than perfectpanel extends perfectpanel unless it names another)."""
    if style in seen:
        raise ValueError(f"built-in dialect {style!r} extends itself")
    path = resources.files(__package__).joinpath("_dialects").joinpath(f"{style}.json")
    doc = json.loads(path.read_text("utf-8"))
    parent = doc.get("extends", None if style == "perfectpanel" else "perfectpanel")
    inherited = _dialect_errors(parent, (*seen, style)) if parent else {}
    return {**inherited, **doc.get("errors", {})}


_ERRORS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {style: MappingProxyType(_dialect_errors(style)) for style in ERROR_STYLES})
ERROR_CODES: tuple[str, ...] = tuple(_ERRORS["perfectpanel"])


def error_texts(style: str = "perfectpanel") -> dict[str, str]:
    """code -> text template for error style `style` (a fresh dict)."""
    if style not in ERROR_STYLES:
        raise ValueError(f"unknown error style {style!r}; one of {', '.join(ERROR_STYLES)}")
    return dict(_ERRORS[style])


def error_text(code: str, style: str = "perfectpanel", *, limit: int | None = None) -> str:
    """The text a panel of `style` answers for error `code` (quantity texts take `limit`)."""
    template = _ERRORS[style][code]
    return template.format(limit=limit) if limit is not None else template


def reachable(before: str, after: str,
              table: Mapping[str, frozenset[str]] = ORDER_TRANSITIONS) -> bool:
    """Whether a status seen at `before` can later be seen at `after` (polls may skip steps);
    `table` is ORDER_TRANSITIONS or REFILL_TRANSITIONS."""
    seen, todo = {before}, [before]
    while todo:
        for nxt in table.get(todo.pop(), ()):
            if nxt == after:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return before == after


def fingerprint(key: object) -> str:
    """A short, non-reversible label for an API key ("" when there is none)."""
    if not isinstance(key, str) or not key:
        return ""
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:_PRINT_CHARS]


@functools.lru_cache(maxsize=1024)
def _forms(secrets: tuple[str, ...]) -> frozenset[str]:
    """Each secret as it may stand in a value: plain or URL-encoded, case folded (per request,
    this was a tenth of the journal's cost)."""
    return frozenset(f.casefold() for s in secrets for f in (s, *_encoded(s)))


def redaction_forms(secret: str) -> frozenset[str]:
    """The case-folded forms of `secret` that `redact` looks for in other values."""
    return _forms((secret,))


def _encoded(secret: str) -> tuple[str, str]:
    """`secret` URL-encoded (quote, quote_plus). A client's text may hold lone surrogates (a JSON
    escape like \\ud800, or a form body's undecodable bytes kept by surrogateescape), which
    UTF-8 refuses: they are encoded as the bytes they came from where that is known, else
    surrogatepass's."""
    from urllib.parse import quote, quote_plus

    for errors in ("strict", "surrogateescape", "surrogatepass"):
        try:
            return (quote(secret, safe="", errors=errors),
                    quote_plus(secret, safe="", errors=errors))
        except UnicodeEncodeError:
            continue
    raise AssertionError("surrogatepass encodes every str")  # pragma: no cover


@functools.lru_cache(maxsize=4096)
def is_secret(name: str) -> bool:
    """Whether a parameter's value must never be shown: the secret parameters, and any name
    that looks like one (`Key`, `api_key`, `apiKey`, `token`): a client that misspells the
    name still sent its key."""
    folded = name.casefold()
    return folded in SECRET_PARAMS or "key" in folded or "token" in folded


def redact(params: Mapping[str, Any]) -> dict[str, str]:
    """`params` as strings, every secret replaced by the placeholder, and the key's text
    wherever else it was repeated (a key pasted into `link`) scrubbed too."""
    secrets = [str(v) for k, v in params.items() if is_secret(k) and len(str(v)) >= 4]
    if not secrets:
        return {k: (REDACTED if is_secret(k) else str(v)) for k, v in params.items()}
    forms = _forms(tuple(secrets))
    out = {}
    for name, value in params.items():
        text = str(value)
        if is_secret(name):
            out[name] = REDACTED
        elif any(form in text.casefold() for form in forms):  # scrub only where it is
            out[name] = scrub(text, secrets)
        else:
            out[name] = text
    return out


def scrub(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    """`text` with every occurrence of each secret (and its URL-encoded form) replaced."""
    for secret in secrets:
        if not secret or len(secret) < 3:
            continue
        for form in {secret, *_encoded(secret)}:
            text = re.sub(re.escape(form), REDACTED, text, flags=re.IGNORECASE)
    return text
