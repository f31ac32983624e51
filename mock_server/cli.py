"""`smmkit` — the command line. Thin: each command builds a Config or calls one library function.

Configuration enters here (options and SMMKIT_* environment variables, via click's auto envvar
prefix) and nowhere else.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .config import DEFAULT_PORT, Config
from .panel import Panel
from .store import default_db_path


@click.group(context_settings={"auto_envvar_prefix": "SMMKIT",
                             "help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smmkit")
def main() -> None:
    """smmkit: a stateful fake SMM panel (API v2) and a contract-test kit for it."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to bind; 0 picks a free one (the URL is printed).")
@click.option("--db", default=str(default_db_path()), show_default=True,
              help="SQLite file holding the panel's state; ':memory:' for a throw-away one.")
@click.option("--accounts", type=click.Path(exists=True, dir_okay=False),
              help='JSON list of {"key", "balance", "currency"} (default: the demo accounts).')
@click.option("--catalog", type=click.Path(exists=True, dir_okay=False),
              help="JSON list of services (default: the shipped catalogue).")
@click.option("--seed", default=1, show_default=True, type=int,
              help="Seed for outcomes and start counts: same seed and requests, same history.")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0.001),
              help="The panel clock runs this many times faster than real time.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (they share the SQLite store).")
@click.option("--threads", default=16, show_default=True, type=click.IntRange(1, 256),
              help="Threads per worker.")
@click.option("--dialect", default="perfectpanel", show_default=True,
              type=click.Choice(["perfectpanel", "seed", "raw-keys"]),
              help="Response shapes and error texts.")
@click.option("--server", default="gunicorn", show_default=True,
              type=click.Choice(["gunicorn", "granian"]),
              help="gunicorn: every fault kind; granian: the fastest, but it cannot drop "
                   "connections (drop / lost_after_commit faults are refused).")
@click.option("--robust", is_flag=True,
              help="Robustness mode: seeded awkward-but-valid answers (numbers for money, "
                   "null start_count, status spellings, raw error keys) to test client parsing.")
@click.option("--admin-token", default=None, envvar="SMMKIT_ADMIN_TOKEN",
              help="Bearer token for /_control/ (default: generated and printed).")
def serve(host: str, port: int, db: str, accounts: str | None, catalog: str | None, seed: int,
          speed: float, workers: int, threads: int, dialect: str, server: str, robust: bool,
          admin_token: str | None) -> None:
    """Start the fake panel (default http://127.0.0.1:8080/api/v2)."""
    from .server import serve as run

    options = dict(host=host, port=port, db=db, accounts=accounts, catalog=catalog, seed=seed,
                   speed=speed, workers=workers, threads=threads, dialect=dialect, robust=robust,
                   server=server)
    config = Config(**options) if admin_token is None else Config(**options,
                                                                  admin_token=admin_token)
    try:
        run(config, announce=lambda panel, url: _announce(panel, url, config))
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def _announce(panel: Panel, url: str, config: Config) -> None:
    db = panel.store
    rows = db.connection().execute(
        "SELECT key, balance, currency, enabled FROM accounts ORDER BY id").fetchall()
    services = [s for s in panel.catalog().values() if s.enabled]
    lines = [
        f"smmkit fake panel listening on {url}/api/v2",
        f"  store:    {'(throw-away) ' if db.temporary else ''}{db.path}",
        f"  clock:    {config.speed:g}x real time, seed {config.seed}, dialect {config.dialect}",
        f"  catalogue: {len(services)} services",
        "  API keys:",
        *(f"    {key}  balance {balance} {currency}{'' if enabled else '  (disabled)'}"
          for key, balance, currency, enabled in rows),
        f"  control:  {url}/_control/  (Authorization: Bearer {config.admin_token})",
        f"  try:      curl -d 'key={rows[0][0] if rows else 'KEY'}&action=services' {url}/api/v2",
        "Press Ctrl-C to stop.",
    ]
    click.echo("\n".join(lines))
    sys.stdout.flush()


@main.command("schemas")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write the JSON Schema files into.")
def schemas_command(out_dir: str) -> None:
    """Write the contract's JSON Schema files to a directory."""
    import schemas

    written = schemas.export(Path(out_dir))
    click.echo(f"wrote {len(written)} schema files to {out_dir}")


@main.command()
def openapi() -> None:
    """Print the OpenAPI 3.1 document for /api/v2 (generated from the JSON Schemas)."""
    import json

    import schemas

    click.echo(json.dumps(schemas.openapi_document(), indent=2))


def _register() -> None:
    """The control client's and the kit's commands join the one `smmkit` group."""
    from .ctl_cli import ctl

    main.add_command(ctl)
    try:
        from contract_tests.cli import check
    except ModuleNotFoundError as exc:  # the kit is part of smmkit; only a broken install lacks it
        if exc.name not in ("contract_tests", "contract_tests.cli"):
            raise
        return
    main.add_command(check)


_register()
