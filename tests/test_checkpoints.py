"""The WAL is copied back into the database file off the request path (storage/checkpoints.py):
no commit checkpoints, the WAL starts over even under writers that never pause, and a
checkpoint leaves every commit in the database file itself."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from engines import sqlite_only
from smmkit.mock_server.storage import checkpoints
from smmkit.mock_server.storage.sqlite import Store

pytestmark = sqlite_only("about SQLite's WAL and its checkpoints")


def _write(store: Store, name: str) -> None:
    with store.transaction() as db:
        db.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (name, "x" * 200))


@pytest.fixture
def small_wal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoints, "START_FRAMES", 40)
    monkeypatch.setattr(checkpoints, "FINISH_FRAMES", 10)
    monkeypatch.setattr(checkpoints, "PAUSE_S", 0.005)


def test_commits_never_checkpoint(tmp_path: Path) -> None:
    store = Store(tmp_path / "p.db")
    try:
        db = store.connection()
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for i in range(300):  # below START_FRAMES, whatever SQLite's own threshold
            _write(store, f"n{i}")
        header = store._wal_index(db).header()  # type: ignore[union-attr]
        assert checkpoints.frames_in(header) >= 300
        assert store._checkpointer.passes == 0
    finally:
        store.close()


def test_a_checkpoint_leaves_every_commit_in_the_database_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "p.db")
    try:
        for i in range(500):
            _write(store, f"n{i}")
        checkpoints.checkpoint(store)
        shutil.copy(tmp_path / "p.db", tmp_path / "copy.db")  # the file alone, no WAL
        copy = sqlite3.connect(tmp_path / "copy.db")
        names = {n for (n,) in copy.execute("SELECT name FROM meta WHERE name LIKE 'n%'")}
        copy.close()
        assert names == {f"n{i}" for i in range(500)}
    finally:
        store.close()


def _write_for(path: str, seconds: float, tag: str) -> None:
    store = Store(path)
    deadline, i = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        _write(store, f"{tag}{i}")
        i += 1
    store.close()


def test_the_wal_starts_over_while_writers_never_pause(tmp_path: Path, small_wal: None) -> None:
    """Two processes and a thread commit without a pause for two seconds (thousands of
    commits, each a few WAL pages): the copy outside the lock alone never catches up with
    them; finishing it under the write lock lets the WAL start over again and again."""
    path = tmp_path / "p.db"
    store = Store(path)
    ctx = multiprocessing.get_context("fork")
    other = ctx.Process(target=_write_for, args=(str(path), 2.0, "p"))
    other.start()
    thread = threading.Thread(target=_write_for, args=(str(path), 2.0, "t"))
    thread.start()
    most = seen = 0
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            _write(store, f"m{seen}")
            seen += 1
            index = store._wal_index(store.connection())
            head = index.header() if index is not None and seen % 20 == 0 else None
            if head is not None:  # (None: another process is committing)
                most = max(most, checkpoints.frames_in(head))
        thread.join()
        other.join(30)
        assert other.exitcode == 0
        total = store.connection().execute("SELECT COUNT(*) FROM meta WHERE name GLOB "
                                           "'[mpt][0-9]*'").fetchone()[0]
        assert total > 1_000  # the writers did write
        assert store._checkpointer.passes > 0
        assert most < 2_000, f"the WAL grew to {most} frames over {total} commits"
    finally:
        store.close()


def test_a_copier_that_cannot_start_fails_no_commit_and_starts_later(
        tmp_path: Path, small_wal: None, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "p.db")
    try:
        with monkeypatch.context() as patched:
            def refuse(self: threading.Thread) -> None:
                raise RuntimeError("can't start new thread")
            patched.setattr(threading.Thread, "start", refuse)
            for i in range(100):  # past START_FRAMES: every commit tries to wake the copier
                _write(store, f"n{i}")
        assert store.connection().execute(
            "SELECT COUNT(*) FROM meta WHERE name GLOB 'n[0-9]*'").fetchone()[0] == 100
        _write(store, "after")  # threads start again: this commit starts the copier
        deadline = time.monotonic() + 5
        while store._checkpointer.passes == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store._checkpointer.passes > 0
    finally:
        store.close()


def test_closing_waits_for_a_pass_under_way(tmp_path: Path) -> None:
    """A throw-away store removes its files on close: a pass still running would reopen them."""
    store = Store(":memory:")
    path = store.path
    store._checkpointer.running.acquire()  # a pass under way
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive() and path.exists()
    store._checkpointer.running.release()
    closer.join(5)
    assert not closer.is_alive() and not path.exists()
