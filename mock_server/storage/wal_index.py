"""SQLite's WAL-index header, read where SQLite itself mapped `<db>-shm`: never through a file
descriptor of ours.

Why not simply open and map the file: POSIX record locks belong to the process, and closing any
descriptor of a file drops every lock the process holds on it (fcntl(2), "Advisory record
locking"). SQLite keeps its shared-memory locks on `<db>-shm` that way, among them the one that
tells a connection opening the database that others are alive. Opening and closing the file to
map it dropped them: the next process to open the database (another worker, `smmkit db info`,
a test's own reader) believed itself alone, truncated the file, and every worker that had it
mapped died of SIGBUS (seen as a granian worker vanishing in the fuzz suite).

So the header is read from SQLite's own mapping of the file, found in /proc/self/maps by the
file's device and inode. That memory stays mapped while any connection of this process holds
the WAL index open; the caller's own connection does from its first read until it is closed
(sqlite.py finds the mapping only after such a read, and forgets it with the connection).
Where there is no such mapping (not Linux, another VFS, heap-memory WAL index) `find` answers
None and the caller asks `PRAGMA data_version` every time instead.
"""

from __future__ import annotations

import ctypes
import os

HEADER = 48  # bytes of one copy of the header; SQLite keeps two, one after the other


class WalIndex:
    """The first bytes of one mapping of a WAL index."""

    def __init__(self, address: int) -> None:
        self.address = address

    def header(self) -> bytes | None:
        """The header when both its copies agree, else None (a commit is writing it: SQLite
        writes the second copy first and reads them the other way round)."""
        both = ctypes.string_at(self.address, 2 * HEADER)
        first = both[:HEADER]
        return first if first == both[HEADER:] else None


def find(db_path: str | os.PathLike[str]) -> WalIndex | None:
    """This process's mapping of the start of `<db_path>-shm`, or None."""
    try:
        info = os.stat(f"{os.fspath(db_path)}-shm")
        maps = open("/proc/self/maps", encoding="ascii", errors="replace")  # noqa: SIM115
    except OSError:
        return None
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}"
    with maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if (len(fields) == 6 and fields[4] == str(info.st_ino) and fields[3] == device
                    and fields[1].startswith("r") and int(fields[2], 16) == 0):
                start, end = (int(part, 16) for part in fields[0].split("-"))
                if end - start >= 2 * HEADER:
                    return WalIndex(start)
    return None
