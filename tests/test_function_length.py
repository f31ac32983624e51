"""No function in the installed package is longer than MAX_LINES: a long function is a room
that does several jobs, and the newcomer reading ARCHITECTURE.md should find each job in a
function of its own. Read from the source's syntax tree (so comments and docstrings inside a
function count, as a reader sees them), over every folder the `smmkit` package is built from.

`python tests/test_function_length.py` prints the longest functions, for the closing notes.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The folders mapped onto `smmkit.*` in pyproject.toml's [tool.setuptools.package-dir].
PACKAGE_DIRS = ("smmkit", "mock_server", "schemas", "contract_tests")
MAX_LINES = 60
# Known debt, each at its length when this test was written: it may shrink (then lower or drop
# the entry), never grow. Split them as their modules are next worked on.
KNOWN_LONG = {
    "mock_server/web/dashboard/__init__.py dashboard_blueprint": 215,  # a closure of every page
    "schemas/openapi_control.py control_paths": 93,
    "mock_server/serving/server.py _serve_granian": 67,
    "contract_tests/targets.py _fetch": 61,
}


@cache
def function_lengths() -> list[tuple[int, str]]:
    """Every function and method of the package as (lines, "path:line qualified.name"),
    longest first; a function nested in another counts in its parent's lines as well."""
    found: list[tuple[int, str]] = []
    for folder in PACKAGE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            _collect(tree, path.relative_to(ROOT).as_posix(), "", found)
    return sorted(found, reverse=True)  # a list, cached: callers only read it


def _collect(node: ast.AST, where: str, prefix: str, found: list[tuple[int, str]]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                lines = (child.end_lineno or child.lineno) - child.lineno + 1  # def to end
                found.append((lines, f"{where}:{child.lineno} {name}"))
            _collect(child, where, name + ".", found)
        else:
            _collect(child, where, prefix, found)


def test_the_scan_finds_the_package_functions() -> None:
    names = [name for _, name in function_lengths()]
    assert len(names) > 200  # the scan reads the whole package, not an empty folder
    assert any(name.endswith(" create_app") for name in names)


def _key(name: str) -> str:
    """"path:line name" without the line, so an edit above a function keeps its entry."""
    where, qualified = name.split(" ", 1)
    return f"{where.rsplit(':', 1)[0]} {qualified}"


def test_no_function_is_longer_than_the_limit() -> None:
    too_long = [f"{name}: {lines} lines" for lines, name in function_lengths()
                if lines > KNOWN_LONG.get(_key(name), MAX_LINES)]
    assert not too_long, f"longer than {MAX_LINES} lines (split by job): {too_long}"


def test_the_known_debt_is_still_owed() -> None:
    """An entry of KNOWN_LONG whose function was split (or renamed) is taken off the list, so
    the list only ever shrinks and a new long function cannot hide behind an old name."""
    lengths = {_key(name): lines for lines, name in function_lengths()}
    paid = [key for key in KNOWN_LONG if lengths.get(key, 0) <= MAX_LINES]
    assert not paid, f"remove from KNOWN_LONG (now within {MAX_LINES} lines): {paid}"


def test_the_control_api_has_no_long_function() -> None:
    """The control API was one 206-line closure; each resource group is now its own module."""
    control = [(lines, name) for lines, name in function_lengths()
               if name.startswith("mock_server/web/control/")]
    assert control and max(control)[0] <= 30, max(control)


if __name__ == "__main__":
    for lines, name in function_lengths()[: int(sys.argv[1]) if len(sys.argv) > 1 else 15]:
        print(f"{lines:5d}  {name}")
