"""`smmkit reset --db PATH`: start over offline, without a running server.

Deletes every file of the store (database, WAL, shared memory, locks, journal). Refused while a
`smmkit serve` is serving that store, naming its pid: stop it first, or use the control API's
`POST /_control/reset` to reset a running one.
"""

from __future__ import annotations

import click
from smmkit.mock_server.serving.store_files import ServeLock, StoreBusy, remove_store
from smmkit.mock_server.storage.sqlite import default_db_path


@click.command(context_settings={"auto_envvar_prefix": "SMMKIT_RESET",
                                 "help_option_names": ["-h", "--help"]})
@click.option("--db", default=str(default_db_path()), show_default=True,
              help="The store to delete (the same path given to `smmkit serve --db`).")
def reset(db: str) -> None:
    """Delete a stopped fake's store (every file it uses) to start over."""
    if db == ":memory:":
        raise click.UsageError("a ':memory:' store is gone when its server stops")
    lock = ServeLock(db)
    try:
        lock.acquire("reset")
    except StoreBusy as exc:
        raise click.ClickException(f"{exc} (POST /_control/reset resets a running one)") from None
    try:
        removed = remove_store(db)
    finally:
        lock.release()
    lock.path.unlink(missing_ok=True)
    if removed:
        click.echo(f"removed {len(removed)} files of the store {db}: "
                   f"{', '.join(p.name for p in removed)}")
    else:
        click.echo(f"nothing to remove: no store at {db}")
