"""The suite's own set-up stays true: the slow-first order names files that exist, and the
bytecode cache lives under build/ (ignored by git), not beside the sources."""

from __future__ import annotations

import sys
from pathlib import Path

import bytecode_cache
from suite_order import SLOWEST_FILES

ROOT = Path(__file__).resolve().parents[1]


def test_every_slowest_file_exists_once() -> None:
    missing = [name for name in SLOWEST_FILES if not (ROOT / name).is_file()]
    assert missing == [], "renamed or removed: update SLOWEST_FILES in tests/suite_order.py"
    assert len(set(SLOWEST_FILES)) == len(SLOWEST_FILES)


def test_bytecode_goes_to_build_not_beside_the_sources() -> None:
    assert sys.pycache_prefix is not None and not sys.dont_write_bytecode
    prefix = Path(sys.pycache_prefix).resolve()
    assert prefix == bytecode_cache.PREFIX or not prefix.is_relative_to(ROOT)
    assert "build/" in (ROOT / ".gitignore").read_text().splitlines()
