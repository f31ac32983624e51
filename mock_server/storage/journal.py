"""The request journal: every /api/v2 request with its answer, bounded, shared by workers.

Read-your-writes with any number of workers, and no lock on the hot path:
- a request appends one JSON line to its worker's own log file (`<db>.journal.d/<pid>-*.log`)
  with a single `os.write` before its answer is sent — no SQLite, nothing to wait for (the
  built-in server's loop holds its lines and writes one turn's in one `os.write`, before any
  answer of that turn: `hold`);
- readers (the control API, `smmkit ctl journal`, the dashboard) first *ingest*: in one SQLite
  transaction on `<db>.journal` they copy every log's new complete lines (at most the newest
  `limit` of each) into the `entries` table and remember how far each file was read. So
  whatever was answered is readable, and the copying is paid for only while someone reads;
- each worker's flusher thread looks at its own log every 0.5 s and, once it is past
  ROTATE_BYTES, retires it: new entries go to a new file. A retired log is not copied by its
  writer: a reader copies it (and removes it) when it reads, and the writer removes it unread
  once its newer logs hold `limit` lines, since then none of its lines is among the newest
  `limit`. So the flusher touches no SQLite and the disk holds about `limit` lines per worker.
  It catches and logs every exception and keeps running. (Copying each retired log at once
  cost a worker a third of its CPU under multi-status, and stalled its answers for
  hundreds of milliseconds.)

Everything a client can send is storable: strings are cleaned of lone surrogates (which UTF-8
and SQLite refuse) before they are written. The key is never stored: parameters keep `key` as
"***" and a short fingerprint lets the control plane filter by key. The request-schema verdict
is computed when the journal is read, not on the hot path.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from smmkit.mock_server.storage.sqlite import Store, close_idle, forget_after_fork
from smmkit.schemas import contract

SCHEMA = """
-- One row per answered request: the line its worker wrote, kept as it was written. Copying a
-- line is one INSERT in C; the columns that filters need are computed by SQLite from the line
-- (virtual: nothing is parsed in Python until an entry is read).
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    line TEXT NOT NULL CHECK (json_valid(line) AND json_array_length(line) = 10),
    action TEXT GENERATED ALWAYS AS (json_extract(line, '$[2]')) VIRTUAL,
    key_print TEXT GENERATED ALWAYS AS (json_extract(line, '$[3]')) VIRTUAL,
    status INTEGER GENERATED ALWAYS AS (json_extract(line, '$[5]')) VIRTUAL,
    fault TEXT GENERATED ALWAYS AS (json_extract(line, '$[8]')) VIRTUAL
);
CREATE INDEX IF NOT EXISTS entries_action ON entries(action);
-- 0.1's table of parsed columns: the journal is derived data, so it is dropped, not migrated.
DROP TABLE IF EXISTS journal;
-- How far each worker's log file has been copied into `entries`.
CREATE TABLE IF NOT EXISTS journal_sources (name TEXT PRIMARY KEY, offset INTEGER NOT NULL);
-- A long answer sent again unchanged (`services`: the same 11 KB each time) is written in full
-- once per log file; its later lines carry only {"sha": ...} (SHARED_BODY_CHARS). Its text:
CREATE TABLE IF NOT EXISTS bodies (sha TEXT PRIMARY KEY, text TEXT NOT NULL);
-- The logs that wrote each text in full: a text stays while a log that may still refer to it
-- is there, or an entry refers to it.
CREATE TABLE IF NOT EXISTS source_bodies (name TEXT NOT NULL, sha TEXT NOT NULL,
                                          PRIMARY KEY (name, sha));
