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


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), sig)
