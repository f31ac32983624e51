"""Generate the OpenAPI 3.1 document of /api/v2 from the JSON Schema files.

Never hand-maintained: every schema object here is a schema file (or one of its `$defs`) with
its file-relative `$ref`s rewritten to `#/components/schemas/...`. Reads schemas only through
`schemas.load` and `schemas.index`.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urljoin

from smmkit import schemas

_PREFIX = "#/components/schemas/"


def _component(name: str, fragment: str = "") -> str:
    """Component key of schema `name` (no `.json`), or of one of its top-level `$defs`."""
    base = name.replace("/", ".")
    if fragment in ("", "/"):
        return base
    if fragment.startswith("/$defs/") and fragment.count("/") == 2:
        return f"{base}.{fragment.removeprefix('/$defs/')}"
    raise schemas.SchemaError(f"cannot map $ref fragment {fragment!r} of {name!r} to a component")


class _Builder:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}
        self._pending: list[str] = []
        self._seen: set[str] = set()

    def ref(self, name: str, fragment: str = "") -> dict[str, str]:
        """A `$ref` to schema `name` (#fragment), queueing the file for conversion."""
        if name not in self._seen:
            self._seen.add(name)
            self._pending.append(name)
        return {"$ref": _PREFIX + _component(name, fragment)}

    def rewrite(self, node: Any, base: str) -> Any:
        """Copy of `node` with `$ref`s resolved against `base` (a file's `$id`) made local."""
        if isinstance(node, list):
            return [self.rewrite(item, base) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref":
                target, _, fragment = urljoin(base, value).partition("#")
                out[key] = self.ref(target.removesuffix(".json"), fragment)["$ref"]
            elif key in ("properties", "$defs", "dependentRequired", "patternProperties"):
                # maps whose keys are names, not keywords: never mistake a property for "$ref"
                out[key] = {k: self.rewrite(v, base) for k, v in value.items()}
            else:
                out[key] = self.rewrite(value, base)
        return out

    def convert_pending(self) -> None:
        while self._pending:
            name = self._pending.pop()
            doc = schemas.load(name)
            base = doc.pop("$id")
            doc.pop("$schema", None)
            for def_name, sub in doc.pop("$defs", {}).items():
                self.components[_component(name, f"/$defs/{def_name}")] = self.rewrite(sub, base)
            self.components[_component(name)] = self.rewrite(doc, base)


def _query_parameters(builder: _Builder, request_names: list[str]) -> list[dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {
        "key": {"name": "key", "in": "query", "required": True, "description": "API key",
                "schema": {"type": "string", "minLength": 1}},
        "action": {"name": "action", "in": "query", "required": True,
                   "schema": {"enum": list(schemas.ACTIONS)}},
    }
    for name in request_names:
        doc = schemas.load(name)
        for field, sub in doc.get("properties", {}).items():
            if field not in params and sub is not False:
                params[field] = {"name": field, "in": "query", "required": False,
                                 "schema": builder.rewrite(sub, doc["$id"])}
    return list(params.values())


def build(*, dialect: str = "perfectpanel", profile: str = "strict") -> dict[str, Any]:
    if dialect not in schemas.DIALECTS or profile not in schemas.PROFILES:
        raise schemas.SchemaError(f"unknown dialect/profile {dialect!r}/{profile!r}")
    idx = schemas.index()
    builder = _Builder()

    request_names = {a: p.removesuffix(".json") for a, p in idx["requests"].items()}
    type_names = [p.removesuffix(".json") for p in idx["add_types"].values()]
    for name in [*request_names.values(), *type_names]:
        builder.ref(name)
    mapping = {a: _PREFIX + _component(n) for a, n in request_names.items()}
    request = {
        "description": "Form fields of any action; `action` picks the variant.",
        "oneOf": [builder.ref(n) for n in request_names.values()],
        "discriminator": {"propertyName": "action", "mapping": mapping},
    }

    successes: list[dict[str, str]] = []
    for forms in idx["responses"][dialect][profile].values():
        for path in forms.values():
            builder.ref(path.removesuffix(".json"))
            success = builder.ref(path.removesuffix(".json"), "/$defs/success")
            if success not in successes:
                successes.append(success)
    error = builder.ref(idx["error"].removesuffix(".json"))
    parameters = _query_parameters(builder, list(request_names.values()))
    builder.convert_pending()

    # The canonical strict shapes are mutually exclusive, so oneOf holds; tolerant and seed
    # shapes overlap (e.g. the seed's multi refill answers like a single one).
    exclusive = dialect == "perfectpanel" and profile == "strict"
    body_schema = {"oneOf" if exclusive else "anyOf": [*successes, error]}
    components = dict(sorted(builder.components.items()))
    components["Request"] = request
    components["Response"] = body_schema

    responses = {"200": {
        "description": "Success or {\"error\": ...}; panels answer errors with HTTP 200 too.",
        "content": {"application/json": {"schema": {"$ref": _PREFIX + "Response"}}},
    }}
    body_ref = {"$ref": _PREFIX + "Request"}
    operation = {"responses": responses, "tags": ["api"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"SMM panel API v2 ({dialect}, {profile})", "version": "2",
                 "description": "Generated by smmkit from its JSON Schemas."},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": {"/api/v2": {
            "post": {**copy.deepcopy(operation), "operationId": "callPost",
                     "requestBody": {"required": True, "content": {
                         "application/x-www-form-urlencoded": {"schema": body_ref},
                         "application/json": {"schema": body_ref}}}},
            "get": {**copy.deepcopy(operation), "operationId": "callGet",
                    "parameters": parameters},
        }},
        "components": {"schemas": components},
    }
