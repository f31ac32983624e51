"""The panel's tables in PostgreSQL, their schema version and the migrations that bring an older
database forward. PostgreSQL DDL lives here and nowhere else.

The tables mirror schema.py column for column — same names, same order, same NULLs — so a
snapshot taken on one engine restores on the other and `column_types` reads the same types:
money is NUMERIC (exact, never float; the scale a value was written with is kept, so "9.50"
reads back as "9.50"), ids are BIGINT, times DOUBLE PRECISION (SQLite's REAL), flags INTEGER.

The version is the `schema_version` row of `meta`, the same number as SQLite's
`PRAGMA user_version` (schema.SCHEMA_VERSION). Creating and migrating run under a transaction
advisory lock, so of several servers starting at once one migrates and the others wait, then
find it done.
"""

from __future__ import annotations

from typing import Any

from smmkit.mock_server.storage.schema import SCHEMA_VERSION, SEQUENCE_STARTS, SchemaTooNew

# Lock keys are per schema (current_schema()), so panels in different schemas of one database
# never wait for each other.
MIGRATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('smmkit-migrate:' || current_schema()))"
WRITE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('smmkit-write:' || current_schema()))"

TABLES = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    anchor_wall DOUBLE PRECISION NOT NULL, anchor_panel DOUBLE PRECISION NOT NULL,
    speed DOUBLE PRECISION NOT NULL, frozen INTEGER NOT NULL,
    catalog_version BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS accounts (
    id BIGINT PRIMARY KEY, key TEXT NOT NULL UNIQUE, balance NUMERIC NOT NULL,
    currency TEXT NOT NULL, opening NUMERIC NOT NULL, topups NUMERIC NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS services (
    id BIGINT PRIMARY KEY, position INTEGER NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL, service_id BIGINT NOT NULL,
    link TEXT NOT NULL, charge NUMERIC NOT NULL, refunded NUMERIC NOT NULL DEFAULT 0,
    total BIGINT NOT NULL, per_run BIGINT NOT NULL, runs BIGINT NOT NULL,
    interval DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    start_at DOUBLE PRECISION NOT NULL, unit_seconds DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL, delivered_final BIGINT NOT NULL, start_count BIGINT NOT NULL,
    cancel_at DOUBLE PRECISION, final_status TEXT, final_remains BIGINT,
    final_start_count BIGINT, final_at DOUBLE PRECISION, due_at DOUBLE PRECISION,
    params TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS orders_due ON orders(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_active_link
    ON orders(account_id, service_id, link) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_account ON orders(account_id);
CREATE TABLE IF NOT EXISTS refills (
    id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL, account_id BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, rejected INTEGER NOT NULL, forced_status TEXT
);
CREATE INDEX IF NOT EXISTS refills_order ON refills(order_id);
CREATE TABLE IF NOT EXISTS ledger (
    id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL, amount NUMERIC NOT NULL, order_id BIGINT
);
CREATE INDEX IF NOT EXISTS ledger_account ON ledger(account_id);
CREATE TABLE IF NOT EXISTS faults (
    id BIGINT PRIMARY KEY, kind TEXT NOT NULL, action TEXT NOT NULL, key TEXT,
    remaining BIGINT, probability DOUBLE PRECISION, seen BIGINT NOT NULL DEFAULT 0,
    params TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, next BIGINT NOT NULL);
-- The request journal of every server on this database (postgres_journal.py).
CREATE TABLE IF NOT EXISTS journal (
    id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL, wall DOUBLE PRECISION NOT NULL,
    action TEXT, key_print TEXT, params TEXT NOT NULL, status INTEGER NOT NULL,
    body TEXT NOT NULL, latency_ms DOUBLE PRECISION NOT NULL, fault TEXT, service_type TEXT
);
CREATE INDEX IF NOT EXISTS journal_action ON journal(action);
"""

# From version N to N + 1, each a function of a connection inside the migrating transaction.
# PostgreSQL stores start at version 2 (SQLite's 0.1 format never existed here).
MIGRATIONS: dict[int, Any] = {}
FIRST_VERSION = 2


def version_of(db: Any) -> int:
    """The stored schema version; 0 for a database without smmkit's tables."""
    # A scan of pg_class under this statement's snapshot, not to_regclass(): its catalog cache
    # kept "no such table" from before the migration lock was granted, so a server that waited
    # for another's creating the tables believed it had created them too.
    present = db.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = 'meta')"
    ).fetchone()
    if not present[0]:
        return 0
    row = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    return 0 if row is None else int(row[0])


def _create(db: Any) -> None:
    db.execute(TABLES)  # one simple-protocol batch: every statement, in this transaction
    for name, first in SEQUENCE_STARTS.items():
        db.execute("INSERT INTO sequences (name, next) VALUES (%s, %s) ON CONFLICT (name) "
                   "DO NOTHING", (name, first))


def ensure_current(db: Any, *, migrate: bool = True) -> int:
    """Create a new database's tables or migrate an older one forward; the version found.
    `db` is an autocommit connection. With `migrate=False` a database that is not at the
    current version raises SchemaBehind instead (for operators who run `smmkit db upgrade`)."""
    if version_of(db) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    db.execute("BEGIN")
    try:
        db.execute(MIGRATE_LOCK)
        found = version_of(db)
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(found)
        if found < SCHEMA_VERSION and not migrate:
            raise SchemaBehind(found)
        if found == 0:
            _create(db)
        else:
            for version in range(max(found, FIRST_VERSION), SCHEMA_VERSION):
                MIGRATIONS[version](db)
        db.execute("INSERT INTO meta (name, value) VALUES ('schema_version', %s) "
                   "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                   (str(SCHEMA_VERSION),))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return found


class SchemaBehind(Exception):
    """The database is older than this smmkit and migrating on start is turned off."""

    def __init__(self, version: int) -> None:
        super().__init__(f"schema version {version}, this smmkit needs {SCHEMA_VERSION}: run "
                         "`smmkit db upgrade` first")
        self.version = version
