"""Where the storage engine is chosen, and nowhere else: `open_store(url)`.

A `postgresql://` (or `postgres://`) URL opens the PostgreSQL store, so any number of
servers on any hosts share one panel; anything else — a file path or `:memory:` — is the
embedded SQLite store. The PostgreSQL driver is imported only for such a URL, so SQLite users
never load it. Both stores offer the same interface (transaction(), snapshot(), connection(),
`ops`, close()), and the core never asks which one it has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:  # the driver is imported only for a PostgreSQL URL, never to name a type
    from smmkit.mock_server.storage.journal import Journal
    from smmkit.mock_server.storage.postgres_journal import PostgresJournal

# Either journal: whatever uses one is checked against both (they offer one interface).
AnyJournal = Union["Journal", "PostgresJournal"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url: str) -> bool:
    return str(url).startswith(POSTGRES_SCHEMES)


def open_store(url: str, *, migrate: bool = True) -> Any:
    """The store at `url`, its tables created or migrated to the current schema version
    (with `migrate=False` a PostgreSQL database behind it is refused instead)."""
    if is_postgres(url):
        from smmkit.mock_server.storage.postgres import PostgresStore

        return PostgresStore(str(url), migrate=migrate)
    from smmkit.mock_server.storage.sqlite import Store

    return Store(url)


def open_journal(store: Any, limit: int) -> AnyJournal:
    """The request journal for `store`: a table in the shared database for PostgreSQL (one
    journal for every server), files beside the SQLite store otherwise."""
    if is_postgres(getattr(store, "path", "")):
        from smmkit.mock_server.storage.postgres_journal import PostgresJournal

        return PostgresJournal(store, limit=limit)
    from smmkit.mock_server.storage.journal import Journal

    return Journal(store, limit=limit)


def describe(store: Any) -> str:
    """Where the store lives, for printing (never a password)."""
    display = getattr(store, "display", None)
    if display:
        return str(display)
    return f"{'(throw-away) ' if getattr(store, 'temporary', False) else ''}{store.path}"


def inspect(url: str) -> dict[str, Any]:
    """What `smmkit db info` shows, read without creating or migrating anything: the engine,
    where the store is, its schema version and this smmkit's, and how many accounts and
    orders it holds. `version` 0 means no smmkit tables yet."""
    from smmkit.mock_server.storage import schema

    info: dict[str, Any] = {"engine": "postgresql" if is_postgres(url) else "sqlite",
                            "current_version": schema.SCHEMA_VERSION}
    if is_postgres(url):
        import psycopg
        from smmkit.mock_server.storage import postgres, postgres_schema

        info["location"] = postgres.redacted(url)
        try:
            with psycopg.connect(url, autocommit=True,
                                 connect_timeout=postgres.CONNECT_SECONDS) as pg:
                info["server"] = pg.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
                info["version"] = postgres_schema.version_of(pg)
                if info["version"]:
                    info.update(_counts(pg))
        except psycopg.Error as exc:
            raise OSError(postgres.describe(info["location"], exc)) from None
        return info
    import sqlite3
    from pathlib import Path

    info["location"] = str(url)
    if str(url) == ":memory:" or not Path(url).exists():
        info["version"] = 0
        return info
    try:
        lite = sqlite3.connect(f"file:{Path(url).resolve()}?mode=ro", uri=True)
        try:
            info["version"] = schema.version_of(lite)
            if info["version"]:
                info.update(_counts(lite))
        finally:
            lite.close()
    except sqlite3.Error as exc:
        raise OSError(f"cannot read the store {url}: {exc}") from None
    return info


# -- `smmkit serve --no-migrate` (issue 15): refuse a store this smmkit would have to migrate
def require_current(url: str) -> None:
    """Raise OSError (one line, naming the store without its password) unless the store at
    `url` is at this smmkit's schema version; reads only, so nothing is created or migrated.
    A throw-away `:memory:` store is always new and always allowed. A newer version is left
    to opening the store, which refuses it with its own message."""
    if str(url) == ":memory:":
        return
    found = inspect(url)
    version, current = found["version"], found["current_version"]
    if version >= current:
        return
    state = "has no smmkit tables" if version == 0 else f"is at schema version {version}"
    raise OSError(f"the store {found['location']} {state}, this smmkit needs schema version "
                  f"{current}, and --no-migrate does not migrate on start: run `smmkit db "
                  "upgrade` on it first")
# -- end of --no-migrate


def _counts(conn: Any) -> dict[str, int]:
    return {table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("accounts", "orders", "refills")}


def postgres_has_state(url: str) -> bool:
    """Whether the PostgreSQL database at `url` already holds a panel (False when it cannot be
    reached: opening the store then says why, in one line)."""
    import psycopg
    from smmkit.mock_server.storage import postgres, postgres_schema

    try:
        with psycopg.connect(url, autocommit=True,
                             connect_timeout=postgres.CONNECT_SECONDS) as conn:
            return bool(postgres_schema.version_of(conn)) and \
                conn.execute("SELECT 1 FROM state").fetchone() is not None
    except psycopg.Error:
        return False
