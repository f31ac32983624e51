"""SQLite persistence: schema, connections and transactions. No HTTP, no domain rules.

One database file is shared by every thread and worker process: WAL journal, a connection per
thread (re-opened after fork), and write transactions taken with BEGIN IMMEDIATE so two writers
never interleave a read-modify-write of a balance. `synchronous=NORMAL` in WAL mode survives a
killed process (only an OS crash could lose the last commits).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
-- One row: the shared clock, and a catalogue version that tells every worker when its cached
-- copy of the services is stale. Read once per request.
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    anchor_wall REAL NOT NULL, anchor_panel REAL NOT NULL, speed REAL NOT NULL,
    frozen INTEGER NOT NULL, catalog_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, balance TEXT NOT NULL,
    currency TEXT NOT NULL, opening TEXT NOT NULL, topups TEXT NOT NULL DEFAULT '0',
    enabled INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS services (
    id INTEGER PRIMARY KEY, position INTEGER NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, service_id INTEGER NOT NULL,
    link TEXT NOT NULL, charge TEXT NOT NULL, refunded TEXT NOT NULL DEFAULT '0',
    total INTEGER NOT NULL, per_run INTEGER NOT NULL, runs INTEGER NOT NULL,
    interval REAL NOT NULL, created_at REAL NOT NULL, start_at REAL NOT NULL,
    unit_seconds REAL NOT NULL, outcome TEXT NOT NULL, delivered_final INTEGER NOT NULL,
    start_count INTEGER NOT NULL, cancel_at REAL,
    final_status TEXT, final_remains INTEGER, final_start_count INTEGER, final_at REAL,
    due_at REAL, params TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS orders_due ON orders(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_active_link
    ON orders(account_id, service_id, link) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_account ON orders(account_id);
CREATE TABLE IF NOT EXISTS refills (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, account_id INTEGER NOT NULL,
    created_at REAL NOT NULL, rejected INTEGER NOT NULL, forced_status TEXT
);
CREATE INDEX IF NOT EXISTS refills_order ON refills(order_id);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, at REAL NOT NULL,
    kind TEXT NOT NULL, amount TEXT NOT NULL, order_id INTEGER
);
CREATE INDEX IF NOT EXISTS ledger_account ON ledger(account_id);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, action TEXT NOT NULL, key TEXT,
    remaining INTEGER, probability REAL, seen INTEGER NOT NULL DEFAULT 0,
    params TEXT NOT NULL DEFAULT '{}'
);
"""


_FORKED: weakref.WeakSet[Any] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for owner in list(_FORKED):
        owner._forget_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


def forget_after_fork(owner: Any) -> None:
    """Call `owner._forget_connections()` in a forked child. Held weakly: a registration per
    object with os.register_at_fork would keep every store (and its open files) alive."""
    _FORKED.add(owner)


def default_db_path() -> Path:
    """`$XDG_DATA_HOME/smmkit/panel.db` (default `~/.local/share/smmkit/panel.db`)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "smmkit" / "panel.db"


class Store:
    """A handle on one SQLite database, safe to share between threads and forked workers."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._temporary = str(path) == ":memory:"
        if self._temporary:
            # A throw-away file rather than SQLite's :memory:, which every connection (thread,
            # worker process) would see as a different, empty database.
            handle, name = tempfile.mkstemp(prefix="smmkit-", suffix=".db")
            os.close(handle)
            self.path = Path(name)
        else:
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._owner_pid = os.getpid()
        # Throw-away files go when the store is collected or the owning process exits (a
        # finalizer holds no reference to the store, so stores do not pile up in tests).
        self._open_fds: list[int] = []
        self._cleanup = weakref.finalize(
            self, _cleanup_files, str(self.path) if self._temporary else None, self._open_fds,
            self._owner_pid)
        # A forked worker must not touch its parent's connections: give it fresh thread-locals
        # (cheaper than comparing os.getpid() on every query).
        forget_after_fork(self)
        self.connection().executescript(SCHEMA)

    @property
    def temporary(self) -> bool:
        return self._temporary

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30.0, cached_statements=256)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def _forget_connections(self) -> None:
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._lock_fd = None  # a flock is held per open file: the child opens its own

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: everything inside commits together or not at all.

        Threads of one process queue on a mutex first: SQLite's own busy handler sleeps in
        growing steps while it waits for the write lock, which turned short waits into
        half-second tails under load. Processes still meet at SQLite's lock."""
        db = self.connection()
        with self._write_lock, self._process_lock():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        """Worker processes queue on an flock of `<db>.lock`: the kernel wakes the next waiter
        as soon as the lock is free, where SQLite's busy handler polls with sleeps of up to
        100 ms (the second-long add tails of two workers under load)."""
        fd = self._lock_fd  # one per process: its threads already queue on _write_lock
        if fd is None:
            fd = self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            self._open_fds.append(fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        db = self.connection()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self._lock_fd = None
        self._cleanup()


TEMP_SUFFIXES = ("", "-wal", "-shm", ".lock", ".journal", ".journal-wal", ".journal-shm")


def _cleanup_files(temporary: str | None, fds: list[int], owner_pid: int) -> None:
    if os.getpid() != owner_pid:
        return  # a forked worker exiting must not delete the master's database
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()
    for suffix in TEMP_SUFFIXES if temporary else ():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{temporary}{suffix}")
