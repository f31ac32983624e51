"""The import rule of ARCHITECTURE.md, read from the source: a layer imports only the layers
below it, the core knows no HTTP, the fake never imports the kit, and the contract imports
neither. Imports inside functions count too (they are still dependencies)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Repository folder -> the import name it is installed under (pyproject's package-dir).
FOLDERS = {"smmkit": "smmkit", "mock_server": "smmkit.mock_server", "schemas": "smmkit.schemas",
           "contract_tests": "smmkit.contract_tests"}
# The fake's layers, lowest first: each may import its own layer and the ones before it.
LAYERS = ("storage", "core", "web", "serving")
HTTP_AND_CLI = {"flask", "werkzeug", "requests", "click", "gunicorn", "granian", "urllib3",
                "http", "socket", "aiohttp", "httpx"}
KIT_ONLY = {"hypothesis", "faker"}
# The kit may start the fake for users (the pytest plugin) through its public face, nothing else.
FAKE_FACE = {"smmkit.mock_server", "smmkit.mock_server.serving.server",
             "smmkit.mock_server.core.config", "smmkit.mock_server.client.control"}
# Debt being paid off. Nothing may be added here.
KNOWN_DEBT: dict[str, set[str]] = {}


def modules() -> dict[str, Path]:
    found = {}
    for folder, name in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([name, *parts])] = path
    return found


def imports_of(path: Path, module: str) -> set[str]:
    """Every module `path` imports, as absolute dotted names."""
    tree = ast.parse(path.read_text("utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["smmkit", "mock_server"] and len(parts) > 2:
        return "serving" if parts[2] == "__main__" else parts[2]  # `python -m` serves
    return None


MODULES = modules()


def known(name: str) -> bool:
    """Keep names of modules (not `from x import function`) and third-party roots."""
    return name in MODULES or not name.startswith("smmkit")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("smmkit.mock_server")))
def test_the_fake_imports_downwards_only(module: str) -> None:
    here = layer_of(module)
    imported = {n for n in imports_of(MODULES[module], module) if known(n)}
    assert not {n for n in imported if n.startswith("smmkit.contract_tests")
                or n.split(".")[0] in KIT_ONLY}, "the fake must not import the kit"
    if here in ("core", "storage"):
        http = {n for n in imported if n.split(".")[0] in HTTP_AND_CLI}
        assert not http, f"the {here} layer must know no HTTP or CLI: {sorted(http)}"
    for name in imported:
        there = layer_of(name)
        if there is None or there == here or here is None:
            continue
        if here == "client" or there == "client":
            assert here != "client", f"the client imports nothing of the fake: {name}"
            continue
        assert here in LAYERS and there in LAYERS, f"{module} -> {name}: unknown layer"
        assert LAYERS.index(there) <= LAYERS.index(here), \
            f"{module} ({here}) imports {name} ({there}), a layer above it"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("smmkit.schemas")))
def test_the_contract_imports_neither_fake_nor_kit(module: str) -> None:
    imported = {n for n in imports_of(MODULES[module], module) if known(n)}
    bad = {n for n in imported if n.startswith(("smmkit.mock_server", "smmkit.contract_tests"))}
    assert not bad


@pytest.mark.parametrize("module", sorted(m for m in MODULES
                                          if m.startswith("smmkit.contract_tests")))
def test_the_kit_reads_the_contract_not_the_fakes_internals(module: str) -> None:
    imported = {n for n in imports_of(MODULES[module], module) if known(n)}
    fake = {n for n in imported if n.startswith("smmkit.mock_server")}
    assert fake <= FAKE_FACE | KNOWN_DEBT.get(module, set()), f"the kit may start the fake, not read its internals: {fake}"


def test_the_root_cli_imports_neither_part_at_import_time() -> None:
    tree = ast.parse((ROOT / "smmkit" / "cli.py").read_text("utf-8"))
    top_level = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)} | {
        a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert not {n for n in top_level if n and n.startswith(("smmkit.mock_server",
                                                              "smmkit.contract_tests"))}


def test_every_layer_folder_is_a_package_the_rule_knows() -> None:
    folders = {p.name for p in (ROOT / "mock_server").iterdir()
               if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {*LAYERS, "client"}


def test_a_layer_violation_is_caught(tmp_path: Path) -> None:
    """The rule is not vacuous: a core module importing the web edge or Flask is seen."""
    bad = tmp_path / "panel.py"
    bad.write_text("from flask import request\nfrom ..web import api\n")
    imported = imports_of(bad, "smmkit.mock_server.core.panel")
    assert "flask" in imported and "smmkit.mock_server.web.api" in imported
    assert LAYERS.index(layer_of("smmkit.mock_server.web.api") or "") > LAYERS.index("core")
