"""`smmkit serve`: start the fake panel. Configuration enters here and becomes a Config.

Options also come from SMMKIT_SERVE_* environment variables (click's auto envvar prefix). This
module imports nothing of the contract kit, so `smmkit serve` starts without Hypothesis,
jsonschema or Faker.
"""

from __future__ import annotations

import sys

import click
from smmkit.mock_server.core.config import DEFAULT_PORT, Config
from smmkit.mock_server.core.panel import Panel
from smmkit.mock_server.storage.engines import describe
from smmkit.mock_server.storage.sqlite import default_db_path


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
    from smmkit.mock_server.serving.server import serve as run

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
    rows = [(r.key, r.balance, r.currency, r.enabled)
            for r in panel.ops.accounts(db.connection())]
    services = [s for s in panel.catalog().values() if s.enabled]
    lines = [
        f"smmkit fake panel listening on {url}/api/v2",
        f"  store:    {describe(db)}",
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
