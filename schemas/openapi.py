"""Generate the OpenAPI 3.1 document of /api/v2 (and of the fake's /_control/) from the JSON
Schema files. No `jsonSchemaDialect`: 3.1's default dialect is what Swagger UI and Schemathesis
expect (an explicit one makes Swagger UI 5 warn). Examples come from `_examples/openapi.json`,
the golden responses that conform.

Never hand-maintained: every schema object here is a schema file (or one of its `$defs`) with
its file-relative `$ref`s rewritten to `#/components/schemas/...`. Reads schemas only through
`schemas.load` and `schemas.index`.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from importlib import resources
from typing import Any
from urllib.parse import urljoin

from smmkit.schemas.openapi_control import CONTROL_ERROR, SECURITY_SCHEMES, control_paths

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
        self.extra: dict[str, Any] = {}  # hand-made components (Request, Response)
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


@functools.cache
def _examples_text() -> str:
    examples = resources.files("smmkit.schemas").joinpath("_examples")  # one name per joinpath
    return examples.joinpath("openapi.json").read_text("utf-8")


def examples() -> dict[str, Any]:
    """The examples file: request forms per action, and the golden responses that conform."""
    return json.loads(_examples_text())


def _response_examples(dialect: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for case in examples()["responses"]:
        if case["dialect"] == dialect:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "-", case["description"]).strip("-")
            found[name] = {"summary": case["description"], "value": case["body"]}
    found["error"] = {"summary": "any action: an error (HTTP 200 too)",
                      "value": {"error": "Incorrect request"}}
    return found


PARTS = ("all", "api", "control")


def build(*, dialect: str = "perfectpanel", profile: str = "strict",
          server_url: str | None = None, part: str = "api") -> dict[str, Any]:
    """The document: `part` "api" (/api/v2), "control" (/_control/) or "all" (both);
    `server_url` becomes the `servers` entry (default: the fake's default address)."""
    if dialect not in schemas.DIALECTS or profile not in schemas.PROFILES:
        raise schemas.SchemaError(f"unknown dialect/profile {dialect!r}/{profile!r}")
    if part not in PARTS:
        raise schemas.SchemaError(f"unknown part {part!r}; one of {', '.join(PARTS)}")
    builder = _Builder()
    paths: dict[str, Any] = {}
    if part in ("all", "api"):
        paths.update(_api_paths(builder, dialect, profile))
    if part in ("all", "control"):
        account = builder.ref("config/accounts", "/$defs/account")
        service = builder.ref("config/catalog", "/$defs/service")
        paths.update(control_paths(account, service))
    builder.convert_pending()
    components: dict[str, Any] = {"schemas": dict(sorted(builder.components.items()))}
    components["schemas"].update(builder.extra)
    tags = []
    if part in ("all", "api"):
        tags.append({"name": "api", "description": "The SMM panel API v2: one URL, `action` "
                     "picks the operation; errors are HTTP 200 with {\"error\": ...}."})
    if part in ("all", "control"):
        components["schemas"]["ControlError"] = CONTROL_ERROR
        components["securitySchemes"] = SECURITY_SCHEMES
        tags.append({"name": "control", "description": "The fake's control API: clock, "
                     "accounts, orders, catalogue, faults, journal, snapshots. Bearer token."})
    title = {"api": f"SMM panel API v2 ({dialect}, {profile})",
             "control": "smmkit fake panel: control API",
             "all": f"SMM panel API v2 ({dialect}, {profile}) and the smmkit control API"}[part]
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "2",
                 "description": "Generated by smmkit from its JSON Schemas."},
        "servers": [{"url": (server_url or DEFAULT_SERVER).rstrip("/"),
                     "description": "the fake panel (`smmkit serve`), or your panel's origin"}],
        "tags": tags,
        "paths": paths,
        "components": components,
    }


DEFAULT_SERVER = "http://127.0.0.1:8080"


def _api_paths(builder: _Builder, dialect: str, profile: str) -> dict[str, Any]:
    idx = schemas.index()
    request_names = {a: p.removesuffix(".json") for a, p in idx["requests"].items()}
    type_names = [p.removesuffix(".json") for p in idx["add_types"].values()]
    for name in [*request_names.values(), *type_names]:
        builder.ref(name)
    mapping = {a: _PREFIX + _component(n) for a, n in request_names.items()}
    builder.extra["Request"] = {
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

    # The canonical strict shapes are mutually exclusive, so oneOf holds; tolerant and seed
    # shapes overlap (e.g. the seed's multi refill answers like a single one).
    exclusive = dialect == "perfectpanel" and profile == "strict"
    builder.extra["Response"] = {"oneOf" if exclusive else "anyOf": [*successes, error]}

    responses = {"200": {
        "description": "Success or {\"error\": ...}; panels answer errors with HTTP 200 too.",
        "content": {"application/json": {"schema": {"$ref": _PREFIX + "Response"},
                                          "examples": _response_examples(dialect)}},
    }}
    requests = {action: {"summary": action, "value": form}
                for action, form in examples()["requests"].items()}
    body_ref = {"$ref": _PREFIX + "Request"}
    operation = {"responses": responses, "tags": ["api"]}
    return {"/api/v2": {
        "post": {**copy.deepcopy(operation), "operationId": "callPost",
                 "summary": "Call any action (form, JSON or multipart body)",
                 "requestBody": {"required": True, "content": {
                     "application/x-www-form-urlencoded": {"schema": body_ref,
                                                           "examples": requests},
                     "application/json": {"schema": body_ref, "examples": requests}}}},
        "get": {**copy.deepcopy(operation), "operationId": "callGet",
                "summary": "Call any action with query parameters",
                "parameters": parameters},
    }}
