"""The OpenAPI document generated from the schema files."""

from __future__ import annotations

import json

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