-- The newest entry that refers to each text (an id at or above the real one), so trimming
-- never reads the entries' lines again.
CREATE TABLE IF NOT EXISTS body_refs (sha TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
"""
MAX_BODY_CHARS = 65_536
# An answer at least this long is written by reference once it repeats: copying the full 11 KB
# of `services` into every line cost 120 of its 190 µs per request (the write and its copy).
SHARED_BODY_CHARS = 1_024
MAX_REPEATS = 8  # long answers a worker remembers (cleared wholesale beyond): few repeat
MAX_BODIES = 256  # shared texts kept before the unreferenced ones are removed
MAX_PARAM_CHARS = 4_096
FLUSH_SECONDS = 0.5
ROTATE_BYTES = 8 << 20  # a worker starts a new log beyond this (the old one goes once copied)
RETIRED = ".done"  # `<log>.done`: its writer has moved on to a new file
_UNSEEN = object()
COLUMNS = ("at", "wall", "action", "key_print", "params", "status", "body", "latency_ms",
           "fault", "service_type")


def clean(text: str) -> str:
    """`text` made storable: lone surrogates (from JSON `\\ud800` or surrogateescape) are shown
    as `\\udXXX`, so UTF-8 encoding and SQLite cannot fail on anything a client sends."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


@functools.lru_cache(maxsize=4096)
def _key_print(key: object) -> str | None:
    return contract.fingerprint(key) or None  # a hash per request was a tenth of the cost


def key_print(key: object) -> str | None:
    """The key's fingerprint as the contract defines it (the kit labels accounts the same way),
    or None (stored as NULL) when there is no key."""
    return contract.fingerprint(key) or None


def redact(params: dict[str, str]) -> dict[str, str]:
    """The parameters as the journal keeps them: secrets out (contract.redact), long values
    cut, every string storable."""
    plain = _plain_redacted(params)
    return plain if plain is not None else redact_any(params)


def redact_any(params: dict[str, str]) -> dict[str, str]:
    """`redact` for any parameters whatever they hold."""
    out = {}
    for name, value in contract.redact(params).items():
        text = value if len(value) <= MAX_PARAM_CHARS else value[:MAX_PARAM_CHARS] + "…"
        out[clean(name[:200])] = clean(text)
    return out


def _plain_redacted(params: dict[str, str]) -> dict[str, str] | None:
    """`redact(params)` for what nearly every request is, without the general walk (it was
    half of the journal's cost per request): ASCII names, none secret but `key`, and ASCII
    values within the length limit that do not repeat the key. None for anything else."""
    key = params.get("key")
    forms: frozenset[str] = frozenset()
    if key is not None:
        if not key.isascii():
            return None
        if len(key) >= 4:
            forms = _key_forms(key)
    out = {}
    for name, value in params.items():
        if name == "key":
            out[name] = contract.REDACTED
        elif (len(value) > MAX_PARAM_CHARS or not value.isascii() or len(name) > 200
              or not name.isascii() or contract.is_secret(name)):
            return None
        elif forms and any(form in value.lower() for form in forms):
            return None  # the key pasted into a value: scrubbed by the general walk
        else:
            out[name] = value
    return out


@functools.lru_cache(maxsize=4096)
def _key_forms(key: str) -> frozenset[str]:
    """An ASCII key as it may stand in a value, case folded (contract.redact's forms)."""
    return frozenset(contract.redaction_forms(key))


def _log(message: str) -> None:
    with contextlib.suppress(Exception):
        print(f"smmkit: journal: {message}", file=sys.stderr, flush=True)


class Journal:
    """Bounded: only the newest `limit` entries are kept."""

    def __init__(self, store: Store, limit: int = 10_000) -> None:
        self.path = f"{store.path}.journal"
        self.logs = Path(f"{store.path}.journal.d")
        self.limit = limit
        self.logs.mkdir(exist_ok=True)
        self._open_fds: list[int] = []  # closed when the journal is collected
        self._forget_connections()
        forget_after_fork(self)
        weakref.finalize(self, _close_logs, self._open_fds)
        if store.temporary:  # the logs of a throw-away store go with the store, not a journal:
            # another journal on the same store may still have to copy them
            weakref.finalize(store, _remove_logs, str(self.logs), os.getpid())
        # Workers that start together (granian's) would race on switching the file to WAL and
        # on its schema ("database is locked", which SQLite does not retry for that switch):
        # they take turns on an flock of the journal's lock file.
        lock = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._db().execute("PRAGMA journal_mode=WAL")
            self._db().executescript(SCHEMA)
        finally:
            os.close(lock)  # closing the file releases the lock
        self._created = True

    # ------------------------------------------------------------ connections, per process

    def _close_before_fork(self) -> None:
        close_idle(self._local)

    def _forget_connections(self) -> None:
        """Fresh state for this process (also called in a forked worker): its own log file."""
        self._local = threading.local()
        self._append_lock = threading.Lock()
        self._fd: int | None = None
        self._log_path: Path | None = None
        self._flusher_pid: int | None = None
        self._repeats: dict[bytes, str | None] = {}  # long answer -> its sha once it repeats
        self._in_log: set[str] = set()  # shas whose text the current log file holds in full
        self._lines = 0  # lines this process wrote to its current log
        self._retired: list[tuple[Path, int]] = []  # its retired logs and their lines, oldest
        # first: removed unread once the newer ones hold `limit` lines

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # mode=rw after the first: a journal whose store was closed and removed must not
            # bring its file back (a flusher still running would leave files behind).
            mode = "rw" if getattr(self, "_created", False) else "rwc"
            conn = sqlite3.connect(f"file:{quote(self.path)}?mode={mode}", uri=True,
                                   isolation_level=None, check_same_thread=False, timeout=30.0)
            conn.execute("PRAGMA synchronous=OFF")  # a journal may lose its tail on a crash
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that always ends: committed, or rolled back on any exception."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _own_log(self) -> int:
        if self._fd is None:
            name = f"{os.getpid()}-{secrets.token_hex(4)}.log"
            self._log_path = self.logs / name
            self._fd = os.open(self._log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._open_fds.append(self._fd)
            self._in_log = set()  # a new file holds no text yet
            self._lines = 0
        return self._fd

    # ------------------------------------------------------------ the hot path

    @staticmethod
    def fields(params: dict[str, str]) -> tuple[str | None, str | None, dict[str, str]]:
        """What a line holds of a request's parameters: the action, the key's fingerprint and
        the redacted parameters. The same for every identical request, so a caller that
        answers one again may keep them and pass them to `record`."""
        action = params.get("action")
        return (clean(action) if isinstance(action, str) else None,
                _key_print(params.get("key")), redact(params))

    def record(self, *, at: float, params: dict[str, str], status: int, body: bytes,
               latency: float, fault: str | None, service_type: str | None,
               fields: tuple[str | None, str | None, dict[str, str]] | None = None) -> None:
        """Append one entry to this worker's log: one write, before the answer is sent, so every
        reader in any worker sees it once the client has its answer. `fields`: what `fields`
        gave for these parameters, when the caller kept it."""
        action, print_, redacted = fields if fields is not None else self.fields(params)
        entry = [at, time.time(), action, print_, redacted, status, None,
                 round(latency * 1000, 3), fault, clean(service_type) if service_type else None]
        self._write(entry, body[:MAX_BODY_CHARS])

    def hold(self, wake: Callable[[], None]) -> None:
        """From now on this thread's lines wait in memory until `release`, which writes them in
        one `os.write`: an event loop that sends a turn's answers only after `release` keeps
        every answered request readable at once, for one write per turn instead of one per
        request (on ext4 each append also dirties the inode's times: the largest single cost
        of a polled status). `wake()` is called when a line is held and none was before, so
        the holder can schedule its `release`."""
        self._local.held = []
        self._local.wake = wake

    def release(self) -> None:
        """Write the lines this thread holds (`hold`), in the order they were recorded."""
        held = getattr(self._local, "held", None)
        if held:
            self._local.held = []
            self._write_all(held)

    def _write(self, entry: list[Any], body: bytes) -> None:
        held = getattr(self._local, "held", None)
        if held is None:
            self._write_all([(entry, body)])
            return
        held.append((entry, body))
        if len(held) == 1:
            self._local.wake()

    def _write_all(self, entries: list[tuple[list[Any], bytes]]) -> None:
        try:
            with self._append_lock:  # the flusher may be swapping this file
                fd = self._own_log()  # first: a new file resets what it holds
                lines, shas = [], []
                for entry, body in entries:
                    entry[6], sha = self._body_field(body)
                    lines.append(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
                    if sha is not None:
                        shas.append(sha)
                data = lines[0] if len(lines) == 1 else b"".join(lines)
                written = os.write(fd, data)
                if written < len(data):  # a short write (a full disk's last bytes): the rest
                    view = memoryview(data)[written:]
                    while view:
                        view = view[os.write(fd, view):]
                self._lines += len(lines)
                # written whole: later lines of this file may refer to these texts
                self._in_log.update(shas)
        except OSError as exc:  # a full disk loses journal lines, never the answers
            _log(f"{len(entries)} entries could not be written to {self._log_path}: {exc}")
        self._ensure_flusher()

    def _body_field(self, body: bytes) -> tuple[str | dict[str, str], str | None]:
        """The answer as a line holds it: its text; or, for a long answer seen before,
        {"sha", "text"} the first time in this file and {"sha"} after that. The second value
        is the sha whose text this line writes whole."""
        if len(body) < SHARED_BODY_CHARS:
            return body.decode("utf-8", "replace"), None
        seen = self._repeats.get(body, _UNSEEN)
        if seen is _UNSEEN:  # first sight: written whole, remembered; no digest for an answer
            # sent once (most multi-status answers)
            if len(self._repeats) >= MAX_REPEATS:
                self._repeats.clear()
            self._repeats[body] = None
            return body.decode("utf-8", "replace"), None
        sha = seen if isinstance(seen, str) else hashlib.blake2b(body, digest_size=16).hexdigest()
        self._repeats[body] = sha  # it repeats: shared from now on
        if sha in self._in_log:
            return {"sha": sha}, None
        return {"sha": sha, "text": body.decode("utf-8", "replace")}, sha

    def _ensure_flusher(self) -> None:
        if self._flusher_pid is not None:  # reset in a forked worker (_forget_connections),
            return  # which then starts its own: no getpid() system call per request
        self._flusher_pid = os.getpid()
        threading.Thread(target=_flusher, args=(weakref.ref(self),), name="smmkit-journal",
                         daemon=True).start()

    # ------------------------------------------------------------ copying logs into SQLite

    def flush(self) -> None:
        """Copy every worker's new complete lines into the table (one transaction)."""
        self._local.retired = []  # per thread: readers of several threads flush at once
        with self._transaction() as db:
            self._ingest(db)
        for path in self._local.retired:  # copied and committed: the files can go
            for name in (path, Path(f"{path}{RETIRED}")):
                with contextlib.suppress(FileNotFoundError):
                    name.unlink()

    def _ingest(self, db: sqlite3.Connection) -> None:
        offsets = dict(db.execute("SELECT name, offset FROM journal_sources").fetchall())
        gone = [(name,) for name in offsets if not (self.logs / name).exists()]
        db.executemany("DELETE FROM journal_sources WHERE name = ?", gone)  # removed files
        db.executemany("DELETE FROM source_bodies WHERE name = ?", gone)
        rows: list[tuple[float, str]] = []
        for path in sorted(self.logs.glob("*.log")):
            start = offsets.get(path.name, 0)
            try:
                with open(path, "rb") as handle:
                    if start > os.fstat(handle.fileno()).st_size:
                        start = 0  # emptied, but the new offset was not committed
                    handle.seek(start)
                    data = handle.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1  # a line still being written waits for the next time
            if end == 0:
                if not data and (_dead(path.name) or Path(f"{path}{RETIRED}").exists()):
                    self._forget_log(db, path)
                continue
            if end == len(data) and Path(f"{path}{RETIRED}").exists():
                # a retired log read to its end: its writer has moved on, so the file goes once
                # this transaction has committed (its offset row stays until then: a reader in
                # another worker never copies it twice)
                self._local.retired.append(path)
            lines = data[:end].splitlines()
            self._keep_bodies(db, path.name, lines)  # from every line: a later one may refer
            # older lines than the newest `limit` would be trimmed at once: not copied
            rows.extend((_wall(line), line.decode("utf-8", "replace"))
                        for line in lines[-self.limit:])
            db.execute("INSERT INTO journal_sources VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                       "SET offset = excluded.offset", (path.name, start + end))
        rows.sort(key=lambda r: r[0])  # across workers, in the order they were answered
        before, newest = db.total_changes, _value(db, "SELECT MAX(id) FROM entries") or 0
        # OR IGNORE: a line that is not an entry (a torn write after a crash) is skipped
        db.executemany("INSERT OR IGNORE INTO entries (line) SELECT ?1 WHERE CASE WHEN "
                       "json_valid(?1) THEN json_array_length(?1) = 10 END",
                       [(line,) for _, line in rows])
        if db.total_changes - before < len(rows):
            _log(f"skipped {len(rows) - (db.total_changes - before)} unreadable line(s)")
        if rows:
            # a line's id is at most newest + its place (skipped lines take none): safe to keep by
            db.executemany("INSERT INTO body_refs VALUES (?, ?) ON CONFLICT(sha) DO UPDATE SET "
                           "last_id = MAX(last_id, excluded.last_id)",
                           [(sha, newest + place) for place, (_, line) in enumerate(rows, 1)
                            if (sha := _referred(line))])
            oldest_kept = _value(db, "SELECT MAX(id) FROM entries") - self.limit
            db.execute("DELETE FROM entries WHERE id <= ?", (oldest_kept,))
            db.execute("DELETE FROM body_refs WHERE last_id <= ?", (oldest_kept,))
        if gone or _value(db, "SELECT COUNT(*) FROM bodies") > MAX_BODIES:
            db.execute("DELETE FROM bodies WHERE sha NOT IN (SELECT sha FROM source_bodies) "
                       "AND sha NOT IN (SELECT sha FROM body_refs)")

    @staticmethod
    def _keep_bodies(db: sqlite3.Connection, name: str, lines: list[bytes]) -> None:
        """The texts these lines write whole, kept with the log that wrote them."""
        whole = [(line.decode("utf-8", "replace"), name) for line in lines
                 if b'{"sha":' in line and b'"text":' in line]  # orjson's spelling; SQL decides
        db.executemany("INSERT OR IGNORE INTO bodies SELECT json_extract(?1, '$[6].sha'), "
                       "json_extract(?1, '$[6].text') WHERE json_valid(?1) AND "
                       "json_type(?1, '$[6].sha') = 'text' AND "
                       "json_type(?1, '$[6].text') = 'text'", [(line,) for line, _ in whole])
        db.executemany("INSERT OR IGNORE INTO source_bodies SELECT ?2, "
                       "json_extract(?1, '$[6].sha') WHERE json_valid(?1) AND "
                       "json_type(?1, '$[6].text') = 'text'", whole)

    def _forget_log(self, db: sqlite3.Connection, path: Path) -> None:
        """A fully copied log whose writer is gone (or has moved on to a new file) is removed."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{RETIRED}").unlink()
        db.execute("DELETE FROM journal_sources WHERE name = ?", (path.name,))
        db.execute("DELETE FROM source_bodies WHERE name = ?", (path.name,))

    def _rotate_own_log(self) -> None:
        """Retire this worker's log once it is large: the next entry starts a new file. Only
        the swap of the file holds the append lock (a request waits microseconds)."""
        with self._append_lock:
            path, fd = self._log_path, self._fd
            if fd is None or path is None or os.fstat(fd).st_size < ROTATE_BYTES:
                return
            Path(f"{path}{RETIRED}").touch()
            self._retired.append((path, self._lines))
            self._fd, self._log_path, self._lines = None, None, 0
            with contextlib.suppress(ValueError):
                self._open_fds.remove(fd)
            os.close(fd)

    def _drop_superseded(self) -> None:
        """Remove this worker's retired logs that its newer logs make useless: once the lines
        after a log number `limit`, none of that log's lines is among the newest `limit`
        entries (of this worker, so of all). A reader that copied a log removed it already."""
        with self._append_lock:
            newer, keep = self._lines, len(self._retired)
            while keep and newer < self.limit:
                keep -= 1
                newer += self._retired[keep][1]
            superseded, self._retired = self._retired[:keep], self._retired[keep:]
        for path, _ in superseded:  # a reader reading it now has it open: it still copies it
            for name in (path, Path(f"{path}{RETIRED}")):
                with contextlib.suppress(FileNotFoundError):
                    name.unlink()

    def flush_in_background(self) -> None:
        """One flusher round; whatever goes wrong is logged, never raised. No SQLite here:
        retired logs wait for a reader, or go unread once superseded."""
        if not os.path.exists(self.path):
            return  # the store was closed and its throw-away files removed
        try:
            self._rotate_own_log()
            self._drop_superseded()
        except Exception:  # noqa: BLE001 - the flusher must outlive any failure
            _log("flushing failed (will retry):\n" + traceback.format_exc(limit=3))

    # ------------------------------------------------------------ reading

    def entries(self, *, action: str | None = None, key: str | None = None,
                status: int | None = None, fault: str | None = None,
                key_fingerprint: str | None = None, after: int | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
        """The newest entries matching every filter given, oldest first."""
        where, args = [], []
        print_ = key_print(key) if key else key_fingerprint
        for column, op, value in (("action", "=", action), ("key_print", "=", print_),
                                  ("status", "=", status), ("fault", "=", fault),
                                  ("id", ">", after)):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(clean(value) if isinstance(value, str) else value)
        self.flush()
        sql = ("SELECT id, line FROM entries" +
               (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?")
        db = self._db()
        rows = db.execute(sql, (*args, max(1, min(limit, self.limit)))).fetchall()
        lines = [(row[0], json.loads(row[1])) for row in reversed(rows)]
        wanted = sorted({line[6]["sha"] for _, line in lines
                         if isinstance(line[6], dict) and "text" not in line[6]})
        texts = dict(db.execute("SELECT sha, text FROM bodies WHERE sha IN "
                                f"({','.join('?' * len(wanted))})", wanted).fetchall()
                     ) if wanted else {}
        return [self._entry(id_, line, texts) for id_, line in lines]

    @staticmethod
    def _entry(id_: int, line: list[Any], texts: dict[str, str]) -> dict[str, Any]:
        at, wall, action, key_print_, params, status, body, latency, fault, service_type = line
        if isinstance(body, dict):  # a long answer written by reference (SHARED_BODY_CHARS)
            body = body.get("text", texts.get(body.get("sha", ""), ""))
        if isinstance(params, str):  # a line of 0.2's first format: the parameters as text
            params = json.loads(params)
        entry = {"id": id_, "at": at, "wall": wall, "action": action, "params": params,
                 "status": status, "body": body, "latency_ms": latency, "fault": fault,
                 "key_fingerprint": key_print_}
        entry["request_violations"] = request_verdict(params, service_type)
        entry["request_conforms"] = not entry["request_violations"]
        return entry

    def clear(self) -> None:
        self._local.retired = []
        with self._transaction() as db:
            self._ingest(db)  # what was logged so far is cleared too
            db.execute("DELETE FROM entries")
            db.execute("DELETE FROM body_refs")


def _referred(line: str) -> str | None:
    """The sha a line's answer refers to, if it is written by reference. Inside JSON strings
    every quote is escaped, so `{"sha":"` is structure: the last one is the answer's (the
    fields after it hold no object); a parameter named sha gives at worst a sha never kept."""
    at = line.rfind('{"sha":"')
    if at < 0:
        return None
    sha = line[at + 8:at + 40]
    return sha if len(sha) == 32 and sha.isalnum() and sha.isascii() else None


def _value(db: sqlite3.Connection, sql: str) -> Any:
    return db.execute(sql).fetchone()[0]


def _wall(line: bytes) -> float:
    """When an entry was answered (its second field), for ordering lines across workers."""
    try:
        second = line[1:line.index(b",", line.index(b",") + 1)].split(b",")[1]
        return float(second)  # float ok: a time
    except ValueError:
        return 0.0


def _dead(name: str) -> bool:
    try:
        os.kill(int(name.split("-", 1)[0]), 0)
    except (ValueError, ProcessLookupError):
        return True
    except PermissionError:
        return False
    return False


def _flusher(ref: weakref.ReferenceType[Journal]) -> None:
    """Holds the journal weakly and ends when it is gone; survives every failure."""
    while True:
        time.sleep(FLUSH_SECONDS)
        journal = ref()
        if journal is None:
            return
        journal.flush_in_background()
        del journal


def _close_logs(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


def _remove_logs(path: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # a forked worker exiting must not delete them
        shutil.rmtree(path, ignore_errors=True)


def request_verdict(params: dict[str, str], service_type: str | None) -> list[str]:
    """Violations of the request schemas (empty when the request conforms)."""
    try:
        from smmkit import schemas
    except ImportError:  # pragma: no cover - the schemas package ships with smmkit
        return []
    checkable = {k: ("x" if k == "key" and v == "***" else v) for k, v in params.items()}
    try:
        return list(schemas.check_request(checkable, service_type))
    except Exception as exc:  # a schema lookup problem is reported, not raised, here
        return [f"request could not be checked: {exc}"]
