"""The panel clock: panel time as a function of wall time. No I/O.

A clock is a small value — an anchor (wall time ↔ panel time), a speed factor and a frozen
flag — so it can be stored and shared by worker processes. `now()` asks the wall clock it was
given (time.time by default) and maps it: real (speed 1), scaled (speed N), frozen/manual
(advanced only when told).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

WallClock = Callable[[], float]


@dataclass(frozen=True)
class ClockState:
    anchor_wall: float
    anchor_panel: float
    speed: float = 1.0
    frozen: bool = False

    def now(self, wall: float) -> float:
        if self.frozen:
            return self.anchor_panel
        return self.anchor_panel + (wall - self.anchor_wall) * self.speed

    def rebased(self, wall: float) -> ClockState:
        """The same clock re-anchored at `wall` (so speed and freeze changes apply from now)."""
        return replace(self, anchor_wall=wall, anchor_panel=self.now(wall))

    def frozen_at(self, wall: float) -> ClockState:
        return replace(self.rebased(wall), frozen=True)

    def resumed(self, wall: float) -> ClockState:
        return replace(self, anchor_wall=wall, frozen=False)

    def advanced(self, wall: float, seconds: float) -> ClockState:
        if seconds < 0:
            raise ValueError(f"cannot move the clock backwards by {seconds!r} seconds")
        base = self.rebased(wall)
        return replace(base, anchor_panel=base.anchor_panel + seconds)

    def set_to(self, wall: float, panel_time: float) -> ClockState:
        return replace(self, anchor_wall=wall, anchor_panel=panel_time)

    def with_speed(self, wall: float, speed: float) -> ClockState:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        return replace(self.rebased(wall), speed=speed)


MAX_PANEL_TIME = 253_402_300_799.0  # 9999-12-31T23:59:59Z: the last instant a date can show
MAX_SPEED = 1_000_000.0  # a day in under a tenth of a second: beyond this is no test, only noise
MIN_SPEED = 0.001


def check_clock(state: ClockState, wall: float) -> ClockState:
    """`state` when it is a clock the panel can run on, else ValueError saying why: finite
    anchors, a speed in [MIN_SPEED, MAX_SPEED] and panel time now within year 9999."""
    if not (math.isfinite(state.anchor_wall) and math.isfinite(state.anchor_panel)):
        raise ValueError("the clock must stay finite")
    if not (isinstance(state.speed, (int, float)) and math.isfinite(state.speed)
            and MIN_SPEED <= state.speed <= MAX_SPEED):
        raise ValueError(f"speed must be a number in [{MIN_SPEED:g}, {MAX_SPEED:g}], got "
                         f"{state.speed!r}")
    now = state.now(wall)
    if not 0 <= now <= MAX_PANEL_TIME:
        raise ValueError(f"panel time {now:.0f} is outside 1970..9999 (at most "
                         f"{MAX_PANEL_TIME:.0f} epoch seconds)")
    return state


def real_clock(speed: float = 1.0, wall: WallClock = time.time) -> ClockState:
    now = wall()
    return ClockState(anchor_wall=now, anchor_panel=now, speed=speed)


def manual_clock(start: float = 1_767_225_600.0) -> ClockState:
    """A frozen clock at 2026-01-01T00:00:00Z that moves only when advanced."""
    return ClockState(anchor_wall=0.0, anchor_panel=start, speed=1.0, frozen=True)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.ASCII)


def parse_duration(text: str | int) -> int | Decimal:
    """`"90s"`, `"2h"`, `"3d"`, `"1.5m"` or a plain number of seconds → seconds (exact)."""
    if isinstance(text, bool):
        raise ValueError(f"bad duration {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"bad duration {text!r}: negative")
        return text
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"bad duration {text!r}: use a number with s, m, h, d or w")
    try:
        amount = Decimal(match.group(1))
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        raise ValueError(f"bad duration {text!r}") from None
    seconds = amount * _UNITS[match.group(2) or "s"]
    return int(seconds) if seconds == int(seconds) else seconds
