"""The read cache's look at SQLite's WAL-index header leaves SQLite's locks alone.

Closing any descriptor of a file drops every POSIX lock the process holds on it. The header used
to be mapped through a descriptor of our own, closed at once: that dropped the lock by which
SQLite tells a newly opening connection that others are alive (the "DMS" byte of `<db>-shm`), so
the next process to open the database truncated the file and the workers mapping it died of
SIGBUS (a granian worker, in the fuzz suite)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from engines import sqlite_only
from smmkit.mock_server.storage import wal_index
from smmkit.mock_server.storage.sqlite import Store

# SQLite's unix VFS: the shared-memory locks start at byte 120 of `<db>-shm`, eight of them,
# then the DMS byte (os_unix.c: UNIX_SHM_BASE, UNIX_SHM_DMS).
DMS_BYTE = 128

PROBE = """
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))
except OSError:
    print("held")
else:
    print("free")
"""


def _dms_lock(path: Path) -> str:
    """Whether another process could take the DMS byte exclusively ("free") or not."""
    out = subprocess.run([sys.executable, "-c", PROBE, f"{path}-shm", str(DMS_BYTE)],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


@sqlite_only("about SQLite's own shared-memory file")
def test_the_header_is_read_without_dropping_sqlites_locks(tmp_path: Path) -> None:
    store = Store(tmp_path / "panel.db")
    try:
        store.epoch()
        assert store._local.shm is not None, "the header should be read from SQLite's mapping"
        assert _dms_lock(store.path) == "held"
        for _ in range(3):  # new threads map it again, and again nothing is dropped
            thread = threading.Thread(target=store.epoch)
            thread.start()
            thread.join()
        assert _dms_lock(store.path) == "held"
    finally:
        store.close()


@sqlite_only("about SQLite's own shared-memory file")
def test_the_header_moves_with_every_commit_of_another_connection(tmp_path: Path) -> None:
    store = Store(tmp_path / "panel.db")
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        first = store.epoch()
        assert store.epoch() == first
        heads = {store._local.shm.header()}
        for n in range(5):
            other.execute(f"CREATE TABLE t{n} (x)")
            assert store.epoch() != first
            first = store.epoch()
            heads.add(store._local.shm.header())
        assert len(heads) == 6
    finally:
        other.close()
        store.close()


def test_no_mapping_is_no_header(tmp_path: Path) -> None:
    assert wal_index.find(tmp_path / "absent.db") is None
    (tmp_path / "plain.db-shm").write_bytes(b"\0" * 4096)  # a file nobody mapped
    assert wal_index.find(tmp_path / "plain.db") is None


def _dms_holders(path: Path) -> set[int]:
    """The pids holding a lock on the DMS byte of `<path>-shm` (from /proc/locks)."""
    inode = Path(f"{path}-shm").stat().st_ino
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        if len(fields) >= 8 and fields[5].endswith(f":{inode}") and fields[6] == str(DMS_BYTE):
            holders.add(int(fields[4]))
    return holders


@sqlite_only("about SQLite's own shared-memory file")
def test_a_forked_worker_takes_its_own_lock_rather_than_rely_on_its_parents(
        tmp_path: Path) -> None:
    """A connection open in the parent when it forks used to leave the child reusing the
    parent's shared-memory state, so the child never announced itself to other processes."""
    import os
    import signal
    import time

    store = Store(tmp_path / "panel.db")
    try:
        store.epoch()
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: use the store, say so, wait to be killed
            try:
                store.epoch()
                os.write(ready_w, b"x")
                time.sleep(30)
            finally:
                os._exit(0)
        try:
            assert os.read(ready_r, 1) == b"x"
            assert pid in _dms_holders(store.path)
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(ready_r)
            os.close(ready_w)
    finally:
        store.close()
