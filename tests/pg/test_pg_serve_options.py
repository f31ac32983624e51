"""`smmkit serve` options on a PostgreSQL database: `--no-migrate` names the database without
its password, and `--fresh` (which deletes an SQLite store's files) is refused with the way to
reset a shared panel instead. Real processes, a real throw-away PostgreSQL (tests/pg/cluster.py).
"""

from __future__ import annotations

import subprocess
import sys

from smmkit.mock_server.storage import engines
from smmkit.mock_server.storage.schema import SCHEMA_VERSION


def smmkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from smmkit.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=60)


def test_no_migrate_names_the_database_without_its_password(pg_url: str) -> None:
    secret = pg_url.replace("smmkit@", "smmkit:s3cret-pw@", 1)  # trust auth ignores it
    out = smmkit("serve", "--port", "0", "--db", secret, "--no-migrate")
    shown = secret.replace(":s3cret-pw@", ":***@")
    assert out.returncode == 1 and "s3cret-pw" not in out.stderr + out.stdout
    assert out.stderr == (
        f"Error: the store {shown} has no smmkit tables, this smmkit needs schema version "
        f"{SCHEMA_VERSION}, and --no-migrate does not migrate on start: run `smmkit db "
        "upgrade` on it first\n")
    assert engines.inspect(pg_url)["version"] == 0  # nothing was created


def test_no_migrate_on_an_unreachable_database_says_so_in_one_line(pg_url: str) -> None:
    gone = pg_url.replace("smmkit@", "smmkit:pw@", 1).replace("/postgres?", "/no_such_db?")
    out = smmkit("serve", "--port", "0", "--db", gone, "--no-migrate")
    assert out.returncode == 1 and "Traceback" not in out.stderr and "pw@" not in out.stderr
    assert out.stderr.startswith("Error: the database postgresql://smmkit:***@")
    assert out.stderr.count("\n") == 1 and "no_such_db" in out.stderr, out.stderr


def test_fresh_is_refused_on_postgresql_saying_how_to_reset(pg_url: str) -> None:
    out = smmkit("serve", "--port", "0", "--db", pg_url, "--fresh")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--fresh deletes an SQLite store's files; a PostgreSQL panel is reset with POST " \
        "/_control/reset" in " ".join(out.stderr.split())
    assert engines.inspect(pg_url)["version"] == 0  # refused before anything was created
