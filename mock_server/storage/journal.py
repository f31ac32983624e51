"""The request journal: every /api/v2 request with its answer, bounded, shared by workers.

Entries go to a SQLite file of their own beside the panel's store (`<db>.journal`), so writing
the journal never waits on the money transactions. Each worker buffers entries and writes them
in one batch (every 64 entries, every 0.2 s, and before any read in that worker), which keeps
the journal off the hot path; another worker's newest entries show within 0.2 s.
The key is never stored: parameters keep `key` as "***" and a short fingerprint lets the
control plane filter by key. The request-schema verdict is computed when the journal is read,
not on the hot path.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import weakref
from typing import Any

from smmkit.mock_server.storage.sqlite import Store, forget_after_fork

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, wall REAL NOT NULL, action TEXT,
    key_print TEXT, params TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL,
    latency_ms REAL NOT NULL, fault TEXT, service_type TEXT
);
CREATE INDEX IF NOT EXISTS journal_action ON journal(action);
"""
MAX_BODY_CHARS = 65_536
MAX_PARAM_CHARS = 4_096


def key_print(key: object) -> str | None:
    if not isinstance(key, str) or not key:
        return None
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:12]


def redact(params: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, value in params.items():
        text = value if len(value) <= MAX_PARAM_CHARS else value[:MAX_PARAM_CHARS] + "…"
        out[name[:200]] = "***" if name == "key" else text
    return out


class Journal:
    """Bounded: only the newest `limit` entries are kept."""

    def __init__(self, store: Store, limit: int = 10_000) -> None:
        self.path = f"{store.path}.journal"
        self.limit = limit
        self._local = threading.local()
        self._writes = 0
        self._buffer: list[tuple] = []
        self._lock = threading.Lock()
        self._flusher_pid: int | None = None
        forget_after_fork(self)  # a throw-away store removes the journal's files with its own
        self._db().executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")  # a journal may lose its tail on a crash
            self._local.conn = conn
        return conn

    def _forget_connections(self) -> None:
        self._local = threading.local()
        self._buffer = []
        self._lock = threading.Lock()

    def record(self, *, at: float, params: dict[str, str], status: int, body: bytes,
               latency: float, fault: str | None, service_type: str | None) -> None:
        text = body[:MAX_BODY_CHARS].decode("utf-8", "replace")
        entry = (at, time.time(), params.get("action"), key_print(params.get("key")),
                 json.dumps(redact(params)), status, text, round(latency * 1000, 3), fault,
                 service_type)
        with self._lock:
            self._buffer.append(entry)
            full = len(self._buffer) >= 64
        self._ensure_flusher()
        if full:
            self.flush()

    def _ensure_flusher(self) -> None:
        if self._flusher_pid == os.getpid():
            return
        self._flusher_pid = os.getpid()  # a forked worker starts its own flusher
        ref = weakref.ref(self)

        def loop() -> None:  # holds the journal weakly and ends when it is gone
            while True:
                time.sleep(0.2)
                journal = ref()
                if journal is None:
                    return
                journal.flush()
                del journal

        threading.Thread(target=loop, name="smmkit-journal", daemon=True).start()

    def flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO journal (at, wall, action, key_print, params, status, body, latency_ms, "
            "fault, service_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
        self._writes += len(batch)
        if self._writes >= 500:
            self._writes = 0
            db.execute("DELETE FROM journal WHERE id <= (SELECT MAX(id) FROM journal) - ?",
                       (self.limit,))
        db.execute("COMMIT")

    def entries(self, *, action: str | None = None, key: str | None = None,
                status: int | None = None, fault: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
        where, args = [], []
        for column, value in (("action", action), ("key_print", key_print(key) if key else None),
                              ("status", status), ("fault", fault)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        self.flush()
        sql = ("SELECT id, at, wall, action, params, status, body, latency_ms, fault, service_type "
               "FROM journal" + (" WHERE " + " AND ".join(where) if where else "") +
               " ORDER BY id DESC LIMIT ?")
        rows = self._db().execute(sql, (*args, max(1, min(limit, self.limit)))).fetchall()
        return [self._entry(r) for r in reversed(rows)]

    @staticmethod
    def _entry(row: tuple) -> dict[str, Any]:
        params = json.loads(row[4])
        entry = {"id": row[0], "at": row[1], "wall": row[2], "action": row[3], "params": params,
                 "status": row[5], "body": row[6], "latency_ms": row[7], "fault": row[8]}
        entry["request_violations"] = request_verdict(params, row[9])
        entry["request_conforms"] = not entry["request_violations"]
        return entry

    def clear(self) -> None:
        with self._lock:
            self._buffer = []
        self._db().execute("DELETE FROM journal")


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
