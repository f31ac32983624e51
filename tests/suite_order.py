"""The order in which xdist hands out the test files (see SLOWEST_FILES)."""

from __future__ import annotations

# The files that keep one xdist worker busy longest (`--dist loadfile` runs a file on one
# worker), longest first: collected first, so they are handed out first and the short files
# fill in around them (longest-processing-time-first). Without this xdist hands out files with
# the most tests first, and the few-but-slow files (browser, plugin, hostile panels) came last
# and set the wall time alone. Measured with `-n 0 --durations` (see pyproject's addopts); a
# file missing here only runs later, nothing else changes.
SLOWEST_FILES = (
    "tests/kit/test_plugin.py",
    "tests/browser/test_dashboard_browser.py",
    "tests/test_control_hardening.py",
    "tests/kit/test_hostile.py",
    "tests/test_hardening_input.py",
    "tests/kit/test_behaviour.py",
    "tests/test_openapi_served.py",
    "tests/test_hardening_connections.py",
    "tests/test_dashboard.py",
    "tests/test_serve_store.py",
    "tests/kit/test_defects.py",
    "tests/bridge/test_proxy.py",
    "tests/bridge/test_properties.py",
    "tests/test_journal.py",
    "tests/browser/test_dashboard_serve.py",
    "tests/test_serve_granian.py",
    "tests/kit/test_stateful_live.py",
)
