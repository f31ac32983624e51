"""PostgreSQL persistence: the same Store interface as sqlite.py, so several `smmkit serve`
processes on several hosts share one panel. No HTTP, no domain rules.

- `transaction()`: a write transaction that first takes one transaction-scoped advisory lock
  (per schema), PostgreSQL's equivalent of SQLite's BEGIN IMMEDIATE: writers run one at a time
  across every server on the database, so each check-then-write of the core (enough money, no
  active order on the link, the next id) is decided on the state the previous writer
  committed. Readers never wait for it.
- `snapshot()`: a REPEATABLE READ, READ ONLY transaction: every query sees one committed state.
- `connection()`: for a lone read; each statement borrows a pooled connection (autocommit)
  and gives it back at once, so no thread pins a connection between requests.

Connections come from a psycopg_pool pool, opened lazily in each process: a forked worker
builds its own pool, and the parent closes its pool before forking, so no two processes ever
share a socket. A database that cannot be reached — down, restarting, a dropped connection —
raises `StoreUnavailable` (the panel answers 503); a connection found dead is replaced and the
statement retried when nothing of it can have run, so service resumes by itself when the
database is back.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool
from smmkit.mock_server.storage import postgres_schema, postgres_tables
from smmkit.mock_server.storage.errors import StoreUnavailable
from smmkit.mock_server.storage.schema import SchemaTooNew
from smmkit.mock_server.storage.sqlite import StoreError

POOL_SIZE = 16  # connections per process: one per serving thread (`--threads` 16)
WAIT_SECONDS = 2.0  # how long a request waits for a connection before answering 503
CONNECT_SECONDS = 5
RETRIES = POOL_SIZE + 1  # a restart leaves every idle pooled connection dead: try past them all


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


@lru_cache(maxsize=64)
def _row_class(names: tuple[str, ...]) -> type:
    index = {name: at for at, name in enumerate(names)}

    class Row(tuple):  # type: ignore[type-arg]
        """A row read by column name (`row["id"]`) or position, like sqlite3.Row."""

        __slots__ = ()

        def __getitem__(self, key: Any) -> Any:
            if isinstance(key, str):
                return tuple.__getitem__(self, index[key])
            return tuple.__getitem__(self, key)

        def keys(self) -> list[str]:
            return list(names)

    return Row


def row_factory(cursor: Any) -> Any:
    if cursor.description is None:
        return tuple
    cls = _row_class(tuple(c.name for c in cursor.description))
    return cls


def _dead(conn: psycopg.Connection[Any]) -> bool:
    return bool(conn.closed or conn.broken)


class _Result:
    """A finished statement's rows, for lone statements whose connection went back already."""

    def __init__(self, rows: list[Any], rowcount: int, description: Any) -> None:
        self._rows, self.rowcount, self.description = rows, rowcount, description

    def fetchall(self) -> list[Any]:
        return self._rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None


