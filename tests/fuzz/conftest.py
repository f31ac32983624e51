"""The fuzz suite (issue 16 item 6): a short Hypothesis profile in every run, a long one by
hand with `pytest -m fuzz tests/fuzz` (SMMKIT_FUZZ_EXAMPLES overrides the long count).

Every test in this folder is marked `fuzz`; the profile is chosen once, before the test
modules are imported, from the marker expression."""

from __future__ import annotations

import os

import fuzzing
import pytest


def pytest_configure(config: pytest.Config) -> None:
    expression = (config.getoption("markexpr", "") or "").replace(" ", "")
    if "fuzz" in expression and "notfuzz" not in expression:
        fuzzing.EXAMPLES = int(os.environ.get("SMMKIT_FUZZ_EXAMPLES", "1000"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/fuzz/" in str(item.fspath):
            item.add_marker(pytest.mark.fuzz)
