"""Strict reading of the accounts and catalogue files (and of the control API's account and
service bodies): every entry is checked against the published JSON Schemas
(`schemas/config/accounts.json`, `schemas/config/catalog.json`), then against the rules a schema
cannot say (min ≤ max, unique ids and keys).

A mistake is refused, never guessed at: `"balanse"` is not a balance of 0. Every message names
the file (or "request body"), the entry (its index and its key or service id) and the field,
and an unknown field gets a "did you mean" from difflib.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from smmkit.mock_server.core.catalog import Service, service_from_json
from smmkit.mock_server.core.money import parse_money
from smmkit.mock_server.core.panel import AccountSpec

_NEEDS = {"key": ": an account needs a non-empty string key"}
if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

SHIPPED = {"accounts": "accounts.json", "catalog": "catalog.json"}


class ConfigError(ValueError):
    """A configuration file or body that cannot be used; one line per problem, each naming the
    source, the entry and the field."""


@functools.cache
def _validator(kind: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # noqa: PLC0415 - only for files given

    # one name per joinpath: a Traversable takes only one before Python 3.11
    text = resources.files("smmkit.schemas").joinpath("config").joinpath(f"{kind}.json").read_text(
        "utf-8")
    return Draft202012Validator(json.loads(text))


def _entry_schema(kind: str) -> dict[str, Any]:
    schema = cast(dict[str, Any], _validator(kind).schema)  # built from a JSON object above
    return schema["$defs"]["account" if kind == "accounts" else "service"]


# ---------------------------------------------------------------- reading files


def read_entries(path: str | Path | None, kind: str) -> tuple[str, list[Any]]:
    """(source name, parsed JSON) of a config file, or of the shipped default when path is None.
    Unreadable, non-UTF-8 and truncated files are refused naming the file (and line)."""
    if path is None:
        source = f"shipped {SHIPPED[kind]}"
        data = resources.files("smmkit.mock_server").joinpath("data")
        text = data.joinpath(SHIPPED[kind]).read_text("utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read it ({exc.strerror})") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: line {exc.lineno}, column {exc.colno}: not valid JSON "
                          f"({exc.msg})") from None
    except ValueError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc})") from None
    return source, data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_accounts(path: str | Path | None) -> list[AccountSpec]:
    """Accounts from a JSON list of {"key", "balance", "currency"} (default: the shipped demo)."""
    if path is None:
        return list(_shipped_accounts())
    source, data = read_entries(path, "accounts")
    return check_accounts(data, source)


def load_catalog(path: str | Path | None) -> list[Service]:
    """The catalogue from a JSON list of services (default: the shipped one)."""
    if path is None:
        return list(_shipped_catalog())
    source, data = read_entries(path, "catalog")
    return check_catalog(data, source)


# The shipped files are held to their schemas by the test suite
# (tests/test_config_files.py), not at every start: `smmkit serve` on its defaults imports no
# jsonschema, and the many panels a test run builds read them once.


@functools.cache
def _shipped_accounts() -> tuple[AccountSpec, ...]:
    return tuple(_account_spec(entry) for entry in read_entries(None, "accounts")[1])


@functools.cache
def _shipped_catalog() -> tuple[Service, ...]:
    return tuple(service_from_json(entry) for entry in read_entries(None, "catalog")[1])


# ---------------------------------------------------------------- whole documents


def check_accounts(data: Any, source: str) -> list[AccountSpec]:
    """Every account of `data` (a parsed accounts file), or ConfigError listing every problem."""
    found = _schema_problems("accounts", data, source)
    problems = [line for _, line in found] or _duplicates(data, "key", source, "key")
    if problems:
        raise ConfigError("\n".join(problems))
    return [_account_spec(entry) for entry in data]


def check_catalog(data: Any, source: str) -> list[Service]:
    """Every service of `data` (a parsed catalogue file), or ConfigError listing every problem."""
    found = _schema_problems("catalog", data, source)
    if isinstance(data, list):
        flawed = {index for index, _ in found}
        found += [(index, line) for index, entry in enumerate(data) if index not in flawed
                  for line in _service_rules(entry, _where(source, index, entry))]
    problems = [line for _, line in sorted(found)] or _duplicates(data, "service", source,
                                                                  "service")
    if problems:
        raise ConfigError("\n".join(problems))
    return [service_from_json(entry) for entry in data]


# ---------------------------------------------------------------- single bodies (control API)


def check_account_body(data: Mapping[str, Any], *, partial: bool = False,
                       source: str = "request body") -> None:
    """The control API's account body under the accounts file's rules. `partial`: a PATCH,
    where only the fields given are checked (plus its own `top_up`)."""
    _check_body("accounts", data, source, partial=partial, extra=("top_up", "enabled")
                if partial else ())


def check_service_body(data: Mapping[str, Any], *, partial: bool = False,
                       source: str = "request body") -> None:
    """The control API's service body under the catalogue file's rules (`partial`: a PATCH)."""
    _check_body("catalog", data, source, partial=partial)


def _check_body(kind: str, data: Mapping[str, Any], source: str, *, partial: bool,
                extra: Iterable[str] = ()) -> None:
    schema = dict(_entry_schema(kind))
    if partial:
        schema.pop("required", None)
    extra = tuple(extra)
    if extra:
        schema["properties"] = {**schema["properties"], **{name: {} for name in extra}}
    defs = cast(dict[str, Any], _validator(kind).schema)["$defs"]
    validator = type(_validator(kind))({**schema, "$defs": defs})
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: must be a JSON object, got {_kind(data)}")
    where = _where(source, None, data)
    problems = list(dict.fromkeys(_message(where, error, schema)
                                  for error in _sorted(validator.iter_errors(data))))
    if not problems and kind == "catalog" and not partial:
        problems = _service_rules(data, where)
    if problems:
        raise ConfigError("\n".join(problems))


# ---------------------------------------------------------------- messages


def _sorted(errors: Iterable[ValidationError]) -> list[ValidationError]:
    return sorted(errors, key=lambda e: ([str(p) for p in e.absolute_path], e.message))


def _schema_problems(kind: str, data: Any, source: str) -> list[tuple[int, str]]:
    """(entry index, message) for every schema error; index -1 for the document itself."""
    what = "accounts" if kind == "accounts" else "services"
    if not isinstance(data, list):
        return [(-1, f"{source}: must be a JSON list of {what}, got {_kind(data)}")]
    schema = _entry_schema(kind)
    problems = []
    for error in _sorted(_validator(kind).iter_errors(data)):
        index = int(error.path.popleft())  # the rest of the path is relative to the entry
        problems.append((index, _message(_where(source, index, data[index]), error, schema)))
    return list(dict.fromkeys(problems))  # minLength and pattern can say the same thing


def _where(source: str, index: int | None, entry: Any) -> str:
    label = ""
    if isinstance(entry, Mapping):
        if isinstance(entry.get("key"), str):
            label = f"key {entry['key']!r}"
        elif "service" in entry:
            label = f"service {entry['service']!r}"
    if index is None:
        return f"{source}{f' ({label})' if label else ''}"
    return f"{source}: entry {index}{f' ({label})' if label else ''}"


def _message(where: str, error: ValidationError, schema: Mapping[str, Any]) -> str:
    properties = schema.get("properties", {})
    path = list(error.path)
    field = str(path[0]) if path else None
    value: Any = error.instance  # jsonschema types both as Any | Unset; both are set here
    rule: Any = error.validator_value  # the keyword's value: names, enum, bound
    if error.validator == "additionalProperties":
        unknown = sorted(set(value) - set(properties))
        return "\n".join(f"{where}: field {name!r}: unknown field; {_suggest(name, properties)}"
                         for name in unknown)
    if error.validator == "required":
        missing = [name for name in rule if name not in value]
        return "\n".join(f"{where}: field {name!r}: missing (required{_NEEDS.get(name, '')})"
                         for name in missing)
    if error.validator == "type" and not path:
        return f"{where}: must be a JSON object, got {_kind(value)}"
    head = f"{where}: field {field!r}"
    if error.validator == "type":
        wanted = rule
        if field in ("rate", "balance") and isinstance(value, float):
            return (f"{head}: {value!r} is a float (a JSON fraction); write money as a decimal "
                    f"string, e.g. \"{value}\"")
        return f"{head}: {value!r} is {_kind(value)}, expected {_expected(wanted)}"
    if error.validator == "enum":
        if field == "currency":
            hint = _close(str(value).upper() if isinstance(value, str) else str(value),
                          rule)
            return f"{head}: {value!r} is not an ISO 4217 currency code{hint}"
        hint = _close(str(value), rule)
        what = "a service type" if field == "type" else "one of the known values"
        return f"{head}: {value!r} is not {what}{hint}"
    if error.validator == "minimum":
        if field in ("rate", "balance"):
            return f"{head}: {value!r} is negative"
        return f"{head}: {value!r} is below the minimum {rule}"
    if error.validator == "pattern" and field in ("rate", "balance"):
        negative = isinstance(value, str) and value.strip().startswith("-")
        return (f"{head}: {value!r} is negative" if negative else
                f"{head}: {value!r} is not a decimal amount like \"0.90\"")
    if error.validator in ("minLength", "pattern") and field == "key":
        return f"{head}: {value!r} must be non-empty text without surrounding spaces"
    if error.validator == "minLength" and field in ("name", "category"):
        return f"{head}: {value!r} must be non-empty text"
    if error.validator == "maxLength":
        return f"{head}: longer than {rule} characters"
    return f"{head}: {error.message}"


def _service_rules(entry: Mapping[str, Any], where: str) -> list[str]:
    """What the schema cannot say about one service."""
    if entry["min"] > entry["max"]:
        return [f"{where}: field 'min': {entry['min']} is above max {entry['max']} "
                "(inconsistent limits)"]
    return []


def _duplicates(data: list[Any], field: str, source: str, what: str) -> list[str]:
    first: dict[Any, int] = {}
    problems = []
    for index, entry in enumerate(data):
        value = entry[field]
        if value in first:
            problems.append(f"{_where(source, index, entry)}: field {field!r}: duplicate {what} "
                            f"{value!r} (also entry {first[value]})")
        first.setdefault(value, index)
    return problems


def _suggest(name: str, properties: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(properties), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"the fields are {', '.join(sorted(properties))}"


def _close(value: str, choices: Iterable[Any]) -> str:
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _expected(wanted: Any) -> str:
    names = {"boolean": "true or false", "integer": "an integer", "string": "a string",
             "object": "an object", "array": "a list", "number": "a number"}
    wanted = wanted if isinstance(wanted, list) else [wanted]
    if set(wanted) == {"string", "integer"}:
        return "a decimal string like \"0.90\""
    return " or ".join(names.get(w, w) for w in wanted)


def _account_spec(entry: Mapping[str, Any]) -> AccountSpec:
    return AccountSpec(entry["key"], parse_money(entry.get("balance", "0")),
                       entry.get("currency", "USD"))
