"""Dialect files: a panel's quirks as data, and the one loader for them.

A dialect names how a panel's answers differ from the canonical ones — error texts (or raw i18n
keys), money formatting, status spellings, optional fields, the JSON type of ids and counts —
and never its logic. The fake answers in a dialect (`serve --dialect`), the kit judges against
one (`check --dialect`, `proxy --dialect`), and `diff --write-dialect` writes one. The format is
documented in docs/dialects.md and given by `_dialects/dialect.schema.json`; the built-in
dialects are files in that format beside it. This module knows neither the fake nor the kit.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from smmkit.schemas import contract

BUILTIN = contract.ERROR_STYLES  # the built-in dialect files, one per error style
SECTIONS = ("errors", "money", "rate", "currency", "services", "statuses", "types")
MAX_FILE_BYTES = 256 * 1024


class DialectError(ValueError):
    """A dialect name or file that cannot be used; the message says why."""


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("_dialects").joinpath(name).read_text("utf-8")


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of a dialect file."""
    return json.loads(_read("dialect.schema.json"))


@dataclass(frozen=True)
class DialectSpec:
    """A resolved dialect: every section filled in from its `extends` chain."""

    name: str
    builtin: str  # the nearest built-in dialect in its chain (itself for a built-in)
    errors: Mapping[str, str]
    money: Mapping[str, Any]
    rate: Mapping[str, Any]
    currency: Mapping[str, Any]
    services: Mapping[str, bool]
    statuses: Mapping[str, str]
    types: Mapping[str, str]
    description: str = ""
    chain: tuple[str, ...] = field(default=())

    @property
    def schema_dialect(self) -> str:
        """The response-schema family its shapes are judged with (`seed` lacks fields)."""
        return "seed" if "seed" in self.chain else "perfectpanel"

    def error_text(self, code: str, limit: int | None = None) -> str:
        template = self.errors[code]
        return template.format(limit=limit) if limit is not None else template

    def money_text(self, amount: Decimal) -> str:
        """A charge or balance as the panel writes its digits (half-up to `decimals`)."""
        places = int(self.money["decimals"])
        text = format(amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), "f")
        if self.money["trim_zeros"] and "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text

    def spelling(self, status: str) -> str:
        return self.statuses.get(status, status)

    def to_json(self) -> dict[str, Any]:
        """The resolved dialect as a complete file (what `diff --write-dialect` writes)."""
        return {"$schema": "https://smmkit.dev/schemas/dialect.schema.json", "name": self.name,
                "description": self.description,
                **{s: dict(getattr(self, s)) for s in SECTIONS}}


def _validate(doc: Any, where: str) -> dict[str, Any]:
    errors = sorted(Draft202012Validator(schema()).iter_errors(doc), key=lambda e: e.json_path)
    if errors:
        problems = "; ".join(f"{e.json_path}: {e.message}" for e in errors[:5])
        raise DialectError(f"{where} is not a valid dialect file: {problems}")
    assert isinstance(doc, dict)
    return doc


@functools.cache
def _builtin_doc(name: str) -> dict[str, Any]:
    return _validate(json.loads(_read(f"{name}.json")), f"built-in dialect {name!r}")


def _resolve(doc: dict[str, Any], *, is_builtin: bool, seen: tuple[str, ...] = ()) -> DialectSpec:
    """Fill every section from the `extends` chain (a file extends perfectpanel by default)."""
    name = doc["name"]
    root = is_builtin and name == "perfectpanel"
    parent_name = doc.get("extends", None if root else "perfectpanel")
    sections: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    chain: tuple[str, ...] = ()
    nearest, description = name, ""
    if parent_name is not None:
        if parent_name in (*seen, name):
            raise DialectError(f"dialect {name!r} extends itself through {parent_name!r}")
        parent = _resolve(_builtin_doc(parent_name), is_builtin=True, seen=(*seen, name))
        sections = {s: dict(getattr(parent, s)) for s in SECTIONS}
        chain, nearest, description = parent.chain, parent.builtin, parent.description
    if is_builtin:
        chain, nearest = (*chain, name), name
    for section in SECTIONS:
        sections[section].update(doc.get(section, {}))
    return DialectSpec(name=name, builtin=nearest, chain=chain,
                       description=doc.get("description", description), **sections)


@functools.cache
def builtin(name: str) -> DialectSpec:
    if name not in BUILTIN:
        raise DialectError(f"unknown dialect {name!r}; one of {', '.join(BUILTIN)} or a file")
    return _resolve(_builtin_doc(name), is_builtin=True)


def load_dialect(name_or_path: str | Path | DialectSpec | Mapping[str, Any]) -> DialectSpec:
    """A built-in dialect by name, a dialect file by path, or a file's parsed content:
    resolved and validated."""
    if isinstance(name_or_path, DialectSpec):
        return name_or_path
    if isinstance(name_or_path, Mapping):  # a dialect file's content, already parsed
        return _resolve(_validate(dict(name_or_path), "dialect data"), is_builtin=False)
    if str(name_or_path) in BUILTIN:
        return builtin(str(name_or_path))
    path = Path(name_or_path)
    if not path.is_file():
        raise DialectError(f"unknown dialect {str(name_or_path)!r}: neither one of "
                           f"{', '.join(BUILTIN)} nor a file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DialectError(f"{path}: a dialect file is at most {MAX_FILE_BYTES} bytes")
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DialectError(f"{path} is not JSON: {exc}") from None
    return _resolve(_validate(doc, str(path)), is_builtin=False)


def is_dialect_file(value: str) -> bool:
    return value not in BUILTIN and Path(value).is_file()
