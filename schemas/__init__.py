"""JSON Schemas of the SMM panel API v2 and the one loader for them.

The schemas are plain JSON Schema 2020-12 files beside this module (usable from any language);
`index.json` says which file validates which (action, form) per dialect and profile. This module
is the only code that opens them (via `importlib.resources`); validators are built once and
cached. Nothing here knows HTTP: bodies and form parameters come in as values.

Profiles: `strict` is exactly what the canonical fake sends; `tolerant` is what real panels are
observed to send. A body valid under `tolerant` only is a *deviation*, invalid under both a
*violation*.
"""

from __future__ import annotations

import functools
import json
import pathlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # jsonschema is imported on first validation: the fake reads the contract's
    from jsonschema import ValidationError  # data (errors, statuses) without paying for it
    from referencing import Registry

__all__ = [
    "DIALECTS", "PROFILES", "ACTIONS", "SERVICE_TYPES", "SchemaError", "Verdict", "load", "names",
    "index", "response_form", "response_schema_name", "response_validator", "request_validator",
    "messages", "check_response", "check_request", "openapi_document", "export", "data",
]

PROFILES = ("strict", "tolerant")
ACTIONS = ("services", "add", "status", "balance", "refill", "refill_status", "cancel")
# Parameter that, when present, turns the action's answer into the multi form.
_MULTI_PARAM = {"status": "orders", "refill": "orders", "refill_status": "refills"}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*(/[A-Za-z0-9_][A-Za-z0-9_\-]*)*$")


class SchemaError(Exception):
    """An unknown or malformed schema name, action, form, dialect, profile or service type."""


# ------------------------------------------------------------------ loading


def _root() -> Any:
    return resources.files(__name__)


def names() -> list[str]:
    """Every schema name: its path below `schemas/` without `.json` (e.g. `response/add`)."""
    return list(_names())


@functools.cache
def _names() -> tuple[str, ...]:
    found: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                if not child.name.startswith(("_", ".")):
                    walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".json") and child.name != "index.json":
                found.append(prefix + child.name[: -len(".json")])

    walk(_root(), "")
    return tuple(sorted(found))


@functools.cache
def _read(relpath: str) -> str:
    return _root().joinpath(*relpath.split("/")).read_text(encoding="utf-8")


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name.removesuffix(".json")):
        raise SchemaError(f"malformed schema name {name!r}")
    bare = name.removesuffix(".json")
    if bare not in _names():
        raise SchemaError(f"unknown schema name {name!r}")
    return bare


def load(name: str) -> dict[str, Any]:
    """The raw schema document `name` (a fresh copy: callers may mutate it)."""
    return json.loads(_read(_check_name(name) + ".json"))


@functools.cache
def _data(name: str) -> Any:
    return json.loads(_read(f"_data/{name}.json"))


def data(name: str) -> Any:
    """A contract data document of `_data/` (not a schema; e.g. "contract": statuses, dialects,
    the error catalogue per style), as a fresh copy."""
    if not isinstance(name, str) or not _NAME.match(name) or "/" in name:
        raise SchemaError(f"malformed data name {name!r}")
    try:
        return json.loads(json.dumps(_data(name)))
    except FileNotFoundError:
        raise SchemaError(f"unknown data name {name!r}") from None


# The response-schema families, from the contract's data (smmkit.schemas.contract.DIALECTS).
DIALECTS: tuple[str, ...] = tuple(_data("contract")["dialects"])


@functools.cache
def _index() -> dict[str, Any]:
    return json.loads(_read("index.json"))


def index() -> dict[str, Any]:
    """The raw index document (a fresh copy)."""
    return json.loads(_read("index.json"))


@functools.cache
def _registry() -> Registry:
    from referencing import Registry, Resource

    return Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in map(load, _names())
    )


