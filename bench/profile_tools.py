"""py-spy against the fake's workers under wrk load, and a summary of where the time goes.

`record` samples every worker process (one `py-spy record --format raw --function` each, at
the same time as a wrk run) and merges the collapsed stacks; `summarise` ranks functions by
self time (the leaf of a sample) and by inclusive time (anywhere on the stack). Samples of idle
threads are left out by py-spy, so the shares are of time spent working.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path

import harness as h


def ensure_py_spy() -> str:
    found = shutil.which("py-spy")
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "install", "py-spy"], check=True)
        found = shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is required for --profile (pip install py-spy)")
    return found


def record(spy: str, pids: list[int], url: str, scenario: str, seconds: float, data: Path,
           out_prefix: Path) -> collections.Counter[str]:
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    spies = []
    for pid in pids:
        target = Path(f"{out_prefix}-{pid}.txt")
        spies.append((target, subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
             "--format", "raw", "--function", "--nonblocking", "-o", str(target)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    h.run_wrk(url, scenario, seconds + 1, data, f"profile-{scenario}")
    stacks: collections.Counter[str] = collections.Counter()
    for target, proc in spies:
        proc.wait(timeout=seconds + 30)
        if target.exists():
            for line in target.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if stack and count.isdigit():
                    stacks[stack] += int(count)
            merged = Path(f"{out_prefix}.txt")
            with merged.open("a") as handle:
                handle.write(target.read_text())
            target.unlink()
    return stacks


def _name(frame: str) -> str:
    # "respond (mock_server/app.py)" -> keep as is, but shorten site-packages paths
    if "site-packages/" in frame:
        head, _, tail = frame.partition("(")
        return f"{head}({tail.split('site-packages/', 1)[1]}"
    if "/lib/python3" in frame:
        head, _, tail = frame.partition("(")
        return f"{head}(stdlib {tail.rsplit('/', 1)[-1]}"
    return frame.replace(str(h.ROOT) + "/", "")


# Leaves where a thread waits rather than works (py-spy --nonblocking cannot always tell).
IDLE_LEAVES = ("_worker (", "EpollSelector.select (", "Condition.wait (", "Arbiter.sleep (")


def summarise(stacks: collections.Counter[str], top: int = 20) -> dict:
    """Shares of the busy samples (idle leaves dropped), by self and by inclusive time."""
    busy = {s: n for s, n in stacks.items()
            if not _name(s.split(";")[-1]).startswith(IDLE_LEAVES)}
    total = sum(busy.values()) or 1
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for stack, count in busy.items():
        frames = [_name(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def ranked(counter: collections.Counter[str]) -> list[list]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {"samples": sum(stacks.values()), "busy_samples": total, "self": ranked(own),
            "inclusive": ranked(inclusive)}
