"""bench/cpu.py: the server CPU per request the bench reports comes from /proc, for the whole
process tree, and only for the time between start() and stop()."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import cpu  # noqa: E402

BUSY = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def test_utime_and_stime_are_read_after_a_name_with_spaces_and_parentheses():
    # fields 3.. of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime(14) stime(15) cutime cstime ...
    stat = "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 10 0 0 0 730 41 5 6 20 0 3 0"
    assert cpu.ticks_from_stat(stat) == 771


def test_the_tree_holds_children_and_grandchildren():
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "print(child.pid, flush=True)\ntime.sleep(30)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(parent.stdout.readline())
        assert set(cpu.process_tree(parent.pid)) == {parent.pid, grandchild}
    finally:
        subprocess.run(["kill", str(grandchild)], check=False)
        parent.kill()
        parent.wait()


def test_the_meter_counts_a_busy_child_and_not_the_time_before_start():
    """A parent that burns 0.3 s of CPU in a child, after the meter started: about 0.3 s; the
    0.3 s the parent burned before start() is not counted."""
    code = (BUSY.format(seconds=0.3) + "import subprocess, sys\nprint('ready', flush=True)\n"
            "sys.stdin.readline()\n"
            f"subprocess.run([sys.executable, '-c', {BUSY.format(seconds=0.3)!r} "
            "+ 'import time; time.sleep(30)'], timeout=60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline() == "ready\n"
        meter = cpu.CpuMeter(parent.pid)
        meter.start()
        parent.stdin.write("go\n")
        parent.stdin.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(cpu.process_tree(parent.pid)) < 2:
            time.sleep(0.02)
        busy_child = cpu.process_tree(parent.pid)[1]
        while time.monotonic() < deadline and cpu.cpu_ticks(busy_child) < 0.3 * cpu.TICKS_PER_SECOND:
            time.sleep(0.05)
        seconds = meter.stop()
        assert 0.25 <= seconds < 0.6  # the child's 0.3 s plus its start-up; not the parent's 0.3
    finally:
        for pid in cpu.process_tree(parent.pid)[1:]:
            subprocess.run(["kill", str(pid)], check=False)
        parent.kill()
        parent.wait()


def test_per_request_is_microseconds_and_none_without_requests():
    assert cpu.per_request_us(0.5, 10_000) == 50.0
    assert cpu.per_request_us(0.5, 0) is None
