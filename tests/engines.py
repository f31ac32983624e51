"""The storage engine the tests run on: a pytest plugin (loaded from tests/conftest.py).

`SMMKIT_TEST_ENGINE=postgres python -m pytest tests/test_panel.py ...` runs the same tests on
PostgreSQL: every throw-away store the tests ask for (`--db :memory:`, the default of their
panels and servers) becomes a fresh schema of one throw-away PostgreSQL server started for the
session (tests/pg/cluster.py). Without the variable, or `sqlite`, nothing changes. Stores on a
file path stay SQLite in both runs: those tests are about SQLite's files.

`SMMKIT_REQUIRE_POSTGRES=1` (set by .ci/run) turns "PostgreSQL is not installed" from a skip
into an error, so CI cannot pass without running the PostgreSQL tests.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

ENGINE = os.environ.get("SMMKIT_TEST_ENGINE", "sqlite").strip().lower() or "sqlite"
REQUIRED = os.environ.get("SMMKIT_REQUIRE_POSTGRES", "") not in ("", "0")
_cluster: Any = None
_numbers = itertools.count(1)
SKIPPED: list[str] = []


def missing_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    from pg.cluster import binaries

    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    if binaries() is None:
        return ("PostgreSQL is not installed (no initdb; `apt-get install postgresql`); "
                "set SMMKIT_REQUIRE_POSTGRES=1 to make this an error")
    return None


def cluster() -> Any:
    """The session's throw-away PostgreSQL server (started on first use), or a skip."""
    global _cluster
    if _cluster is None:
        reason = missing_reason()
        if reason is not None:
            if REQUIRED:
                pytest.fail(f"SMMKIT_REQUIRE_POSTGRES is set but {reason}", pytrace=False)
            SKIPPED.append(reason)
            pytest.skip(reason)
        from pg.cluster import Cluster

        _cluster = Cluster()
    return _cluster


def fresh_url(label: str = "t") -> str:
    """A URL whose search_path is a new, empty schema of the session's server."""
    import psycopg

    server = cluster()
    name = f"{label}{next(_numbers)}_{os.getpid()}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{server.url}?options={quote(f'-csearch_path={name}')}"


def _open_store(url: str, *, migrate: bool = True) -> Any:
    if str(url) == ":memory:":
        url = fresh_url()
    return _real_open_store(url, migrate=migrate)


_real_open_store: Any = None


def pytest_configure(config: pytest.Config) -> None:
    global _real_open_store
    if ENGINE == "sqlite":
        return
    if ENGINE != "postgres":
        raise pytest.UsageError(f"SMMKIT_TEST_ENGINE={ENGINE!r}: sqlite or postgres")
    from smmkit.mock_server.core import config as core_config
    from smmkit.mock_server.storage import engines

    _real_open_store = engines.open_store
    engines.open_store = core_config.open_store = _open_store  # type: ignore[assignment]


def pytest_report_header(config: pytest.Config) -> str:
    return f"smmkit storage engine: {ENGINE}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many PostgreSQL tests were skipped and why (with xdist the skips happened in
    the workers, so the reason is asked again here)."""
    reason = missing_reason()
    if reason is None:
        return
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if reason in str(getattr(r, "longrepr", ""))]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} PostgreSQL tests skipped: {reason}",
                                    yellow=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _cluster
    if _cluster is not None:
        _cluster.destroy()
        _cluster = None


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """The throw-away PostgreSQL server (skips, or fails under SMMKIT_REQUIRE_POSTGRES,
    when PostgreSQL is not installed)."""
    yield cluster()


@pytest.fixture
def pg_url(pg_cluster: Any) -> str:
    """A postgresql:// URL of a new, empty schema: one panel's database of its own."""
    return fresh_url("p")
