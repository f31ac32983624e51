"""The documents stay true to the tree: every relative link in every Markdown file resolves (the
file, and the #anchor to a heading in it), ARCHITECTURE.md places every module, and every
section the code cites in docs/PROTOCOL.md exists.

Markdown is parsed with markdown-it-py (CommonMark, as GitHub reads it), so links inside code
blocks are not links and reference-style links count. Anchors follow GitHub's rule: the
heading's text, lower-cased, punctuation dropped, spaces turned into hyphens, `-1`, `-2`... for
repeats.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", "build", "dist", "__pycache__", ".hypothesis", ".mypy_cache", "node_modules",
             ".venv", "venv"}
# The folders that are installed as packages: ARCHITECTURE.md must place each of their modules.
PACKAGE_FOLDERS = ("smmkit", "mock_server", "schemas", "contract_tests")
_MD = MarkdownIt("commonmark").enable("table")


def markdown_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in root.rglob("*.md")
                  if not SKIP_DIRS & set(p.relative_to(root).parts)
                  and not any(part.endswith(".egg-info") for part in p.relative_to(root).parts))


def _inline_tokens(tokens: list[Token]) -> list[Token]:
    found = []
    for token in tokens:
        if token.children:
            found.extend(_inline_tokens(token.children))
        found.append(token)
    return found


def _text(token: Token) -> str:
    return "".join(child.content for child in token.children or []
                   if child.type in ("text", "code_inline"))


def slug(text: str) -> str:
    """GitHub's anchor for a heading text."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    tokens = _MD.parse(path.read_text("utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type != "heading_open":
            continue
        base = slug(_text(inline))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def links(path: Path) -> list[str]:
    """Every link and image target in a Markdown file, as written."""
    targets = []
    for token in _inline_tokens(_MD.parse(path.read_text("utf-8"))):
        if token.type == "link_open":
            targets.append(str(token.attrs.get("href", "")))
        elif token.type == "image":
            targets.append(str(token.attrs.get("src", "")))
    return targets


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """The relative links of `path` that lead nowhere, each with the reason."""
    broken = []
    for target in links(path):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:  # http:, https:, mailto: — not ours to check
            continue
        file_part = unquote(parts.path)
        if file_part.startswith("/"):  # GitHub reads a leading / as the repository root
            resolved = root / file_part.lstrip("/")
        else:
            resolved = (path.parent / file_part) if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no such file {resolved.relative_to(root) if resolved.is_relative_to(root) else resolved}")
            continue
        if parts.fragment:
            if resolved.suffix != ".md":
                continue  # line anchors (#L10) into code are GitHub's business
            if unquote(parts.fragment) not in anchors(resolved):
                broken.append(f"{target}: no heading #{parts.fragment} in {resolved.name}")
    return broken


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_link_check_catches_broken_links(tmp_path: Path) -> None:
    """Not vacuous: a missing file, a missing heading and a link to a renamed heading are caught;
    external links, code spans and code blocks are left alone."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## The control API: `/_control/`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Same\n\n## Same\n\n"
        "[ok](docs/other.md) [ok](docs/other.md#the-control-api-_control) [ok](#same-1)"
        " [ok](/docs/other.md) [ok](https://example.com/nowhere.md) `[no](gone.md)`\n\n"
        "```\n[no](also-gone.md)\n```\n\n"
        "[bad](docs/missing.md) [bad](docs/other.md#control-api) [bad][ref] [bad](#same-2)\n\n"
        "[ref]: ./nothing-here.md\n")
    assert broken_links(page, tmp_path) == [
        "docs/missing.md: no such file docs/missing.md",
        "docs/other.md#control-api: no heading #control-api in other.md",
        "./nothing-here.md: no such file nothing-here.md",
        "#same-2: no heading #same-2 in page.md",
    ]


def test_github_anchors() -> None:
    assert slug("1. Transport") == "1-transport"
    assert slug("The fake panel: `smmkit serve`") == "the-fake-panel-smmkit-serve"
    assert slug("Driving the fake: the control API") == "driving-the-fake-the-control-api"


def test_architecture_places_every_module() -> None:
    """A newcomer can look up any module in ARCHITECTURE.md's file map and find its layer."""
    architecture = ROOT / "ARCHITECTURE.md"
    linked = {(architecture.parent / unquote(urlsplit(t).path)).resolve()
              for t in links(architecture) if not urlsplit(t).scheme}
    modules = sorted(path.relative_to(ROOT).as_posix()
                     for folder in PACKAGE_FOLDERS for path in (ROOT / folder).rglob("*.py")
                     if "__pycache__" not in path.parts)
    missing = [m for m in modules if (ROOT / m).resolve() not in linked]
    assert missing == [], "add these to the file map of ARCHITECTURE.md"


def _cited_sections() -> list[tuple[str, int]]:
    cited = []
    for folder in (*PACKAGE_FOLDERS, "tests", "bench"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".json", ".md") and "__pycache__" not in path.parts:
                for match in re.finditer(r"PROTOCOL\.md §(\d+)", path.read_text("utf-8")):
                    cited.append((path.relative_to(ROOT).as_posix(), int(match.group(1))))
    return cited


def test_cited_protocol_sections_exist() -> None:
    sections = {int(m) for m in re.findall(r"(?m)^## (\d+)\. ",
                                           (ROOT / "docs" / "PROTOCOL.md").read_text("utf-8"))}
    cited = _cited_sections()
    assert cited, "the code cites the protocol by section"
    assert [c for c in cited if c[1] not in sections] == []


def test_the_protocol_is_cited_where_it_is() -> None:
    """The protocol reference is docs/PROTOCOL.md in the repository, not a file beside it."""
    stray = []
    for folder in (*PACKAGE_FOLDERS, "tests", "bench"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".json", ".md") and "__pycache__" not in path.parts \
                    and path != Path(__file__).resolve():  # this file names it to find it
                text = path.read_text("utf-8")
                stray += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
                          for m in re.finditer(r"PROTOCOL\.md", text)
                          if text[max(0, m.start() - 5):m.start()] != "docs/"
                          and text[max(0, m.start() - 2):m.start()] != "]("]  # a link: checked above
    assert stray == [], "cite it as docs/PROTOCOL.md"
