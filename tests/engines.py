"""The storage engine the tests run on: a pytest plugin (loaded from tests/conftest.py).

`SMMKIT_TEST_ENGINE=postgres python -m pytest tests/test_panel.py ...` runs the same tests on
PostgreSQL: every throw-away store the tests ask for (`--db :memory:`, the default of their
panels and servers) becomes a fresh schema of one throw-away PostgreSQL server started for the
session (tests/pg/cluster.py). Without the variable, or `sqlite`, nothing changes. Stores on a
file path stay SQLite in both runs.

Tests that need a store of their own on the engine under test — a `smmkit serve` process, a
restart, a store built twice — take the `store_db` fixture: an SQLite file in `tmp_path`, or a
fresh PostgreSQL schema. `query(store, sql, args)` runs a test's own SQL (written with `?`) on
either engine, and `table_rows(store)` reads every table of the panel. Tests about SQLite's
files by nature (a lock file, `--fresh`, WAL, a per-thread connection) carry `sqlite_only(why)`.

`SMMKIT_REQUIRE_POSTGRES=1` (set by .ci/run) turns "PostgreSQL is not installed" from a skip
into an error, so CI cannot pass without running the PostgreSQL tests.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
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


def sqlite_only(why: str) -> pytest.MarkDecorator:
    """Mark a test that is about SQLite's files by nature; `why` is said in the skip."""
    return pytest.mark.skipif(ENGINE == "postgres", reason=f"SQLite only: {why}")


def is_postgres_store(store: Any) -> bool:
    return str(getattr(store, "path", "")).startswith(("postgresql://", "postgres://"))


def placeholders(store: Any, sql: str) -> str:
    """A test's own SQL, written with SQLite's `?` placeholders, for `store`'s engine
    (psycopg writes them `%s`)."""
    return sql.replace("?", "%s") if is_postgres_store(store) else sql


def query(store: Any, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
    """The rows of a test's own read (`?` placeholders) on either engine."""
    return list(store.connection().execute(placeholders(store, sql), args).fetchall())


def table_rows(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the panel's store and its rows (sorted, so the order rows happen to be
    read in never matters). PostgreSQL's request journal is left out: on SQLite it lives in a
    file of its own, not in the store."""
    if is_postgres_store(store):
        names = [r[0] for r in query(store, "SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = current_schema() AND "
                                            "table_name <> 'journal'")]
        return {n: sorted((tuple(r) for r in query(store, f"SELECT * FROM {n}")), key=repr)
                for n in sorted(names)}
    with contextlib.closing(sqlite3.connect(store.path)) as db:  # a connection of our own
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: sorted(db.execute(f"SELECT * FROM {n}").fetchall(), key=repr)
                for n in sorted(names)}


_IN_PLACE_OF: dict[str, str] = {}


def engine_store(path: Any) -> Any:
    """The store to use where a test names the SQLite file `path` (or `:memory:`): `path`
    itself on SQLite; on PostgreSQL a fresh schema, the same one each time for the same path
    (a restarted server finds its store), a new one for each `:memory:`."""
    if ENGINE != "postgres":
        return path
    if str(path) == ":memory:":
        return fresh_url("m")
    if str(path) not in _IN_PLACE_OF:
        _IN_PLACE_OF[str(path)] = fresh_url("f")
    return _IN_PLACE_OF[str(path)]


@pytest.fixture
def store_db(tmp_path: Any) -> str:
    """A new store for one test on the engine under test: `tmp_path/panel.db`, or the URL of
    a fresh schema of the session's PostgreSQL server. Give it to `--db` or Config(db=...)."""
    return str(engine_store(tmp_path / "panel.db"))


@pytest.fixture
def serve_db() -> str:
    """`--db` for a `smmkit serve` process that needs no store of its own: `:memory:` (a
    throw-away SQLite file), or a fresh PostgreSQL schema (the plugin's swap of `:memory:`
    reaches only this process, not a server started as a subprocess)."""
    return str(engine_store(":memory:"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """The throw-away PostgreSQL server (skips, or fails under SMMKIT_REQUIRE_POSTGRES,
    when PostgreSQL is not installed)."""
    yield cluster()


@pytest.fixture
def pg_url(pg_cluster: Any) -> str:
    """A postgresql:// URL of a new, empty schema: one panel's database of its own."""
    return fresh_url("p")
