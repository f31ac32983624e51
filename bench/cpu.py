"""Server CPU time from /proc, for the "µs of server CPU per request" column.

wrk's req/s says how fast a server answered on a machine it shares with wrk; CPU per request says
what each answer cost, which stays comparable when the load generator or another process takes
cores. It is read from /proc/PID/stat (utime + stime, every thread of the process) for the server
process and all its descendants (smmkit's master and its workers; the JVM is one process), once
before and once after a wrk run.
"""

from __future__ import annotations

import os

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...), read from /proc."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as handle:
                    kids = [int(p) for p in handle.read().split()]
            except OSError:
                continue
            found += kids
            pending += kids
    return found


def process_tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


def ticks_from_stat(stat: str) -> int:
    """utime + stime from the text of /proc/PID/stat.

    The command name (field 2) may hold spaces or parentheses, so fields are counted after the
    last ')'; utime and stime are fields 14 and 15 of proc(5), i.e. 12 and 13 after it.
    """
    after_name = stat.rsplit(")", 1)[1].split()
    return int(after_name[11]) + int(after_name[12])


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process in clock ticks; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return ticks_from_stat(handle.read())
    except (OSError, IndexError):
        return 0


class CpuMeter:
    """CPU seconds a process tree spent between `start()` and `stop()`.

    Per process, so a worker that appears during the run counts from zero and one that exits
    counts up to its last reading (a server's workers normally live through the whole run).
    """

    def __init__(self, root_pid: int) -> None:
        self._root_pid = root_pid
        self._before: dict[int, int] = {}
        self.seconds = 0.0

    def start(self) -> None:
        self._before = {pid: cpu_ticks(pid) for pid in process_tree(self._root_pid)}

    def stop(self) -> float:
        after = {pid: cpu_ticks(pid) for pid in process_tree(self._root_pid)}
        ticks = sum(max(0, after.get(pid, self._before.get(pid, 0)) - self._before.get(pid, 0))
                    for pid in after.keys() | self._before.keys())
        self.seconds = ticks / TICKS_PER_SECOND
        return self.seconds


def per_request_us(cpu_s: float, requests: int) -> float | None:
    """µs of CPU per answered request; None when nothing was answered."""
    return round(cpu_s * 1e6 / requests, 1) if requests else None
