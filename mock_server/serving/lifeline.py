"""Processes `smmkit serve` starts die with it, even when it is SIGKILLed.

SIGKILL gives a process no chance to stop its children: granian (its own session, so that a
terminal's Ctrl-C reaches it once, through us) kept serving and holding the port after
`smmkit serve` was killed. Linux's PR_SET_PDEATHSIG asks the kernel to signal a process when
its parent dies; each process we start sets it (granian's master before exec, gunicorn's and
granian's workers when they load the app). Elsewhere this is a no-op: gunicorn's workers still
notice a new parent within a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
# The pid of the `smmkit serve` process, inherited by everything it starts: a process that
# asks for its lifeline only after its parent already died (a granian worker still importing
# the app when its master was killed) sees that the serve process is no longer its ancestor.
ROOT_ENV = "SMMKIT_LIFELINE_ROOT"


def mark_root() -> None:
    """Call in the serving process before it starts any other: its pid becomes the root."""
    os.environ[ROOT_ENV] = str(os.getpid())


def _parent_of(pid: int) -> int | None:
    try:
        stat = open(f"/proc/{pid}/stat", encoding="ascii", errors="replace").read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces or ')'
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def _root_is_an_ancestor(root: int, depth: int = 4) -> bool:
    pid: int | None = os.getpid()
    for _ in range(depth):
        pid = _parent_of(pid) if pid else None
        if pid is None or pid <= 1:
            return False
        if pid == root:
            return True
    return False


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux only), and
    end now if the serving process is already gone."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    root = os.environ.get(ROOT_ENV, "")
    if root.isdigit() and int(root) != os.getpid():
        orphaned = not _root_is_an_ancestor(int(root))
    else:
        orphaned = os.getppid() != parent  # the parent died before the request took effect
    if orphaned:
        os.kill(os.getpid(), sig)
