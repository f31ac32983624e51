"""The OpenAPI document generated from the schema files."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from smmkit import schemas


@pytest.mark.parametrize("dialect", schemas.DIALECTS)
@pytest.mark.parametrize("profile", schemas.PROFILES)
def test_openapi_document_is_valid(dialect: str, profile: str) -> None:
    validate(schemas.openapi_document(dialect=dialect, profile=profile))


def test_operations_and_bodies() -> None:
    doc = schemas.openapi_document()
    assert doc["openapi"].startswith("3.1")
    path = doc["paths"]["/api/v2"]
    content = path["post"]["requestBody"]["content"]
    assert set(content) == {"application/x-www-form-urlencoded", "application/json"}
    request = doc["components"]["schemas"]["Request"]
    assert len(request["oneOf"]) == len(schemas.ACTIONS)
    assert request["discriminator"]["propertyName"] == "action"
    assert set(request["discriminator"]["mapping"]) == set(schemas.ACTIONS)
    query = {p["name"]: p for p in path["get"]["parameters"]}
    assert query["key"]["required"] and query["action"]["required"]
    assert {"order", "orders", "refills", "link", "quantity", "type_of_traffic"} <= set(query)
    response = doc["components"]["schemas"]["Response"]
    assert len(response["oneOf"]) == 11  # ten success shapes + the error body


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [
            r for v in node.values() for r in _refs(v)]
    return [r for v in node for r in _refs(v)] if isinstance(node, list) else []


def test_every_reference_is_local_and_resolves() -> None:
    doc = schemas.openapi_document(dialect="seed", profile="tolerant")
    refs = _refs(doc)
    assert refs and all(r.startswith("#/components/schemas/") for r in refs)
    assert {r.rsplit("/", 1)[1] for r in refs} <= set(doc["components"]["schemas"])
    assert '"$id"' not in json.dumps(doc)  # an $id would change the base of every local $ref


def _response_validator(doc: dict) -> Draft202012Validator:
    resource = Resource.from_contents(doc, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:doc", resource)
    return Draft202012Validator({"$ref": "urn:doc#/components/schemas/Response"}, registry=registry)


def test_response_schema_agrees_with_the_files() -> None:
    validator = _response_validator(schemas.openapi_document())
    good = [[], {"order": 1}, {"refill": "1"}, {"status": "Completed"}, {"error": "x"},
            {"balance": "1", "currency": "USD"}, [{"order": 2, "cancel": 1}],
            {"1": {"error": "Incorrect order ID"}}]
    bad = [{"order": "1"}, {"error": ""}, {"balance": 1.5, "currency": "USD"}, None]
    assert all(validator.is_valid(b) for b in good)
    assert not any(validator.is_valid(b) for b in bad)


def test_schemathesis_loads_the_document() -> None:
    st = pytest.importorskip("schemathesis")
    schema = st.openapi.from_dict(schemas.openapi_document())
    operations = [op.ok() for op in schema.get_all_operations()]
    assert {op.method.upper() for op in operations} == {"GET", "POST"}


# ------------------------------------------------------------ what Swagger UI and Schemathesis need


@pytest.mark.parametrize("part", ["api", "control", "all"])
@pytest.mark.parametrize("dialect", schemas.DIALECTS)
def test_every_part_is_valid_and_has_no_dialect_warning(part: str, dialect: str) -> None:
    doc = schemas.openapi_document(part=part, dialect=dialect, server_url="http://panel.test:9/")
    validate(doc)
    assert "jsonSchemaDialect" not in doc  # Swagger UI 5 warns about an explicit one
    assert doc["servers"][0]["url"] == "http://panel.test:9"


def _doc_validator(doc: dict, component: str) -> Draft202012Validator:
    resource = Resource.from_contents(doc, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:doc", resource)
    return Draft202012Validator({"$ref": f"urn:doc#/components/schemas/{component}"},
                                registry=registry)


@pytest.mark.parametrize("dialect", schemas.DIALECTS)
def test_examples_are_golden_and_valid(dialect: str) -> None:
    doc = schemas.openapi_document(dialect=dialect)
    post = doc["paths"]["/api/v2"]["post"]
    examples = post["responses"]["200"]["content"]["application/json"]["examples"]
    assert len(examples) > 10
    response = _doc_validator(doc, "Response")
    for name, example in examples.items():
        assert response.is_valid(example["value"]), name
    request = _doc_validator(doc, "Request")
    forms = post["requestBody"]["content"]["application/x-www-form-urlencoded"]["examples"]
    assert set(forms) == set(schemas.ACTIONS)
    for example in forms.values():
        assert request.is_valid(example["value"])
        assert schemas.check_request(example["value"]) == []
    assert "118882069640334683530275411866" not in json.dumps(doc)


def test_the_examples_file_is_the_conforming_golden_cases() -> None:
    from smmkit.schemas.openapi import examples

    golden = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "golden"
    expected = [{k: case[k] for k in ("description", "dialect", "action", "form", "body")}
                for path in sorted(golden.glob("*.json"))
                for case in json.loads(path.read_text()) if case["expected"]["strict"]]
    assert examples()["responses"] == expected


def test_the_control_api_is_described_with_its_bearer_scheme() -> None:
    from smmkit.mock_server.core.config import Config
    from smmkit.mock_server.web.app import create_app

    doc = schemas.openapi_document(part="control")
    assert doc["components"]["securitySchemes"]["adminToken"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"][
            "securitySchemes"]["adminToken"]["description"]}
    described = {(method.upper(), path) for path, item in doc["paths"].items()
                 for method in item}
    assert all(op["security"] == [{"adminToken": []}] for item in doc["paths"].values()
               for op in item.values())
    # every route the fake really has under /_control/ is described, and nothing else
    app = create_app(config=Config(clock="manual"))
    served = {(method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/_control")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert described == served
    account = doc["paths"]["/_control/accounts"]["post"]["requestBody"]["content"]
    assert account["application/json"]["schema"] == {
        "$ref": "#/components/schemas/config.accounts.account"}
