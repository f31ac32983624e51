"""Configuration: one immutable value built at the edges (CLI options, tests) and handed in.

Nothing in the core reads the environment; `build_panel` turns a Config into a Panel.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from smmkit.mock_server.core.clock import manual_clock, real_clock
from smmkit.mock_server.core.config_files import ConfigError, load_accounts, load_catalog
from smmkit.mock_server.core.panel import Panel
from smmkit.mock_server.storage import engines
from smmkit.mock_server.storage.engines import open_store

__all__ = ["Config", "ConfigError", "build_panel", "load_accounts", "load_catalog", "sources",
           "store_has_state", "DEMO_KEY", "DEFAULT_PORT"]

DEMO_KEY = "smmkit-demo-key"
DEFAULT_PORT = 8080
MAX_BODY_BYTES = 8 * 1024 * 1024  # room for a 1 MB field; larger bodies get a JSON 413


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    db: str = ":memory:"  # the CLI defaults to store.default_db_path()
    accounts: str | None = None  # JSON file: [{"key", "balance", "currency"}]
    catalog: str | None = None  # JSON file: a list of services
    seed: int = 1
    speed: float = 1.0
    clock: str = "real"  # real | manual (frozen until advanced)
    workers: int = 2
    threads: int = 16
    dialect: str = "perfectpanel"
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    max_body: int = MAX_BODY_BYTES
    server: str = "builtin"  # builtin (fastest, every fault kind) | gunicorn | granian (no drop)
    robust: bool = False  # answer with seeded awkward-but-valid variants (client robustness)
    journal_limit: int = 10_000  # newest journal entries kept; 0 turns the journal off
    request_log: str = "off"  # one console line per request: off | text | color | json


def store_has_state(db: str) -> bool:
    """Whether `db` already holds a panel (so omitted options keep what it has)."""
    if engines.is_postgres(db):
        return engines.postgres_has_state(db)
    if db == ":memory:" or not Path(db).exists():
        return False
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT 1 FROM state").fetchone() is not None
    except sqlite3.Error:
        return False


def sources(config: Config, *, had_state: bool) -> dict[str, str]:
    """Where the accounts and the catalogue come from: the command line (an explicit file),
    the store (kept from an earlier run) or the defaults (the shipped files, a new store)."""
    def origin(explicit: str | None) -> str:
        if explicit:
            return f"command line ({explicit})"
        return "store" if had_state else "defaults"

    return {"accounts": origin(config.accounts), "catalog": origin(config.catalog)}


def build_panel(config: Config) -> Panel:
    """A panel over `config.db`. Explicit beats stored: a new store is filled from the accounts
    and catalogue files (or the shipped defaults); an existing one keeps its state and orders,
    but an explicit `--accounts` file is upserted by key (balance and currency set, other keys
    kept), an explicit `--catalog` file replaces the catalogue, and the clock runs at `--speed`.
    Both files are checked before the store is touched."""
    clock = manual_clock() if config.clock == "manual" else real_clock(config.speed)
    accounts = load_accounts(config.accounts)
    catalog = load_catalog(config.catalog)
    store = open_store(config.db)  # SQLite for a path or :memory:, PostgreSQL for a URL
    fresh = not store.ops.has_state(store.connection())
    panel = Panel(store, seed=config.seed, accounts=accounts, catalog=catalog, clock=clock)
    if not fresh:
        from smmkit.mock_server.core import steering as admin

        if config.accounts:
            missing = {spec.key for spec in admin.specs_missing(panel, accounts)}
            for spec in accounts:
                if spec.key in missing:
                    panel.create_account(spec.key, spec.balance, spec.currency)
                else:
                    admin.change_account(panel, spec.key, {"balance": str(spec.balance),
                                                           "currency": spec.currency})
        if config.catalog:
            admin.replace_catalog(panel, catalog)
        state = panel.clock_state()
        if config.clock == "real" and not state.frozen and state.speed != config.speed:
            panel.change_clock(lambda c, wall: c.with_speed(wall, config.speed))
    return panel
