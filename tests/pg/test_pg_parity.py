"""The PostgreSQL operations keep up with SQLite's: every named table operation the core may
call (tables.py) exists in postgres_tables.py with the same signature, and the shared names
(records, column lists, exceptions) are the very same objects. Runs without PostgreSQL."""

from __future__ import annotations

import inspect

from smmkit.mock_server.storage import postgres_tables, tables


def public_functions(module: object) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(value) for name, value in vars(module).items()
            if inspect.isfunction(value) and not name.startswith("_")
            and value.__module__ == module.__name__}  # type: ignore[attr-defined]


def test_every_operation_exists_on_postgres_with_the_same_signature() -> None:
    sqlite_ops, pg_ops = public_functions(tables), public_functions(postgres_tables)
    assert sqlite_ops.keys() <= pg_ops.keys(), sorted(sqlite_ops.keys() - pg_ops.keys())
    assert {n: str(s) for n, s in sqlite_ops.items()} == \
        {n: str(pg_ops[n]) for n in sqlite_ops}


def test_records_limits_and_errors_are_shared_not_copied() -> None:
    for name in ("NoSuchAccount", "BalanceRefused", "MONEY_LIMIT", "SNAPSHOT_TABLES",
                 "RESET_TABLES", "AccountRow", "OrderRow", "ActiveOrderRow", "Pulse"):
        assert getattr(postgres_tables, name) is getattr(tables, name), name
