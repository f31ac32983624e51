"""The configuration files fuzzed through `build_panel` and the app (issue 16 item 6): an
accounts, catalogue or dialect file (`--accounts`, `--catalog`, `--dialect FILE`), mutated
from the shipped ones or any JSON or any bytes, is either refused with a ValueError naming
the problem (what `smmkit serve` prints as one line) or gives a panel whose every action
answers JSON below 500 and keeps the conservation law."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from smmkit.mock_server.core.config import Config, build_panel
from smmkit.mock_server.web.app import create_app
from smmkit.schemas.dialects import BUILTIN, DialectError, load_dialect
from werkzeug.test import Client

SHIPPED = {name: json.loads(resources.files("smmkit.mock_server").joinpath(
    f"data/{name}.json").read_text("utf-8")) for name in ("accounts", "catalog")}
DIALECTS = {name: json.loads(resources.files("smmkit.schemas").joinpath(
    f"_dialects/{name}.json").read_text("utf-8")) for name in BUILTIN}
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
              st.sampled_from(["", "0", "-1", "1e30", "NaN", "Default", "Package", "USD",
                               "dollars", "0.000001", "10000000000000000000000"])),
    lambda kids: st.one_of(st.lists(kids, max_size=3),
                           st.dictionaries(st.text(max_size=6), kids, max_size=3)),
    max_leaves=6)


@st.composite
def documents(draw: st.DrawFn, name: str) -> bytes:
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    entries: list[Any] = json.loads(json.dumps(SHIPPED[name]))
    for _ in range(draw(st.integers(1, 3))):
        if not entries:
            break
        index = draw(st.integers(0, len(entries) - 1))
        entry = entries[index]
        action = draw(st.sampled_from(["set", "drop", "add", "duplicate", "replace"]))
        if action == "duplicate":
            entries.append(json.loads(json.dumps(entry)))
        elif action == "replace":
            entries[index] = draw(json_values)
        elif isinstance(entry, dict) and entry:
            field = draw(st.sampled_from(sorted(entry)))
            if action == "set":
                entry[field] = draw(json_values)
            elif action == "drop":
                del entry[field]
            else:
                entry[draw(st.text(max_size=8))] = draw(json_values)
    return json.dumps(entries).encode()


def _check_panel(config: Config) -> None:
    try:
        panel = build_panel(config)
    except ValueError as exc:  # refused: a message that says what (the CLI prints it)
        assert str(exc).strip()
        return
    try:
        client = Client(create_app(panel, config=config))
        keys = [row[0] for row in panel.store.connection().execute("SELECT key FROM accounts")]
        services = [s.service for s in panel.catalog().values()][:3]
        for key in keys[:3]:
            for params in [{"action": "balance"}, {"action": "services"},
                           *({"action": "add", "service": str(s), "link": "https://x.com/f",
                              "quantity": "100"} for s in services),
                           {"action": "status", "order": "23501"}]:
                response = client.post("/api/v2", data={"key": key, **params})
                assert response.status_code < 500, (params, response.get_data()[:300])
                assert isinstance(json.loads(response.get_data()), (dict, list))
            audit = panel.audit(key)
            assert audit["balance"] + audit["charges"] == audit["opening"] + audit["topups"]
    finally:
        panel.store.close()


@fuzz_settings()
@given(accounts=documents("accounts"))
def test_any_accounts_file(tmp_path_factory: Any, accounts: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "accounts.json"
    path.write_bytes(accounts)
    _check_panel(Config(db=":memory:", clock="manual", accounts=str(path)))


@fuzz_settings()
@given(catalog=documents("catalog"))
def test_any_catalogue_file(tmp_path_factory: Any, catalog: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "catalog.json"
    path.write_bytes(catalog)
    _check_panel(Config(db=":memory:", clock="manual", catalog=str(path)))


def _known(docs: list[Any]) -> dict[str, list[Any]]:
    """Every entry name seen in a section of the shipped dialects, with the values seen."""
    seen: dict[str, list[Any]] = {}
    for doc in docs:
        for section, entries in doc.items():
            if isinstance(entries, dict):
                for name, value in entries.items():
                    seen.setdefault(f"{section}.{name}", []).append(value)
    return seen


KNOWN = _known(list(DIALECTS.values()))
TEXTS = sorted({v for vs in KNOWN.values() for v in vs if isinstance(v, str)})


def _like(draw: st.DrawFn, value: Any) -> Any:
    """Mostly a value of the same kind (what a person editing the file would write), now and
    then any JSON."""
    if draw(st.integers(0, 7)) == 0:
        return draw(json_values)
    if isinstance(value, bool):
        return draw(st.booleans())
    if isinstance(value, int):
        return draw(st.integers(-3, 30))
    if isinstance(value, str):
        return draw(st.one_of(st.sampled_from(TEXTS), st.text(max_size=12)))
    return draw(json_values)


@st.composite
def dialect_documents(draw: st.DrawFn) -> bytes:
    """A shipped dialect with 1-4 entries set, dropped or added (names the shipped dialects
    use, values mostly of the right kind), or any JSON, or any bytes."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "mutated", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    doc: dict[str, Any] = json.loads(json.dumps(DIALECTS[draw(st.sampled_from(BUILTIN))]))
    doc["name"] = draw(st.sampled_from(["fuzzed", "fuzzed", "fuzzed", "perfectpanel", ""]))
    if draw(st.booleans()):
        doc["extends"] = draw(st.sampled_from([*BUILTIN, "fuzzed", "nope"]))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(sorted(KNOWN)))
        section, name = path.split(".", 1)
        entries = doc.setdefault(section, {})
        if not isinstance(entries, dict):
            continue
        action = draw(st.sampled_from(["set", "set", "set", "drop"]))
        if action == "drop":
            entries.pop(name, None)
        else:
            entries[name] = _like(draw, draw(st.sampled_from(KNOWN[path])))
    return json.dumps(doc).encode()


@fuzz_settings()
@given(dialect=dialect_documents())
def test_any_dialect_file(tmp_path_factory: Any, dialect: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "dialect.json"
    path.write_bytes(dialect)
    try:
        load_dialect(path)  # what `smmkit serve --dialect FILE` checks before it starts
    except DialectError as exc:
        assert str(exc).strip()
        return
    _check_panel(Config(db=":memory:", clock="manual", dialect=str(path)))
