"""Configuration: one immutable value built at the edges (CLI options, tests) and handed in.

Nothing in the core reads the environment; `build_panel` turns a Config into a Panel.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from smmkit.mock_server.core.catalog import load_catalog, read_json_list
from smmkit.mock_server.core.clock import manual_clock, real_clock
from smmkit.mock_server.core.money import parse_money
from smmkit.mock_server.core.panel import AccountSpec, Panel
from smmkit.mock_server.storage.engines import open_store

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
    server: str = "gunicorn"  # gunicorn (every fault kind) | granian (fastest; cannot drop)
    robust: bool = False  # answer with seeded awkward-but-valid variants (client robustness)
    journal_limit: int = 10_000  # newest journal entries kept; 0 turns the journal off


def load_accounts(path: str | Path | None) -> list[AccountSpec]:
    """Accounts from a JSON list of {"key", "balance", "currency"} (default: the shipped demo)."""
    entries = read_json_list(path, "accounts.json", "an accounts")
    specs = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not entry["key"]:
            raise ValueError(f"bad account entry {entry!r}: needs a non-empty string key")
        balance = parse_money(entry.get("balance", "0"))
        if balance < 0:
            raise ValueError(f"account {entry['key']!r}: negative balance")
        specs.append(AccountSpec(entry["key"], balance, str(entry.get("currency", "USD"))))
    if len({s.key for s in specs}) != len(specs):
        raise ValueError("an accounts file has duplicate keys")
    return specs


def build_panel(config: Config) -> Panel:
    """A panel over `config.db`. A new store is filled from the accounts and catalogue files;
    an existing one keeps its state, gains accounts an explicit `--accounts` file adds, takes
    the catalogue of an explicit `--catalog` file, and runs its clock at `--speed`."""
    clock = manual_clock() if config.clock == "manual" else real_clock(config.speed)
    accounts = load_accounts(config.accounts)
    catalog = load_catalog(config.catalog)
    store = open_store(config.db)  # SQLite for a path or :memory:, PostgreSQL for a URL
    fresh = not store.ops.has_state(store.connection())
    panel = Panel(store, seed=config.seed, accounts=accounts, catalog=catalog, clock=clock)
    if not fresh:
        from smmkit.mock_server.core import steering as admin

        for spec in admin.specs_missing(panel, accounts) if config.accounts else ():
            panel.create_account(spec.key, spec.balance, spec.currency)
        if config.catalog:
            admin.replace_catalog(panel, catalog)
        state = panel.clock_state()
        if config.clock == "real" and not state.frozen and state.speed != config.speed:
            panel.change_clock(lambda c, wall: c.with_speed(wall, config.speed))
    return panel
