"""`smmkit db info` / `smmkit db upgrade`: the store's schema, for operators.

`smmkit serve` creates and migrates the tables on start; operators who do not let an app
change a shared database's schema run `smmkit db upgrade` once (from a deploy job) instead.
Both take `--db` (or `SMMKIT_DB`) as `smmkit serve` does: an SQLite path or a
postgresql:// URL.
"""

from __future__ import annotations

import click
from smmkit.mock_server.storage import engines
from smmkit.mock_server.storage.sqlite import default_db_path

DB_OPTION = click.option(
    "--db", default=str(default_db_path()), show_default=True, envvar="SMMKIT_DB",
    help="The store: an SQLite file, or postgresql://user@host:port/dbname.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def db() -> None:
    """Inspect or upgrade the store's schema (SQLite file or PostgreSQL database)."""


@db.command("info")
@DB_OPTION
def info(db: str) -> None:
    """Engine, location, schema version and contents, without changing anything."""
    try:
        found = engines.inspect(db)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    version, current = found["version"], found["current_version"]
    state = ("no smmkit tables yet (`smmkit db upgrade` or `smmkit serve` creates them)"
             if version == 0 else "current" if version == current
             else f"behind: `smmkit db upgrade` migrates it to {current}" if version < current
             else "newer than this smmkit: upgrade smmkit")
    lines = [f"engine:   {found['engine']}" + (f" (server {found['server']})"
                                               if "server" in found else ""),
             f"store:    {found['location']}",
             f"schema:   version {version}, this smmkit {current}: {state}"]
    if version:
        lines.append(f"contents: {found['accounts']} accounts, {found['orders']} orders, "
                     f"{found['refills']} refills")
    click.echo("\n".join(lines))


@db.command("upgrade")
@DB_OPTION
def upgrade(db: str) -> None:
    """Create the tables, or migrate them to this smmkit's schema version."""
    try:
        store = engines.open_store(db)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        found, current = store.found_version, engines.inspect(db)["current_version"]
    finally:
        store.close()
    where = engines.describe(store)
    if found == current:
        click.echo(f"{where}: already at schema version {current}")
    elif found == 0:
        click.echo(f"{where}: created the tables at schema version {current}")
    else:
        click.echo(f"{where}: migrated from schema version {found} to {current}")
