"""The request journal on PostgreSQL: one `journal` table for every server on the database.

Several servers behind a load balancer answer one client's requests in turn; the journal of
all of them is the one table, so `GET /_control/journal` on any server lists every request in
the order they were answered. Each request inserts its entry (one autocommit statement on a
pooled connection) before its answer is sent: whatever was answered is readable at once,
from every server. The interface, the redaction (the key is never stored, only a fingerprint)
and the entry shape are the SQLite journal's (journal.py).

A journal entry that cannot be written (the database just went away) is reported on stderr
and lost; the answer is never held back for it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from typing import Any

from smmkit.mock_server.storage import journal as sqlite_journal
from smmkit.mock_server.storage.errors import StoreUnavailable

COLUMNS = ("at", "wall", "action", "key_print", "params", "status", "body", "latency_ms",
           "fault", "service_type")
TRIM_EVERY = 500  # entries written by this process between trims to `limit`


def clean(text: str) -> str:
    """`text` made storable: lone surrogates (from JSON `\\ud800`) shown as `\\udXXX`, and NUL
    (which PostgreSQL text refuses) as `\\x00`."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")


def _log(message: str) -> None:
    with contextlib.suppress(Exception):
        print(f"smmkit: journal: {message}", file=sys.stderr, flush=True)


class PostgresJournal:
    """Bounded: only the newest `limit` entries are kept."""

    def __init__(self, store: Any, limit: int = 10_000) -> None:
        self.store = store
        self.limit = limit
        self._written = 0
        self._lock = threading.Lock()

    @staticmethod
    def fields(params: dict[str, str]) -> tuple[str | None, str | None, str]:
        """What a row holds of a request's parameters: the action, the key's fingerprint and
        the redacted parameters as JSON. The same for every identical request, so a caller
        that reads the same request again may keep them and pass them to `record`."""
        action = params.get("action")
        redacted = {clean(k): clean(v) for k, v in sqlite_journal.redact(
            {k: v if isinstance(v, str) else str(v) for k, v in params.items()}).items()}
        return (clean(action) if isinstance(action, str) else None,
                sqlite_journal.key_print(params.get("key")),
                json.dumps(redacted, ensure_ascii=False))

    def record(self, *, at: float, params: dict[str, str], status: int, body: bytes,
               latency: float, fault: str | None, service_type: str | None,
               fields: tuple[str | None, str | None, str] | None = None) -> None:
        """One row per request. `fields`: what `fields` gave for these parameters, when the
        caller kept it."""
        action, print_, redacted = fields if fields is not None else self.fields(params)
        row = (at, time.time(), action, print_, redacted, status,
               clean(body[:sqlite_journal.MAX_BODY_CHARS].decode("utf-8", "replace")),
               round(latency * 1000, 3), fault, clean(service_type) if service_type else None)
        db = self.store.connection()
        try:
            db.execute(f"INSERT INTO journal ({', '.join(COLUMNS)}) VALUES "
                       f"({', '.join(['%s'] * len(COLUMNS))})", row)
            with self._lock:
                self._written += 1
                trim = self._written % TRIM_EVERY == 0
            if trim:
                self.trim()
        except StoreUnavailable as exc:
            _log(f"an entry could not be written: {exc}")

    def trim(self) -> None:
        self.store.connection().execute(
            "DELETE FROM journal WHERE id <= (SELECT MAX(id) FROM journal) - %s", (self.limit,))

    def flush(self) -> None:
        """Entries are written as they are recorded: nothing is ever waiting."""

    def entries(self, *, action: str | None = None, key: str | None = None,
                status: int | None = None, fault: str | None = None,
                key_fingerprint: str | None = None, after: int | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
        """The newest entries matching every filter given, oldest first."""
        where, args = [], []
        print_ = sqlite_journal.key_print(key) if key else key_fingerprint
        for column, op, value in (("action", "=", action), ("key_print", "=", print_),
                                  ("status", "=", status), ("fault", "=", fault),
                                  ("id", ">", after)):
            if value is not None:
                where.append(f"{column} {op} %s")
                args.append(clean(value) if isinstance(value, str) else value)
        sql = ("SELECT id, at, wall, action, params, status, body, latency_ms, fault, "
               "service_type, key_print FROM journal" +
               (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT %s")
        rows = self.store.connection().execute(
            sql, (*args, max(1, min(limit, self.limit)))).fetchall()
        return [self._entry(r) for r in reversed(rows)]

    @staticmethod
    def _entry(row: Any) -> dict[str, Any]:
        params = json.loads(row["params"])
        entry = {"id": row["id"], "at": row["at"], "wall": row["wall"], "action": row["action"],
                 "params": params, "status": row["status"], "body": row["body"],
                 "latency_ms": row["latency_ms"], "fault": row["fault"],
                 "key_fingerprint": row["key_print"]}
        entry["request_violations"] = sqlite_journal.request_verdict(params, row["service_type"])
        entry["request_conforms"] = not entry["request_violations"]
        return entry

    def clear(self) -> None:
        self.store.connection().execute("DELETE FROM journal")
