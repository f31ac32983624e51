"""`smmkit serve`: start the fake panel. Configuration enters here and becomes a Config.

Options also come from SMMKIT_SERVE_* environment variables (click's auto envvar prefix). This
module imports nothing of the contract kit, so `smmkit serve` starts without Hypothesis or
Faker (and, on its shipped defaults, without jsonschema: only given files are schema-checked).
"""

from __future__ import annotations

import errno
import os
import sys
from decimal import Decimal
from typing import Any

import click
from smmkit.mock_server.core.config import DEFAULT_PORT, Config, sources, store_has_state
from smmkit.mock_server.core.panel import Panel
from smmkit.mock_server.storage.engines import describe, is_postgres, require_current
from smmkit.mock_server.storage.sqlite import default_db_path
from smmkit.mock_server.web.dialects import Dialect


def _dialect(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A built-in dialect name, or a dialect file made absolute (workers may chdir)."""
    from pathlib import Path

    from smmkit.schemas.dialects import BUILTIN, DialectError, load_dialect

    try:
        load_dialect(value)
    except DialectError as exc:
        raise click.BadParameter(str(exc)) from None
    return value if value in BUILTIN else str(Path(value).resolve())


@click.command(context_settings={"auto_envvar_prefix": "SMMKIT_SERVE",
                                 "help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to bind; 0 picks a free one (the URL is printed).")
@click.option("--db", default=str(default_db_path()), show_default=True,
              envvar=["SMMKIT_SERVE_DB", "SMMKIT_DB"],
              help="Where the panel's state lives: an SQLite file (':memory:' for a throw-away "
                   "one), or postgresql://user@host:port/dbname to share one panel between "
                   "several servers (docs/deploy.md).")
@click.option("--accounts", type=click.Path(exists=True, dir_okay=False),
              help='JSON list of {"key", "balance", "currency"} (default: the demo accounts).')
@click.option("--catalog", type=click.Path(exists=True, dir_okay=False),
              help="JSON list of services (default: the shipped catalogue).")
@click.option("--seed", default=1, show_default=True, type=int,
              help="Seed for outcomes and start counts: same seed and requests, same history.")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0.001),
              help="The panel clock runs this many times faster than real time.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (they share the store).")
@click.option("--threads", default=16, show_default=True, type=click.IntRange(1, 256),
              help="Threads per worker.")
@click.option("--dialect", default="perfectpanel", show_default=True, callback=_dialect,
              metavar="NAME|FILE", help="Response shapes and error texts: perfectpanel, seed, "
              "raw-keys, or a dialect file (docs/dialects.md).")
@click.option("--server", default="builtin", show_default=True,
              type=click.Choice(["builtin", "gunicorn", "granian"]),
              help="builtin: smmkit's own event-loop server, the fastest, every fault kind; "
                   "gunicorn: threads; granian: cannot drop connections (drop / "
                   "lost_after_commit faults are refused).")
@click.option("--robust", is_flag=True,
              help="Robustness mode: seeded awkward-but-valid answers (numbers for money, "
                   "null start_count, status spellings, raw error keys) to test client parsing.")
@click.option("--admin-token", default=None, envvar="SMMKIT_ADMIN_TOKEN",
              help="Bearer token for /_control/ (default: generated and printed).")
@click.option("--fresh", is_flag=True,
              help="Start over: delete every file of the --db store first (state, journal).")
# -- the live request log (issue 13): one console line per /api/v2 request
@click.option("--log/--quiet", "log", default=None,
              help="Print one line per request (default: only when stdout is a terminal).")
@click.option("--log-format", default="text", show_default=True,
              type=click.Choice(["text", "json"]),
              help="text: aligned, coloured on a terminal; json: one JSON object per line.")
# -- end of the request log options
# -- --no-migrate (issue 15): for operators who run `smmkit db upgrade` themselves
@click.option("--no-migrate", "no_migrate", is_flag=True, envvar="SMMKIT_NO_MIGRATE",
              help="Never create or migrate the store's tables: a store not at this smmkit's "
                   "schema version stops start-up (run `smmkit db upgrade` first). Also "
                   "SMMKIT_NO_MIGRATE=1.")
# -- end of --no-migrate
def serve(host: str, port: int, db: str, accounts: str | None, catalog: str | None, seed: int,
          speed: float, workers: int, threads: int, dialect: str, server: str, robust: bool,
          admin_token: str | None, fresh: bool, log: bool | None = None,
          log_format: str = "text", no_migrate: bool = False) -> None:
    """Start the fake panel (default http://127.0.0.1:8080/api/v2).

    An explicit --accounts or --catalog applies to an existing store too (accounts upserted
    by key, the catalogue replaced, orders kept); omitted, the store keeps what it has. The
    banner says where each came from. Every option can also be set as SMMKIT_SERVE_<OPTION>
    (e.g. SMMKIT_SERVE_PORT=0)."""
    from smmkit.mock_server.serving.server import serve as run
    from smmkit.mock_server.serving.store_files import ServeLock, StoreBusy, remove_store

    options: dict[str, Any] = dict(
        host=host, port=port, db=db, accounts=accounts, catalog=catalog, seed=seed,
        speed=speed, workers=workers, threads=threads, dialect=dialect, robust=robust,
        server=server)
    options["request_log"] = _request_log(log, log_format)
    config = Config(**options) if admin_token is None else Config(**options,
                                                                  admin_token=admin_token)
    lock = None
    try:
        if no_migrate:  # before the lock file and --fresh: a refused start creates nothing
            if fresh:
                raise click.UsageError("--fresh creates a new store, which --no-migrate "
                                       "refuses: use one of them")
            require_current(db)
        if is_postgres(db):  # many servers on one database is the point: no lock file
            if fresh:
                raise click.UsageError("--fresh deletes an SQLite store's files; a PostgreSQL "
                                       "panel is reset with POST /_control/reset")
        elif db != ":memory:":
            lock = ServeLock(db).acquire()
            if fresh:
                remove_store(db)
        had_state = store_has_state(db)
        run(config, announce=lambda panel, url: _announce(panel, url, config,
                                                           sources(config, had_state=had_state)))
    except StoreBusy as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(_os_error(exc, config)) from None
    except ValueError as exc:  # ConfigError names the file, entry and field
        raise click.ClickException(str(exc)) from None
    finally:
        if lock is not None:
            lock.release()


def _os_error(exc: OSError, config: Config) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"port {config.port} on {config.host} is already in use (another smmkit serve?). "
                f"Stop what holds it, or choose another port: --port 0 picks a free one.")
    if exc.errno == errno.EACCES and config.port < 1024:
        return (f"port {config.port} needs privileges on this system; use a port above 1023, "
                f"or --port 0 for a free one.")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot bind {config.host}: it is not an address of this machine (--host)."
    return f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"


def _request_log(log: bool | None, log_format: str) -> str:
    """off | text | color | json: on by default when stdout is a terminal (colour there too)."""
    terminal = sys.stdout.isatty()
    if not (terminal if log is None else log):
        return "off"
    if log_format == "json":
        return "json"
    return "color" if terminal and not os.environ.get("NO_COLOR") else "text"


def _announce(panel: Panel, url: str, config: Config, origin: dict[str, str]) -> None:
    db = panel.store
    rows = [(r.key, r.balance, r.currency, r.enabled)
            for r in panel.ops.accounts(db.connection())]
    services = [s for s in panel.catalog().values() if s.enabled]
    dialect = Dialect(config.dialect)

    def money(balance: str, currency: str) -> str:  # exactly as `action=balance` answers
        shown = dialect.balance(Decimal(balance), currency)
        return f"{shown['balance']} {shown['currency']}"

    mode = ("robust (seeded awkward-but-valid answers: money as numbers, status spellings, ...)"
            if config.robust else "canonical")
    lines = [
        f"smmkit fake panel listening on {url}/api/v2",
        f"  store:     {describe(db)}",
        f"  clock:     {config.speed:g}x real time, seed {config.seed}",
        f"  answers:   dialect {config.dialect}, {mode}",
        f"  catalogue: {len(services)} services, from {origin['catalog']}",
        f"  accounts:  from {origin['accounts']}",
        *(f"    {key}  balance {money(balance, currency)}{'' if enabled else '  (disabled)'}"
          for key, balance, currency, enabled in rows),
        f"  control:   {url}/_control/  (Authorization: Bearer {config.admin_token})",
        f"  dashboard: {url}/_dashboard/  (sign in with the admin token)",
        f"  openapi:   {url}/openapi.json  {url}/_control/openapi.json",
        f"  try:       curl -d 'key={rows[0][0] if rows else 'KEY'}&action=services' {url}/api/v2",
        *(["  log:       one line per request below (--quiet to stop)"]
          if config.request_log != "off" else []),
        "Press Ctrl-C to stop.",
    ]
    click.echo("\n".join(lines))
    sys.stdout.flush()
