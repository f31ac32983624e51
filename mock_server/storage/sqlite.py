"""SQLite persistence: schema, connections and transactions. No HTTP, no domain rules.

One database file is shared by every thread and worker process: WAL journal, a connection per
thread (re-opened after fork), and write transactions taken with BEGIN IMMEDIATE so two writers
never interleave a read-modify-write of a balance. `synchronous=NORMAL` in WAL mode survives a
killed process (only an OS crash could lose the last commits).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import sqlite3
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from smmkit.mock_server.storage import checkpoints, schema, tables, wal_index
from smmkit.mock_server.storage.schema import SchemaTooNew

_SERIALS = itertools.count(1)  # every connection opened in this process, numbered

SCHEMA = schema.TABLES  # kept for readers of 0.1's name


class StoreError(OSError):
    """The store's file cannot be used; the message names the file and what to do. An OSError,
    so `smmkit serve` prints it as one line like any other start-up failure of the machine."""

_FORKED: weakref.WeakSet[Any] = weakref.WeakSet()


def _before_fork() -> None:
    """Close the forking thread's idle connections: SQLite must not carry a connection's
    state across fork(), and a child that reused the parent's shared-memory node never took the
    lock by which other processes know it is alive (it relied on the parent's). The parent
    opens new ones on its next query."""
    for owner in list(_FORKED):
        owner._close_before_fork()


def _after_fork_in_child() -> None:
    for owner in list(_FORKED):
        owner._forget_connections()


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def close_idle(local: threading.local) -> None:
    """Close the connection in `local.conn` unless it is inside a transaction."""
    conn = getattr(local, "conn", None)
    if conn is not None and not conn.in_transaction:
        local.conn = None
        with contextlib.suppress(sqlite3.Error):
            conn.close()


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
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder {self.path.parent} for the store "
                                 f"{self.path}: {exc.strerror}; create it or pick another "
                                 "--db") from None
        self._local = threading.local()
        self.closed = False  # set by close(): background threads stop using the store
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
        self.ops = tables  # the named operations over this engine's tables (see tables.py)
        self._checkpointer = checkpoints.checkpointer_for(self)
        try:
            _check_not_truncated(self.path)
            self.found_version = schema.ensure_current(self.connection())
            # Proves the file, its folder and the lock file writable, and moves the id sequences
            # past rows written around the store (bench/populate.py bulk-inserts orders).
            with self.transaction() as db:
                tables.advance_sequences(db)
        except (sqlite3.Error, SchemaTooNew, OSError) as exc:
            self.close()
            raise StoreError(describe_failure(self.path, exc)) from None

    @property
    def temporary(self) -> bool:
        return self._temporary

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30.0, cached_statements=256)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints.py: off the request path
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
            self._local.serial = next(_SERIALS)
            self._local.commits = 0
            self._local.shm, self._local.shm_tried = None, False
            self._local.seen_head = None
            self._local.seen_version = None
        return conn

    def epoch(self) -> tuple[int, int, int]:
        """What changes whenever the database may have: this thread's connection, SQLite's
        data_version (moved by any other connection's commit) and this connection's own
        commits. Equal epochs: the same committed state (read_cache.py relies on it).

        `PRAGMA data_version` costs more than the rest of a cached `balance`, so it is asked
        only when the WAL-index header has moved: the first 48 bytes of `<db>-shm`, which
        every commit rewrites (a new last frame, new checksums; new salts when the WAL
        restarts) — SQLite's own readers decide from it whether their snapshot is current
        (https://sqlite.org/walformat.html#the_wal_index_file_format). The header is read
        from SQLite's own mapping of the file (wal_index.py says why never through a file
        handle of ours); two copies that differ mean a commit under way, and the PRAGMA
        decides."""
        local = self._local
        conn = self.connection()
        index = local.shm
        head = index.header() if index is not None else None
        if head is not None and head == local.seen_head:
            return (local.serial, local.seen_version, local.commits)
        version = conn.execute("PRAGMA data_version").fetchall()[0][0]
        if index is None and not local.shm_tried:
            index = self._wal_index(conn)
            head = index.header() if index is not None else None
        local.seen_head, local.seen_version = head, version
        return (local.serial, version, local.commits)

    def _wal_index(self, conn: sqlite3.Connection) -> wal_index.WalIndex | None:
        """SQLite's mapping of this database's WAL index, found on first use."""
        local = self._local
        if local.shm is None and not local.shm_tried:
            # a read first: from then on this connection holds SQLite's mapping open
            conn.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()
            local.shm, local.shm_tried = wal_index.find(self.path), True
        return local.shm  # type: ignore[no-any-return]

    def _after_commit(self, conn: sqlite3.Connection) -> None:
        """Count the commit; wake the checkpoint thread once the WAL is long (read from the
        WAL-index header, steady while the write lock is held)."""
        local = self._local
        local.commits += 1
        try:
            index = self._wal_index(conn)
        except sqlite3.Error:  # committed already: never a failure of the transaction
            index = None
        head = index.header() if index is not None else None
        due = (checkpoints.frames_in(head) >= checkpoints.START_FRAMES if head is not None
               else local.commits % checkpoints.FALLBACK_COMMITS == 0)
        if due:
            try:
                self._checkpointer.wake()
            except Exception as exc:  # committed already (no thread left to start one?)
                print(f"smmkit: cannot start copying the WAL back: {exc!r}", file=sys.stderr)

    def commits_here(self) -> int:
        """How many write transactions this thread's connection has committed."""
        try:
            return self._local.commits  # type: ignore[no-any-return]
        except AttributeError:  # no connection on this thread yet
            return 0

    def _drop_connection(self) -> None:
        """Close this thread's connection (the next use opens a fresh one)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _end(self, db: sqlite3.Connection) -> None:
        """Roll back whatever this connection still holds open. A transaction left open (a
        failed COMMIT, an exception while rolling back) would keep serving its old snapshot to
        every later read of this thread: acknowledged orders would look unknown."""
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                self._drop_connection()

    def _close_before_fork(self) -> None:
        close_idle(self._local)

    def _forget_connections(self) -> None:
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._lock_fd = None  # a flock is held per open file: the child opens its own

    def ensure_clean(self) -> None:
        """End whatever transaction this thread's connection was left in (called once at the
        start of every request): a read must never see an old snapshot."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.in_transaction:
            self._end(conn)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: everything inside commits together or not at all.

        Threads of one process queue on a mutex first: SQLite's own busy handler sleeps in
        growing steps while it waits for the write lock, which turned short waits into
        half-second tails under load. Processes still meet at SQLite's lock."""
        db = self.connection()
        with self.writing():
            self._end(db)
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                self._end(db)
                raise
            self._after_commit(db)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The write lock alone: this process's threads, then every process of the store."""
        with self._write_lock, self._process_lock():
            yield

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
        self._end(db)
        db.execute("BEGIN")
        try:
            yield db
        finally:
            try:
                db.execute("COMMIT")
            except sqlite3.Error:
                self._end(db)

    def close(self) -> None:
        """Stop using the store; a checkpoint pass under way ends first (it must not unlock a
        closed descriptor, nor recreate the files a throw-away store removes)."""
        self.closed = True
        with self._checkpointer.running:
            self._drop_connection()
            self._lock_fd = None
            self._cleanup()


TEMP_SUFFIXES = ("", "-wal", "-shm", ".lock", ".journal", ".journal-wal", ".journal-shm",
                 ".journal.lock")


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


def _check_not_truncated(path: Path) -> None:
    """A file shorter than its own header says was cut off (a copy stopped half-way, a full
    disk): SQLite would open it and fail later on a missing page, mid-request."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
            size = os.fstat(handle.fileno()).st_size
    except FileNotFoundError:
        return
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        if size:
            raise sqlite3.DatabaseError("file is not a database")
        return
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    counter_valid = header[24:28] == header[92:96]
    if counter_valid and pages and pages * page_size > size:
        raise sqlite3.DatabaseError(f"database disk image is truncated ({size} of "
                                    f"{pages * page_size} bytes)")


def describe_failure(path: Path, exc: BaseException) -> str:
    """One line that names the file, what is wrong with it and what to do."""
    text = str(exc)
    if isinstance(exc, SchemaTooNew):
        return (f"{path} was written by a newer smmkit ({text}): upgrade smmkit or pick "
                "another --db")
    name = getattr(exc, "sqlite_errorname", "") or ""
    low = text.lower()
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in low \
            or "malformed" in low or "truncated" in low:
        return (f"{path} is damaged or not an smmkit store (SQLite: {text}): move it away or "
                "pick another --db")
    if name.startswith("SQLITE_READONLY") or "readonly" in low \
            or isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EROFS:
        return (f"{path} cannot be written (read-only file or folder): make the file and its "
                "folder writable, or pick another --db")
    if name == "SQLITE_FULL" or getattr(exc, "errno", None) == errno.ENOSPC:
        return (f"no room to write {path} (the disk is full): free some space or pick "
                "another --db")
    if name.startswith("SQLITE_IOERR") or "disk i/o" in low:
        return (f"cannot write {path} ({text}: the disk may be full or failing): free some "
                "space, check the disk or pick another --db")
    if isinstance(exc, FileNotFoundError):
        return (f"cannot create the folder {path.parent} for the store {path}: "
                f"{exc.strerror}; create it or pick another --db")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in low:
        return (f"cannot open {path}: its folder is missing or not writable; create it, fix "
                "its permissions or pick another --db")
    return f"cannot use the store {path}: {text}; move it away or pick another --db"