class LoneStatements:
    """What `connection()` returns: each `execute` runs on a pooled connection in autocommit
    mode and returns its rows already fetched. Reads only are retried on a dead connection."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def execute(self, sql: str, args: Sequence[Any] = ()) -> _Result:
        for attempt in range(RETRIES):
            with self._store._borrow() as conn:
                try:
                    cur = conn.execute(sql, args or None)
                    rows = cur.fetchall() if cur.description is not None else []
                    return _Result(rows, cur.rowcount, cur.description)
                except psycopg.OperationalError as exc:
                    if not _dead(conn) or attempt == RETRIES - 1:
                        raise StoreUnavailable(describe(self._store.path, exc)) from None
        raise AssertionError("unreachable")

    def cursor(self) -> Any:
        raise TypeError("executemany runs inside store.transaction()")


_STORES: weakref.WeakSet[PostgresStore] = weakref.WeakSet()


def _before_fork() -> None:
    for store in list(_STORES):
        store._close_pool()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_pool()


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


class PostgresStore:
    """A handle on one PostgreSQL database (its `search_path` schema), shared by threads,
    worker processes and hosts."""

    temporary = False

    def __init__(self, url: str, *, migrate: bool = True, pool_size: int = POOL_SIZE) -> None:
        self.path = url  # what a worker process reopens; print `display`, never this
        self.closed = False  # set by close(): background threads (the booker) stop using it
        self.display = redacted(url)
        self.ops = postgres_tables
        self._pool_size = pool_size
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._lone = LoneStatements(self)
        _STORES.add(self)
        self._finalizer = weakref.finalize(self, _close, [None])
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_SECONDS) as conn:
                self.found_version = postgres_schema.ensure_current(conn, migrate=migrate)
                # As on SQLite: the id sequences move past rows written around the store.
                with conn.transaction():
                    conn.execute(postgres_schema.WRITE_LOCK)
                    postgres_tables.advance_sequences(conn)
        except (psycopg.Error, SchemaTooNew, postgres_schema.SchemaBehind) as exc:
            raise StoreError(describe(self.display, exc)) from None

    # ------------------------------------------------------------ the pool, per process

    def _get_pool(self) -> psycopg_pool.ConnectionPool:
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                pool = self._pool
                if pool is None:
                    pool = psycopg_pool.ConnectionPool(
                        self.path, min_size=1, max_size=self._pool_size, open=False,
                        timeout=WAIT_SECONDS, reconnect_timeout=365 * 86400.0,
                        kwargs={"autocommit": True, "row_factory": row_factory,
                                "connect_timeout": CONNECT_SECONDS},
                        name="smmkit")
                    pool.open(wait=False)
                    self._pool = pool
                    self._finalizer.detach()
                    self._finalizer = weakref.finalize(self, _close, [pool])
        return pool

    def _close_pool(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.close(timeout=2)

    def _forget_pool(self) -> None:
        """In a forked child: the parent closed its pool before forking; start afresh."""
        self._pool = None
        self._pool_lock = threading.Lock()

    @contextmanager
    def _borrow(self) -> Iterator[psycopg.Connection[Any]]:
        pool = self._get_pool()
        try:
            conn = pool.getconn()
        except (psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed):
            pool = self._renew_pool(pool)
            try:
                conn = pool.getconn()
            except (psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed):
                raise StoreUnavailable(f"the database {self.display} cannot be reached (no "
                                       f"connection within {WAIT_SECONDS:g} s)") from None
        try:
            yield conn
        finally:
            pool.putconn(conn)  # a dead or mid-transaction one is discarded

    def _renew_pool(self, stale: psycopg_pool.ConnectionPool) -> psycopg_pool.ConnectionPool:
        """After an outage the pool retries connecting with growing pauses (seconds, then
        more): when a direct connection shows the database is back, a fresh pool replaces it
        at once. While the database is still away this fails fast with StoreUnavailable."""
        try:
            psycopg.connect(self.path, connect_timeout=CONNECT_SECONDS).close()
        except psycopg.Error as exc:
            raise StoreUnavailable(describe(self.display, exc)) from None
        with self._pool_lock:
            if self._pool is stale:
                self._pool = None
        threading.Thread(target=_close, args=([stale],), daemon=True).start()
        return self._get_pool()

    # ------------------------------------------------------------ the Store interface

    def ensure_clean(self) -> None:
        """Nothing to end: no transaction outlives its `with` block here (each borrows its
        connection and the pool rolls back whatever one is handed back open)."""

    def connection(self) -> LoneStatements:
        return self._lone

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A write transaction under the write lock: all of it commits, or none of it."""
        with self._begun("BEGIN; " + postgres_schema.WRITE_LOCK) as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[psycopg.Connection[Any]]:
        """A read transaction: every query inside sees the same committed state."""
        with self._begun("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") as conn:
            yield conn

    @contextmanager
    def _begun(self, begin: str) -> Iterator[psycopg.Connection[Any]]:
        for attempt in range(RETRIES):  # nothing has run yet: a dead connection is retried
            with self._borrow() as conn:
                try:
                    conn.execute(begin)
                except psycopg.OperationalError as exc:
                    if not _dead(conn) or attempt == RETRIES - 1:
                        raise StoreUnavailable(describe(self.display, exc)) from None
                    continue
                try:
                    yield conn
                    conn.execute("COMMIT")
                except psycopg.OperationalError as exc:
                    _rollback(conn)
                    raise StoreUnavailable(describe(self.display, exc)) from None
                except BaseException:
                    _rollback(conn)
                    raise
                return

    def close(self) -> None:
        self.closed = True
        self._close_pool()
        _STORES.discard(self)


def _rollback(conn: psycopg.Connection[Any]) -> None:
    if not _dead(conn):
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")


def _close(holder: list[Any]) -> None:
    pool = holder[0]
    if pool is not None:
        with contextlib.suppress(Exception):
            pool.close(timeout=2)


def describe(where: str, exc: BaseException) -> str:
    """One line that names the database, what is wrong and what to do."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, SchemaTooNew):
        return (f"{where} was written by a newer smmkit ({text}): upgrade smmkit or pick "
                "another --db")
    if isinstance(exc, postgres_schema.SchemaBehind):
        return f"{where} is at {text}"
    if isinstance(exc, psycopg.OperationalError):
        return f"the database {where} cannot be reached ({text}); check that it is running"
    return f"cannot use the database {where}: {text}"
