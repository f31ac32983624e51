r"""Self-contained copies of the schema files, for validators that resolve no references.

The shipped files refer to each other (`../_defs.json#/$defs/money`), which a plain
`jsonschema.validate(instance, schema)` cannot follow without a registry. A bundle is one
file's schema with every file it reaches embedded under its own `$defs` (key: the file's path,
e.g. `_defs.json`) and every `$ref` rewritten to a JSON pointer into the same document, so it
validates exactly what the original does and needs nothing else. Patterns ending in `$` end
in `(?![\s\S])` instead, which means end of string in Python's `re` as in ECMA-262.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from smmkit import schemas

# Keys whose values are maps of names, not schemas: a property called "$ref" is not a reference.
_NAME_MAPS = ("properties", "$defs", "dependentRequired", "patternProperties",
              "dependentSchemas")


def _key(file: str) -> str:
    """The `$defs` key an embedded file lives under ("/" would need escaping in a pointer)."""
    return file.replace("/", ".")


def _end_anchor(pattern: str) -> str:
    """A final `$` means end of string (ECMA-262), but Python's `re` — what plain jsonschema
    uses — also lets it match before a final newline. `(?![\\s\\S])` (no character follows)
    means end of string in both, so a bundle judges "5\\n" the same everywhere."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"(?![\s\S])"
    return pattern


def bundle(name: str) -> dict[str, Any]:
    """Schema `name` with every file it references embedded and every `$ref` made local."""
    root = schemas.load(name)
    root_file = root.pop("$id")
    embedded: dict[str, Any] = {}
    pending: list[str] = []

    def rewrite(node: Any, base: str) -> Any:
        if isinstance(node, list):
            return [rewrite(item, base) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref":
                target, _, fragment = urljoin(base, value).partition("#")
                if target == root_file:
                    out[key] = f"#{fragment}"
                else:
                    if target not in embedded and target not in pending:
                        pending.append(target)
                    out[key] = f"#/$defs/{_key(target)}{fragment}"
            elif key == "pattern" and isinstance(value, str):
                out[key] = _end_anchor(value)
            elif key in _NAME_MAPS and isinstance(value, dict):
                out[key] = {k: rewrite(v, base) for k, v in value.items()}
            else:
                out[key] = rewrite(value, base)
        return out

    result = rewrite(root, root_file)
    while pending:
        target = pending.pop()
        doc = schemas.load(target.removesuffix(".json"))
        doc.pop("$id")
        doc.pop("$schema", None)  # one dialect for the whole bundle: the root's
        embedded[target] = rewrite(doc, target)
    if embedded:
        result.setdefault("$defs", {})
        clash = set(result["$defs"]) & {_key(t) for t in embedded}
        if clash:
            raise schemas.SchemaError(f"{name}: $defs {sorted(clash)} clash with embedded files")
        result["$defs"].update({_key(t): doc for t, doc in sorted(embedded.items())})
    note = (f"Bundled from smmkit's {root_file}: every referenced file is embedded under $defs, "
            "so this file validates on its own.")
    result["$comment"] = f"{result['$comment']} {note}" if "$comment" in result else note
    return result