def _search_to_end(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    # Python's `$` also matches before a final "\n"; ECMA-262's (what JSON Schema means) does not.
    # Our patterns end with `$` meaning end of string, so anchor them with `\Z` here.
    if not validator.is_type(instance, "string"):
        return
    anchored = pattern
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        anchored = pattern[:-1] + r"\Z"
    if not re.search(anchored, instance):
        from jsonschema import ValidationError

        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.cache
def _validator_class() -> Any:
    from jsonschema import Draft202012Validator, validators

    return validators.extend(Draft202012Validator, {"pattern": _search_to_end})


@functools.cache
def _validator(name: str) -> Any:
    return _validator_class()(load(name), registry=_registry())


def _index_lookup(*keys: str, what: str) -> str:
    node: Any = _index()
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            raise SchemaError(f"no schema for {what}: unknown {key!r}")
        node = node[key]
    return str(node).removesuffix(".json")


# ------------------------------------------------------------------ validators


def response_form(action: str, params: Mapping[str, str]) -> str:
    """The form of `action`'s answer for these request parameters: list, single or multi."""
    if action in ("services", "cancel"):
        return "list"
    if action in ("add", "balance"):
        return "single"
    if action in _MULTI_PARAM:
        return "multi" if _MULTI_PARAM[action] in params else "single"
    raise SchemaError(f"unknown action {action!r}")


def response_schema_name(
    action: str, form: str, *, profile: str = "strict", dialect: str = "perfectpanel"
) -> str:
    """Name of the schema validating the success-or-error body of (action, form)."""
    if dialect not in DIALECTS:
        raise SchemaError(f"unknown dialect {dialect!r}; expected one of {DIALECTS}")
    if profile not in PROFILES:
        raise SchemaError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    return _index_lookup("responses", dialect, profile, action, form,
                         what=f"response ({action!r}, {form!r})")


def response_validator(
    action: str, form: str, *, profile: str = "strict", dialect: str = "perfectpanel"
) -> Any:
    """A cached Draft 2020-12 validator for the success-or-error body of (action, form)."""
    return _validator(response_schema_name(action, form, profile=profile, dialect=dialect))


def _type_key(service_type: str) -> str:
    types = _index()["add_types"]
    if service_type in types:
        return service_type
    folded = {t.lower(): t for t in types} | {
        v.rsplit("/", 1)[-1].removesuffix(".json"): t for t, v in types.items()}
    key = folded.get(service_type.strip().lower())
    if key is None:
        raise SchemaError(f"unknown service type {service_type!r}")
    return key


def request_validator(action: str, service_type: str | None = None) -> Any:
    """A cached validator for `action`'s form fields; for `add`, per service type if given."""
    if service_type is not None:
        if action != "add":
            raise SchemaError(f"service type {service_type!r} given for action {action!r}")
        return _validator(_index_lookup("add_types", _type_key(service_type),
                                        what=f"add of type {service_type!r}"))
    return _validator(_index_lookup("requests", action, what=f"request {action!r}"))


# ------------------------------------------------------------------ checks


def _branch_errors(error: ValidationError) -> list[ValidationError]:
    """The errors of the anyOf/oneOf branch the instance most plausibly meant."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def badness(errs: list[ValidationError]) -> tuple[int, int, int]:
        # A branch whose type does not even match the instance is the least likely intent;
        # next, the branch missing the fewest required properties (so {"charge": 0.1, ...} is
        # judged as a status, {"error": ""} as an error), then the one with the fewest errors.
        root = [e for e in errs if not e.relative_path]
        wrong_type = sum(e.validator == "type" for e in root)
        missing = sum(e.validator == "required" for e in root)
        return (wrong_type, missing, len(errs))

    return min(branches.values(), key=badness)


def _leaves(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        if error.validator in ("anyOf", "oneOf") and error.context:
            yield from _leaves(_branch_errors(error))
        else:
            yield error


def messages(validator: Any, instance: object) -> tuple[str, ...]:
    """`$.path: problem` for every leaf error of `instance`, sorted by path."""
    errors = sorted(_leaves(validator.iter_errors(instance)),
                    key=lambda e: (e.json_path, e.message))
    return tuple(dict.fromkeys(f"{e.json_path}: {_text(e)}" for e in errors))


def _text(error: ValidationError) -> str:
    # Fields a request must not carry are `{"not": {}}` (a `false` schema would lose the path
    # in jsonschema's errors); say so plainly instead of "... should not be valid under {}".
    if error.validator == "not" and error.validator_value == {}:
        return f"{error.instance!r} is not allowed here"
    return error.message


@dataclass(frozen=True)
class Verdict:
    """A response body judged under both profiles."""

    strict_errors: tuple[str, ...]
    tolerant_errors: tuple[str, ...]

    @property
    def kind(self) -> Literal["conforms", "deviation", "violation"]:
        if self.tolerant_errors:
            return "violation"
        return "deviation" if self.strict_errors else "conforms"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def check_response(
    action: str, form: str, body: object | bytes | str, *, dialect: str = "perfectpanel"
) -> Verdict:
    """Judge `body` (parsed JSON, or bytes/str holding JSON) as the answer to (action, form)."""
    strict = response_validator(action, form, profile="strict", dialect=dialect)
    tolerant = response_validator(action, form, profile="tolerant", dialect=dialect)
    if isinstance(body, (bytes, bytearray, str)):
        try:
            body = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            problem = (f"$: body is not JSON ({exc})",)
            return Verdict(problem, problem)
    return Verdict(messages(strict, body), messages(tolerant, body))


def check_request(params: Mapping[str, str], service_type: str | None = None) -> list[str]:
    """Problems with a request's form fields; [] when it conforms."""
    action = params.get("action")
    if action not in ACTIONS:
        return [f"$.action: {action!r} is not one of {list(ACTIONS)}"]
    if service_type is not None and action != "add":
        return [f"$.action: service type {service_type!r} given but action is {action!r}"]
    return list(messages(request_validator(action, service_type), dict(params)))


SERVICE_TYPES: tuple[str, ...] = tuple(_index()["add_types"])


# ------------------------------------------------------------------ documents


def openapi_document(*, dialect: str = "perfectpanel", profile: str = "strict",
                     server_url: str | None = None, part: str = "api") -> dict[str, Any]:
    """OpenAPI 3.1 description of /api/v2 (`part="api"`), of the fake's control API
    (`"control"`) or of both (`"all"`), generated from the schema files."""
    from smmkit.schemas.openapi import build  # noqa: PLC0415 - keeps the cheap import path cheap

    return build(dialect=dialect, profile=profile, server_url=server_url, part=part)


def export(out_dir: str | pathlib.Path, *, bundle: bool = False,
           readme: bool = False) -> list[pathlib.Path]:
    """Write every schema file and index.json below `out_dir`, same relative paths.

    `bundle`: each file self-contained (everything it references embedded, `$ref`s local), for
    validators without a registry such as plain `jsonschema.validate`. `readme`: also a
    README.md saying what the files are and how to use them."""
    from smmkit.schemas.bundle import bundle as bundled  # noqa: PLC0415 - only for --bundle

    out = pathlib.Path(out_dir)
    written = []
    for rel in [f"{name}.json" for name in names()] + ["index.json"]:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if bundle and rel != "index.json":
            text = json.dumps(bundled(rel.removesuffix(".json")), indent=2, ensure_ascii=False)
            target.write_text(text + "\n", encoding="utf-8")
        else:
            target.write_text(_read(rel), encoding="utf-8")
        written.append(target)
    if readme:
        target = out / "README.md"
        target.write_text(_readme(bundle), encoding="utf-8")
        written.append(target)
    return written


def _readme(bundled: bool) -> str:
    """The package's README of the files, plus how to use this copy without smmkit."""
    how = _BUNDLED_HOW if bundled else _LINKED_HOW
    return f"{_read('README.md').rstrip()}\n\n## Using this copy\n\n{how.strip()}\n"


_LINKED_HOW = """
These files reference each other by relative `$ref` (e.g. `../_defs.json#/$defs/money`).
Load them all into one registry keyed by `$id`, then validate; in Python:

```python
import json, pathlib
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

root = pathlib.Path(".")  # this directory
docs = [json.loads(p.read_text()) for p in root.rglob("*.json") if p.name != "index.json"]
registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)
schema = json.loads((root / "response/balance.json").read_text())
Draft202012Validator(schema, registry=registry).validate({"balance": "1.5", "currency": "USD"})
```

For files that need no registry at all, export with `smmkit schemas --out DIR --bundle`.
"""

_BUNDLED_HOW = """
This copy is **bundled**: every file is self-contained (whatever it references is embedded
under its `$defs`, every `$ref` points inside the same file), so any 2020-12 validator uses a
file on its own, with no registry or base URI:

```python
import json
import jsonschema

schema = json.load(open("response/balance.json"))
jsonschema.validate({"balance": "100.84", "currency": "USD"}, schema)
```

`index.json` still says which file validates which action, form, dialect and profile.
"""
