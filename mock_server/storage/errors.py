"""Failures of the storage layer that the layers above answer for, whatever the engine."""

from __future__ import annotations


class StoreUnavailable(ConnectionError):
    """The database cannot be reached right now (down, restarting, a dropped connection).
    Nothing of the failed operation was committed, except possibly when the connection broke
    during COMMIT itself; the panel answers 503 and serves again when the database is back."""
