"""Part of a transaction undone alone: the same statements on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class SavepointLost(RuntimeError):
    """A savepoint could not be rolled back to: the whole transaction is gone with it."""


@contextmanager
def savepoint(db: Any) -> Iterator[None]:
    """Part of a transaction that an exception undoes alone (and re-raises); the rest stays.
    The same statements on SQLite and PostgreSQL."""
    db.execute("SAVEPOINT part")
    try:
        yield
    except BaseException:
        try:
            db.execute("ROLLBACK TO SAVEPOINT part")
            db.execute("RELEASE SAVEPOINT part")
        except Exception as exc:
            raise SavepointLost(f"the transaction was lost: {exc}") from exc
        raise
    db.execute("RELEASE SAVEPOINT part")
