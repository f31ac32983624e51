"""`smmkit serve --no-migrate` (and SMMKIT_NO_MIGRATE=1), for operators who do not let an app
change a shared database's schema: a store at an older or missing schema version stops start-up
with one line that names it and says to run `smmkit db upgrade`, and changes nothing; at the
current version the server serves. Real `smmkit serve` processes, on the engine under test
(tests/engines.py: an SQLite file, or a PostgreSQL schema with SMMKIT_TEST_ENGINE=postgres).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from smmkit.mock_server.core.config import DEMO_KEY
from smmkit.mock_server.storage import engines
from smmkit.mock_server.storage.schema import SCHEMA_VERSION
from support import start_serve, wait_ready


def smmkit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from smmkit.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def set_version(db: str, version: int) -> None:
    """Make an upgraded store look as an older smmkit left it (schema version `version`)."""
    if engines.is_postgres(db):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("UPDATE meta SET value = %s WHERE name = 'schema_version'",
                         (str(version),))
        return
    with contextlib.closing(sqlite3.connect(db)) as conn:  # version 1: no id sequences yet
        conn.execute("DROP TABLE sequences")
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()


def refusal(db: str) -> str:
    where = engines.inspect(db)["location"]
    return f"Error: the store {where} "


def assert_refused(out: subprocess.CompletedProcess, db: str, state: str) -> None:
    assert out.returncode == 1 and out.stdout == "", out
    assert out.stderr == (
        f"{refusal(db)}{state}, this smmkit needs schema version {SCHEMA_VERSION}, and "
        "--no-migrate does not migrate on start: run `smmkit db upgrade` on it first\n")


def test_a_store_without_tables_stops_start_up_and_is_not_created(store_db: str) -> None:
    out = smmkit("serve", "--port", "0", "--db", store_db, "--no-migrate")
    assert_refused(out, store_db, "has no smmkit tables")
    assert engines.inspect(store_db)["version"] == 0  # nothing was created
    if not engines.is_postgres(store_db):
        assert not Path(store_db).exists()
        assert list(Path(store_db).parent.iterdir()) == []  # not even a lock file


def test_an_older_store_stops_start_up_then_serves_after_db_upgrade(store_db: str) -> None:
    assert smmkit("db", "upgrade", "--db", store_db).returncode == 0
    set_version(store_db, 1)
    for args, env in ((["--no-migrate"], None), ([], {"SMMKIT_NO_MIGRATE": "1"})):
        out = smmkit("serve", "--port", "0", "--db", store_db, *args, env=env)
        assert_refused(out, store_db, "is at schema version 1")
        assert engines.inspect(store_db)["version"] == 1  # still the old version: not migrated
    upgraded = smmkit("db", "upgrade", "--db", store_db)
    assert upgraded.returncode == 0 and f"from schema version 1 to {SCHEMA_VERSION}" in \
        upgraded.stdout, upgraded
    server = start_serve("--port", "0", "--db", store_db, "--workers", "1",
                         env={"SMMKIT_NO_MIGRATE": "1"})
    try:
        wait_ready(server.url)
        answer = requests.post(server.url, data={"key": DEMO_KEY, "action": "balance"},
                               timeout=10)
        assert answer.json() == {"balance": "1000", "currency": "USD"}
    finally:
        assert server.stop() == 0


def test_no_migrate_and_fresh_together_are_refused(store_db: str) -> None:
    out = smmkit("serve", "--port", "0", "--db", store_db, "--no-migrate", "--fresh")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--fresh creates a new store, which --no-migrate refuses: use one of them" in \
        out.stderr


@pytest.mark.parametrize("value", ["0", ""])
def test_smmkit_no_migrate_off_still_migrates_on_start(store_db: str, value: str) -> None:
    server = start_serve("--port", "0", "--db", store_db, "--workers", "1",
                         env={"SMMKIT_NO_MIGRATE": value})
    try:
        wait_ready(server.url)
        assert engines.inspect(store_db)["version"] == SCHEMA_VERSION
    finally:
        assert server.stop() == 0
