"""The files of one store on disk, and who is serving it.

One `smmkit serve` per store: a second one on the same `--db` would run beside the first and
its `--catalog` would replace the first one's catalogue while it serves. `ServeLock` is an
exclusive `flock` on `<db>.serve.pid` (the holder's pid written inside), taken by the process
that starts the server and held until it exits; gunicorn's workers are forks of it and granian's
workers its children, so one server's workers never ask for it.

`remove_store(db)` is `serve --fresh` and `smmkit reset --db PATH`: every file the store uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path

from smmkit.mock_server.storage.sqlite import TEMP_SUFFIXES

PID_SUFFIX = ".serve.pid"
JOURNAL_LOGS_SUFFIX = ".journal.d"  # the folder of per-worker journal logs (storage/journal.py)


class StoreBusy(RuntimeError):
    """Another process is serving the store; the message names it."""


class ServeLock:
    """Exclusive right to serve (or wipe) the store at `db` while held."""

    def __init__(self, db: str | os.PathLike[str]) -> None:
        self.db = Path(db)
        self.path = Path(f"{self.db}{PID_SUFFIX}")
        self._fd: int | None = None

    def acquire(self, doing: str = "serve") -> ServeLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreBusy(
                f"cannot {doing} {self.db}: another smmkit serve (pid {holder}) is serving it. "
                f"Stop that one first, or use another --db.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> ServeLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def store_files(db: str | os.PathLike[str]) -> list[Path]:
    """Every file the store at `db` uses that exists now: the database, its WAL and shared
    memory, its process lock, the request journal with its own WAL and its per-worker logs."""
    return [path for suffix in (*TEMP_SUFFIXES, JOURNAL_LOGS_SUFFIX)
            if (path := Path(f"{db}{suffix}")).exists()]


def remove_store(db: str | os.PathLike[str]) -> list[Path]:
    """Delete every file of the store at `db` (the caller holds its ServeLock); what went."""
    removed = []
    for path in store_files(db):
        with contextlib.suppress(FileNotFoundError):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed
