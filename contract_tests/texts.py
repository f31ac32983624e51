"""Reading error texts: which catalogue code (and limit) a panel's error text means.

The catalogue itself is contract data (`smmkit.schemas.contract`); this module only matches
texts against it, so both the per-exchange checks and `History` can use it without importing
each other.
"""

from __future__ import annotations

import functools
import re

from smmkit.schemas import contract

RAW_STYLE = "raw-keys"
TEXTS_BY_STYLE: dict[str, dict[str, str]] = {
    style: contract.error_texts(style) for style in contract.ERROR_STYLES}
# A limit is a bounded integer: a 5000-digit "limit" is not one (and must not cost a traceback).
_LIMIT = r"(-?\d{1,18})"


@functools.cache
def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(r"\A" + re.escape(template).replace(re.escape("{limit}"), _LIMIT) + r"\Z")


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


def expected_text(code: str, dialect: str, limit: int | None = None) -> str:
    """The dialect's text for `code`, its limit filled in when known."""
    wanted = TEXTS_BY_STYLE[dialect][code]
    return wanted.format(limit=limit) if limit is not None else wanted
