"""The panel database's tables, its schema version and the migrations that bring an older file
forward. SQL DDL for SQLite lives here and nowhere else.

The version is SQLite's `PRAGMA user_version`. smmkit 0.1 never set it, so a file at version 0
that already has a `state` table is a 0.1 store; an empty file is new. Opening a store runs
`ensure_current` once: at the current version it is one PRAGMA read.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 2
V0_1 = 1  # what a 0.1 store (user_version 0, tables present) is treated as

# Where order and refill ids start. A sequence only ever grows: ids are never reused, not after
# a reset, a restore of an older snapshot or a deleted account.
SEQUENCE_STARTS = {"orders": 23501, "refills": 1}

TABLES = """
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
-- Version 2: the next order and refill id (0.1 took MAX(id) + 1 and so reused ids).
CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, next INTEGER NOT NULL);
"""


class SchemaTooNew(Exception):
    """The file was written by a newer smmkit; this one must not guess at its tables."""

    def __init__(self, version: int) -> None:
        super().__init__(f"schema version {version} is newer than this smmkit understands "
                         f"({SCHEMA_VERSION})")
        self.version = version


def _seed_sequences(db: sqlite3.Connection) -> None:
    """Start each sequence past every id already stored (and never behind its current value)."""
    for table, first in SEQUENCE_STARTS.items():
        db.execute(
            f"INSERT INTO sequences (name, next) SELECT ?, MAX(?, COALESCE(MAX(id) + 1, ?)) "
            f"FROM {table} WHERE true ON CONFLICT(name) DO UPDATE SET "
            "next = MAX(next, excluded.next)", (table, first, first))


def _v1_to_v2(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, "
               "next INTEGER NOT NULL)")
    _seed_sequences(db)


MIGRATIONS = {V0_1: _v1_to_v2}  # from version N to N + 1


def version_of(db: sqlite3.Connection) -> int:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0 and db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'state'").fetchall():
        return V0_1
    return int(version)


def ensure_current(db: sqlite3.Connection) -> int:
    """Create a new store's tables or migrate an older one forward; the version found."""
    if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return SCHEMA_VERSION
    db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait and then see it done
    try:
        found = version_of(db)
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(found)
        if found == 0:
            for statement in TABLES.split(";"):  # executescript would commit half-way
                if statement.strip():
                    db.execute(statement)
            _seed_sequences(db)
        else:
            for version in range(found, SCHEMA_VERSION):
                MIGRATIONS[version](db)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return found
