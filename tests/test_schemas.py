"""schemas/: the files, the loader, request checks and export."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from smmkit import schemas

VALID_ADD = {
    "Default": {"link": "https://x.test/p/1", "quantity": "100"},
    "Package": {"link": "https://x.test/p/1"},
    "Custom Comments": {"link": "https://x.test/p/1", "comments": "nice\r\ngreat\n"},
    "Custom Comments Package": {"link": "https://x.test/p/1", "comments": "a\nb"},
    "Mentions": {"link": "https://x.test/p/1", "quantity": "10", "usernames": "alice\nbob"},
    "Mentions with Hashtags": {"link": "https://x.test/p/1", "quantity": "10",
                               "usernames": "alice\nbob", "hashtags": "#a\n#b"},
    "Mentions Custom List": {"link": "https://x.test/p/1", "usernames": "alice\r\nbob"},
    "Mentions Hashtag": {"link": "https://x.test/p/1", "quantity": "10", "hashtag": "#smm"},
    "Mentions User Followers": {"link": "https://x.test/p/1", "quantity": "10",
                                "username": "alice"},
    "Mentions Media Likers": {"link": "https://x.test/p/1", "quantity": "10",
                              "media": "https://x.test/p/2"},
    "Comment Likes": {"link": "https://x.test/p/1", "quantity": "10", "username": "alice"},
    "Comment Replies": {"link": "https://x.test/p/1", "username": "alice", "comments": "hi\nyo"},
    "Poll": {"link": "https://x.test/p/1", "quantity": "10", "answer_number": "2"},
    "Invites from Groups": {"link": "https://x.test/p/1", "quantity": "10", "groups": "g1\ng2"},
    "Subscriptions": {"username": "alice", "min": "10", "max": "20", "delay": "30",
                      "posts": "5", "old_posts": "2", "expiry": "31/12/2025"},
    "Web Traffic": {"link": "https://x.test/", "quantity": "100", "country": "US", "device": "3",
                    "type_of_traffic": "1", "google_keyword": "smm panel", "runs": "2",
                    "interval": "30"},
    "SEO": {"link": "https://x.test/", "quantity": "100", "keywords": "smm\npanel"},
    "Special": {"link": "https://x.test/", "quantity": "100", "list": "a,b", "suggest": "x"},
}


def add(service_type: str, **overrides: str | None) -> dict[str, str]:
    params = {"key": "k", "action": "add", "service": " 7 ", **VALID_ADD[service_type]}
    params.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in params.items() if v is not None}


@pytest.mark.parametrize("name", schemas.names())
def test_every_schema_is_valid_2020_12(name: str) -> None:
    doc = schemas.load(name)
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == f"{name}.json"  # relative ids: other languages resolve the same way


def test_index_points_at_existing_schemas() -> None:
    idx = schemas.index()
    paths = [idx["error"], idx["defs"], *idx["requests"].values(), *idx["add_types"].values()]
    for dialect in schemas.DIALECTS:
        for profile in schemas.PROFILES:
            for forms in idx["responses"][dialect][profile].values():
                paths += forms.values()
    assert set(p.removesuffix(".json") for p in paths) <= set(schemas.names())
    assert set(idx["add_types"]) == set(VALID_ADD)
    assert set(idx["requests"]) == set(schemas.ACTIONS)


@pytest.mark.parametrize("bad", ["response/nope", "../etc/passwd", "", "response//add", 42, "a b"])
def test_unknown_or_malformed_names_raise_naming_them(bad: object) -> None:
    with pytest.raises(schemas.SchemaError, match=repr(bad).replace(".", r"\.")):
        schemas.load(bad)  # type: ignore[arg-type]


def test_load_accepts_json_suffix_and_returns_fresh_copies() -> None:
    first = schemas.load("response/status-single")
    first["title"] = "mutated"
    assert schemas.load("response/status-single.json")["title"] != "mutated"
    names = schemas.names()
    names.clear()
    assert schemas.names()


@pytest.mark.parametrize(("call", "needle"), [
    (lambda: schemas.response_validator("status", "list"), "'list'"),
    (lambda: schemas.response_validator("nope", "single"), "'nope'"),
    (lambda: schemas.response_validator("add", "single", dialect="smm"), "'smm'"),
    (lambda: schemas.response_validator("add", "single", profile="lax"), "'lax'"),
    (lambda: schemas.request_validator("add", "Likes"), "'Likes'"),
    (lambda: schemas.request_validator("frobnicate"), "'frobnicate'"),
    (lambda: schemas.response_form("frobnicate", {}), "'frobnicate'"),
])
def test_unknown_lookups_raise_schema_error(call, needle: str) -> None:
    with pytest.raises(schemas.SchemaError, match=needle):
        call()


def test_validators_are_cached() -> None:
    validator = schemas.response_validator("add", "single")
    assert validator is schemas.response_validator("add", "single", profile="strict")
    assert schemas.request_validator("add", "SEO") is schemas.request_validator("add", "seo")


@pytest.mark.parametrize(("action", "params", "form"), [
    ("services", {}, "list"), ("cancel", {"orders": "1,2"}, "list"), ("add", {}, "single"),
    ("balance", {}, "single"), ("status", {"order": "1"}, "single"),
    ("status", {"orders": "1,2"}, "multi"), ("refill", {"order": "1"}, "single"),
    ("refill", {"orders": "1"}, "multi"), ("refill_status", {"refill": "1"}, "single"),
    ("refill_status", {"refills": "1,2"}, "multi"),
])
def test_response_form(action: str, params: dict[str, str], form: str) -> None:
    assert schemas.response_form(action, params) == form


@pytest.mark.parametrize("body", [b"<html>502</html>", "Too many requests", "", b"\xff\xfe",
                                  '{"balance": NaN}', "{\"balance\": "])
def test_non_json_bodies_are_violations(body: bytes | str) -> None:
    verdict = schemas.check_response("balance", "single", body)
    assert verdict.kind == "violation"
    assert verdict.strict_errors[0].startswith("$: body is not JSON")


def test_json_text_is_parsed_before_checking() -> None:
    body = '{"balance": "100.84292", "currency": "USD"}'
    assert schemas.check_response("balance", "single", body).kind == "conforms"
    assert schemas.check_response("balance", "single", body.encode()).kind == "conforms"


def test_messages_name_the_path_and_the_problem() -> None:
    body = {"charge": 0.27819, "start_count": "3572", "status": "Partial", "remains": "157",
            "currency": "USD"}
    verdict = schemas.check_response("status", "single", body)
    assert verdict.strict_errors == ("$.charge: 0.27819 is not of type 'string'",)
    assert verdict.kind == "deviation"
    multi = schemas.check_response("refill", "multi", [{"order": 1, "refill": "x"}])
    assert any(m.startswith("$[0].refill:") for m in multi.strict_errors)


def test_trailing_newline_does_not_pass_an_anchored_pattern() -> None:
    # Python's `$` matches before a final "\n"; JSON Schema's (ECMA-262) does not.
    verdict = schemas.check_response("balance", "single", {"balance": "1\n", "currency": "USD"})
    assert verdict.kind == "violation"


@pytest.mark.parametrize("service_type", sorted(VALID_ADD))
def test_valid_add_requests_conform_for_every_type(service_type: str) -> None:
    assert schemas.check_request(add(service_type), service_type) == []
    assert schemas.check_request(add(service_type)) == []  # the generic add schema


@pytest.mark.parametrize(("service_type", "overrides", "needle"), [
    ("Default", {"link": None}, "'link' is a required property"),
    ("Default", {"quantity": "ten"}, "$.quantity"),
    ("Default", {"runs": "3"}, "'interval' is a dependency of 'runs'"),
    ("Default", {"interval": "3"}, "'runs' is a dependency of 'interval'"),
    ("Package", {"quantity": "5"}, "$.quantity: '5' is not allowed here"),
    ("Custom Comments", {"comments": " \n "}, "$.comments"),
    ("Custom Comments", {"comments": "a\rb"}, "$.comments"),
    ("Mentions with Hashtags", {"hashtags": None}, "'hashtags' is a required property"),
    ("Poll", {"answer_number": None}, "'answer_number' is a required property"),
    ("Subscriptions", {"delay": "7"}, "$.delay"),
    ("Subscriptions", {"link": "https://x.test/"}, "$.link: 'https://x.test/' is not allowed here"),
    ("Subscriptions", {"quantity": "5"}, "$.quantity"),
    ("Subscriptions", {"expiry": "2025-12-31"}, "$.expiry"),
    ("Subscriptions", {"min": None}, "'min' is a required property"),
    ("Web Traffic", {"google_keyword": None}, "'google_keyword' is a required property"),
    ("Web Traffic", {"type_of_traffic": "2", "google_keyword": None},
     "'referring_url' is a required property"),
    ("Web Traffic", {"type_of_traffic": "4"}, "$.type_of_traffic"),
    ("Web Traffic", {"device": "6"}, "$.device"),
    ("Web Traffic", {"device": "0"}, "$.device"),
    ("SEO", {"keywords": None}, "'keywords' is a required property"),
    ("Special", {"list": None}, "'list' is a required property"),
    ("Default", {"key": None}, "'key' is a required property"),
])
def test_add_requests_missing_or_bad_fields_are_rejected(service_type, overrides, needle) -> None:
    problems = schemas.check_request(add(service_type, **overrides), service_type)
    assert any(needle in p for p in problems), problems


def test_web_traffic_referral_needs_no_keyword() -> None:
    params = add("Web Traffic", type_of_traffic="2", google_keyword=None,
                 referring_url="https://ref.test/")
    assert schemas.check_request(params, "Web Traffic") == []
    assert schemas.check_request(add("Web Traffic", type_of_traffic=" 3 ", google_keyword=None),
                                 "Web Traffic") == []


@pytest.mark.parametrize(("params", "ok"), [
    ({"key": "k", "action": "services"}, True),
    ({"key": "k", "action": "balance"}, True),
    ({"key": "k", "action": "status", "order": " 12 "}, True),
    ({"key": "k", "action": "status", "orders": "1, 2 ,3"}, True),
    ({"key": "k", "action": "status", "orders": ",".join(["1"] * 100)}, True),
    ({"key": "k", "action": "status", "orders": ",".join(["1"] * 101)}, False),
    ({"key": "k", "action": "status", "orders": "1,a"}, False),
    ({"key": "k", "action": "status"}, False),
    ({"key": "k", "action": "refill", "order": "1"}, True),
    ({"key": "k", "action": "refill_status", "refills": "1,2"}, True),
    ({"key": "k", "action": "refill_status", "refill": "-1"}, False),
    ({"key": "k", "action": "cancel", "orders": "1"}, True),
    ({"key": "k", "action": "cancel", "order": "1"}, True),
    ({"key": "k", "action": "cancel"}, False),
    ({"key": "", "action": "balance"}, False),
    ({"key": "k"}, False),
    ({"key": "k", "action": "frobnicate"}, False),
])
def test_requests_of_every_action(params: dict[str, str], ok: bool) -> None:
    assert (schemas.check_request(params) == []) is ok


def test_check_request_names_the_action_problem() -> None:
    assert schemas.check_request({"key": "k"}) == [
        f"$.action: None is not one of {list(schemas.ACTIONS)}"]


def test_export_writes_every_schema_equal_to_load(tmp_path) -> None:
    written = schemas.export(tmp_path)
    assert len(written) == len(schemas.names()) + 1  # + index.json
    for name in schemas.names():
        assert json.loads((tmp_path / f"{name}.json").read_text()) == schemas.load(name)
    assert json.loads((tmp_path / "index.json").read_text()) == schemas.index()


def test_exported_files_resolve_on_their_own(tmp_path) -> None:
    # Another implementation only needs the files: rebuild a registry from disk and validate.
    from referencing import Registry, Resource

    schemas.export(tmp_path)
    docs = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json") if p.name != "index.json"]
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)
    status = json.loads((tmp_path / "response/seed/status-multi.json").read_text())
    validator = Draft202012Validator(status, registry=registry)
    assert validator.is_valid({"1": {"error": "Incorrect order ID"}})
    assert not validator.is_valid({"1": {"error": ""}})
