"""Copying the WAL back into the database file, off the request path.

SQLite's own automatic checkpoint runs inside the COMMIT that pushes the WAL past 1,000 pages:
that request copies every page the WAL holds into the database file and syncs both files while
it still holds the write lock, so every other writer of every worker waits (seen: a stall of up
to 10 ms every ~140 orders, the add scenario's p99 tail, and about a tenth of an add's CPU).

Here the store's connections never checkpoint (`PRAGMA wal_autocheckpoint=0`). A commit that
leaves the WAL at `START_FRAMES` or more wakes a thread of its process, which copies the WAL back
in rounds that take no lock of ours (a PASSIVE checkpoint blocks no reader and no writer, and
the copying happens with the GIL released), then finishes under the write lock once at most
`FINISH_FRAMES` are left (or after `MAX_ROUNDS` rounds, if writers outpace the copy). Only
a complete checkpoint lets the next writer start the WAL over from its beginning: without the
last step, writers that never pause keep the copy from ever catching up, and the WAL grows
without end. A bigger WAL also means fewer copies: a page written many times between
checkpoints (an account's balance, the last page of each index) is copied once.

So while a panel runs, its `-wal` file stays at about `START_FRAMES` pages (~40 MB): the
file is reused from its start, not truncated.

What a crash can lose is unchanged: commits are in the WAL either way (`synchronous=NORMAL`),
and checkpoints only move them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import time
import weakref
from typing import Any

START_FRAMES = 10_000  # pages in the WAL (~40 MB of 4 KB pages) that start a checkpoint
FINISH_FRAMES = 1_000  # pages left after a round outside the lock that may be finished under it
MAX_ROUNDS = 4  # rounds outside the lock before finishing under it, however much is left
FALLBACK_COMMITS = 256  # without a readable WAL index: commits between checkpoints
PAUSE_S = 0.05  # after a checkpoint: one a reader kept from completing is not retried at once


def frames_in(header: bytes) -> int:
    """The WAL's frame count from its WAL-index header: `mxFrame`, a native-order u32 at
    byte 16 (https://sqlite.org/walformat.html#the_wal_index_file_format)."""
    return int.from_bytes(header[16:20], sys.byteorder)


class Checkpointer:
    """One store's checkpoint thread in this process (started on first need, again in a
    forked child: threads do not survive fork)."""

    def __init__(self, store: Any) -> None:
        self._store = weakref.ref(store)
        self._wake = threading.Event()
        self._pid = 0
        self.running = threading.Lock()  # held by a round: fork waits for it (no SQLite mutex
        # may be held by a thread that the child will not have)
        self.passes = 0  # passes of the thread that ended without an error (tests read it)

    def wake(self) -> None:
        """Start this process's thread if it has none yet, and wake it. The pid is taken only
        once the thread runs: a start that failed is tried again by the next commit."""
        if self._pid != os.getpid():
            self._wake = threading.Event()
            self.running = threading.Lock()
            threading.Thread(target=_run, args=(self._store, self._wake, self),
                             name="smmkit-checkpoint", daemon=True).start()
            self._pid = os.getpid()
        self._wake.set()


def _run(ref: weakref.ReferenceType[Any], wake: threading.Event, owner: Checkpointer) -> None:
    """Checkpoint when woken; holds the store weakly and ends when it is gone or closed.

    Each pass closes its connection again: none is left open for a fork to copy into a child
    (the master's own store may checkpoint before it forks its workers)."""
    while True:
        wake.wait(timeout=1.0)
        store = ref()
        if store is None or store.closed:
            return
        if wake.is_set():
            wake.clear()
            with owner.running:
                try:
                    checkpoint(store)
                    owner.passes += 1
                except sqlite3.Error as exc:  # a later commit wakes it again
                    if not store.closed:
                        print(f"smmkit: copying the WAL back failed: {exc}", file=sys.stderr)
                except Exception as exc:  # not SQLite's: the next commit starts a new thread
                    owner._pid = 0
                    print(f"smmkit: the WAL copier stopped: {exc!r}", file=sys.stderr)
                    return
                finally:
                    store._drop_connection()
            del store
            time.sleep(PAUSE_S)
            continue
        del store


def checkpoint(store: Any) -> None:
    """Copy the WAL back into the database file: in rounds outside the lock, then the rest
    under it (on this thread's own connection of `store`). The rest is `FINISH_FRAMES` at
    most while the copy keeps up with the writers; more only when they outpace it for
    `MAX_ROUNDS` rounds, and that is when only the lock keeps the WAL from growing.

    Lock order: `Checkpointer.running`, then the store's write lock. A fork waits for
    `running`; forking from inside a transaction (the write lock held) would deadlock."""
    db = store.connection()
    for _ in range(MAX_ROUNDS):
        busy, wal, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if busy or wal < 0 or wal - copied <= FINISH_FRAMES:
            break
    with store.writing():
        if not store.closed:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _hold_for_fork(owners: weakref.WeakSet[Checkpointer]) -> None:
    for owner in list(owners):
        owner.running.acquire()


def _release_after_fork(owners: weakref.WeakSet[Checkpointer]) -> None:
    for owner in list(owners):
        with contextlib.suppress(RuntimeError):
            owner.running.release()


_OWNERS: weakref.WeakSet[Checkpointer] = weakref.WeakSet()
os.register_at_fork(before=lambda: _hold_for_fork(_OWNERS),
                    after_in_parent=lambda: _release_after_fork(_OWNERS),
                    after_in_child=lambda: _release_after_fork(_OWNERS))


def checkpointer_for(store: Any) -> Checkpointer:
    owner = Checkpointer(store)
    _OWNERS.add(owner)
    return owner
