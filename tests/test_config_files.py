"""Strict configuration: every mistake in an accounts or catalogue file is refused with a message
that names the file, the entry (index and key / service id) and the field; the control API's
account and service routes apply the same rules."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import requests
from jsonschema import Draft202012Validator
from smmkit.mock_server.core.config import Config
from smmkit.mock_server.core.config_files import ConfigError, load_accounts, load_catalog
from smmkit.mock_server.serving.server import start_background

from smmkit import schemas


def shipped(name: str):
    return json.loads(resources.files("smmkit.mock_server").joinpath("data", name).read_text())


SHIPPED_CATALOG = shipped("catalog.json")
GOOD = SHIPPED_CATALOG[0]  # service 1, a Default service


def write(tmp_path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), "utf-8")
    return str(path)


ACCOUNT_MISTAKES = [
    ({"key": "k1", "balanse": "10"}, "balanse", "did you mean 'balance'"),
    ({"key": "k1", "balance": "-1"}, "balance", "negative"),
    ({"key": "k1", "balance": -3}, "balance", "negative"),
    ({"key": "k1", "balance": 1.5}, "balance", "float"),
    ({"key": "k1", "balance": "ten"}, "balance", "not a decimal amount"),
    ({"key": "k1", "currency": "XYZ"}, "currency", "not an ISO 4217 currency code"),
    ({"key": "k1", "currency": "usd"}, "currency", "did you mean 'USD'"),
    ({"key": "k1", "currency": 840}, "currency", "ISO 4217"),
]


@pytest.mark.parametrize(("entry", "field", "problem"), ACCOUNT_MISTAKES)
def test_each_account_mistake_names_file_entry_and_field(tmp_path, entry, field, problem):
    path = write(tmp_path, "accounts.json", [{"key": "ok", "balance": "1"}, entry])
    with pytest.raises(ConfigError) as caught:
        load_accounts(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: entry 1 (key 'k1'): field '{field}': ")
    assert problem in message


def test_a_missing_or_empty_key_and_a_non_object_entry(tmp_path):
    path = write(tmp_path, "a.json", [{"balance": "1"}, {"key": ""}, "k3"])
    with pytest.raises(ConfigError) as caught:
        load_accounts(path)
    assert str(caught.value).splitlines() == [
        f"{path}: entry 0: field 'key': missing (required: an account needs a non-empty "
        "string key)",
        f"{path}: entry 1 (key ''): field 'key': '' must be non-empty text without surrounding "
        "spaces",
        f"{path}: entry 2: must be a JSON object, got a string",
    ]


def test_duplicate_keys_name_both_entries(tmp_path):
    path = write(tmp_path, "a.json", [{"key": "k"}, {"key": "j"}, {"key": "k"}])
    with pytest.raises(ConfigError, match=r"entry 2 \(key 'k'\): field 'key': duplicate key "
                                          r"'k' \(also entry 0\)"):
        load_accounts(path)


SERVICE_MISTAKES = [
    ({"spede": 5}, "spede", "unknown field; did you mean 'speed'?"),
    ({"refill": "yes"}, "refill", "'yes' is a string, expected true or false"),
    ({"rate": "-1"}, "rate", "'-1' is negative"),
    ({"rate": 0.9}, "rate", "float"),
    ({"min": 100, "max": 50}, "min", "100 is above max 50 (inconsistent limits)"),
    ({"min": -1}, "min", "-1 is below the minimum 0"),
    ({"speed": 0}, "speed", "0 is below the minimum 1"),
    ({"start_delay": "20"}, "start_delay", "'20' is a string, expected an integer"),
    ({"type": "Defualt"}, "type", "not a service type; did you mean 'Default'?"),
    ({"name": None}, "name", "None is null, expected a string"),
    ({"colour": "red"}, "colour", "unknown field; the fields are cancel, category, dripfeed"),
]


@pytest.mark.parametrize(("change", "field", "problem"), SERVICE_MISTAKES)
def test_each_catalogue_mistake_names_file_entry_and_field(tmp_path, change, field, problem):
    other = {**GOOD, "service": 2}
    path = write(tmp_path, "catalog.json", [other, {**GOOD, "service": 7, **change}])
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    assert str(caught.value).startswith(f"{path}: entry 1 (service 7): field '{field}': ")
    assert problem in str(caught.value)


def test_a_missing_field_and_duplicate_ids(tmp_path):
    nameless = {k: v for k, v in GOOD.items() if k != "name"}
    path = write(tmp_path, "c.json", [nameless])
    with pytest.raises(ConfigError, match=r"entry 0 \(service 1\): field 'name': missing"):
        load_catalog(path)
    path = write(tmp_path, "d.json", [GOOD, {**GOOD, "name": "again"}])
    with pytest.raises(ConfigError, match=r"entry 1 \(service 1\): field 'service': duplicate "):
        load_catalog(path)


def test_every_problem_of_a_file_is_listed_in_entry_order(tmp_path):
    path = write(tmp_path, "c.json", [{**GOOD, "service": 3, "min": 9, "max": 1},
                                      {**GOOD, "service": 4, "spede": 1, "refill": "yes"}])
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    assert [line.split(": field ")[1].split("'")[1] for line in str(caught.value).splitlines()] \
        == ["min", "refill", "spede"]


@pytest.mark.parametrize(("text", "where"), [
    ('[\n {"key": "k",\n', "line 3, column 1"),
    ('[{"key": "k", "balance": NaN}]', "not valid JSON"),
    ("", "line 1, column 1"),
])
def test_truncated_json_names_file_and_line(tmp_path, text, where):
    path = write(tmp_path, "broken.json", text)
    with pytest.raises(ConfigError) as caught:
        load_accounts(path)
    assert str(caught.value).startswith(f"{path}: ") and where in str(caught.value)


def test_a_document_that_is_not_a_list_and_bytes_that_are_not_utf8(tmp_path):
    path = write(tmp_path, "c.json", {"service": 1})
    with pytest.raises(ConfigError, match="must be a JSON list of services, got an object"):
        load_catalog(path)
    raw = tmp_path / "latin1.json"
    raw.write_bytes(b'[{"key": "caf\xe9"}]')
    with pytest.raises(ConfigError, match=rf"{raw}: not UTF-8 text"):
        load_accounts(raw)


def test_shipped_files_follow_their_published_schemas():
    # the shipped defaults are not checked at start-up (no jsonschema import): here instead
    assert schemas.index()["config"] == {"accounts": "config/accounts.json",
                                         "catalog": "config/catalog.json"}
    for kind, data in (("accounts", "accounts.json"), ("catalog", "catalog.json")):
        schema = schemas.load(f"config/{kind}")
        Draft202012Validator.check_schema(schema)
        Draft202012Validator(schema).validate(shipped(data))


def test_a_good_file_loads_exactly(tmp_path):
    path = write(tmp_path, "a.json", [{"key": "k", "balance": "12.50", "currency": "EUR"},
                                      {"key": "j", "balance": 3}])
    specs = load_accounts(path)
    assert [(s.key, str(s.balance), s.currency) for s in specs] == [
        ("k", "12.50", "EUR"), ("j", "3", "USD")]


@pytest.fixture(scope="module")
def server():
    running = start_background(Config(port=0, clock="manual", admin_token="t"))
    yield running
    running.stop()


@pytest.mark.parametrize(("method", "path", "body", "problem"), [
    ("POST", "/accounts", {"key": "n1", "balanse": "5"},
     "request body (key 'n1'): field 'balanse': unknown field; did you mean 'balance'?"),
    ("POST", "/accounts", {"key": "n2", "currency": "EURO"},
     "request body (key 'n2'): field 'currency': 'EURO' is not an ISO 4217 currency code; "
     "did you mean 'EUR'?"),
    ("POST", "/services", {**GOOD, "service": 901, "spede": 5},
     "request body (service 901): field 'spede': unknown field; did you mean 'speed'?"),
    ("POST", "/services", {**GOOD, "service": 902, "min": 9, "max": 1},
     "request body (service 902): field 'min': 9 is above max 1 (inconsistent limits)"),
    ("PATCH", "/accounts/smmkit-demo-key", {"currency": "XYZ"},
     "request body: field 'currency': 'XYZ' is not an ISO 4217 currency code"),
    ("PATCH", "/services/1", {"refill": "yes"},
     "request body: field 'refill': 'yes' is a string, expected true or false"),
])
def test_the_control_api_applies_the_same_rules(server, method, path, body, problem):
    before = requests.get(f"{server.url}/_control/services", headers={"Authorization": "Bearer t"})
    accounts = requests.get(f"{server.url}/_control/accounts",
                            headers={"Authorization": "Bearer t"}).json()
    response = requests.request(method, f"{server.url}/_control{path}", json=body,
                                headers={"Authorization": "Bearer t"}, timeout=10)
    assert (response.status_code, response.json()) == (400, {"error": problem})
    after = requests.get(f"{server.url}/_control/services", headers={"Authorization": "Bearer t"})
    assert after.json() == before.json()
    assert requests.get(f"{server.url}/_control/accounts",
                        headers={"Authorization": "Bearer t"}).json() == accounts
