"""/_control/clock: read the panel clock, advance, freeze, resume, set it or change its speed."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, jsonify
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.clock import parse_duration
from smmkit.mock_server.core.panel import Panel
from smmkit.mock_server.web.control.common import body, panel

bp = Blueprint("clock", __name__)


@bp.get("/clock")
def clock() -> Any:
    return jsonify(clock_json(panel()))


@bp.post("/clock/<verb>")
def clock_change(verb: str) -> Any:
    the_panel, data = panel(), body()
    if verb == "advance":
        steering.advance_clock(the_panel, _seconds(data.get("by"), "by"))
    elif verb == "freeze":
        steering.freeze_clock(the_panel)
    elif verb == "resume":
        steering.resume_clock(the_panel)
    elif verb == "set":
        steering.set_clock(the_panel, _panel_time(data.get("time")))
    elif verb == "speed":
        steering.set_speed(the_panel, data.get("speed"))
    else:
        raise steering.NotFound(f"unknown clock operation {verb!r}: advance, freeze, resume, "
                                "set or speed")
    return jsonify(clock_json(the_panel))


def clock_json(the_panel: Panel) -> dict[str, Any]:
    """The clock as the control API shows it: epoch seconds, ISO 8601 (or null), speed, frozen."""
    state = the_panel.clock_state()
    now = state.now(the_panel.wall())
    try:
        iso = datetime.fromtimestamp(now, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):  # a clock run past year 9999 at high speed
        iso = None
    return {"now": now, "iso": iso, "speed": state.speed, "frozen": state.frozen}


def _seconds(value: Any, what: str) -> float:
    try:
        return float(parse_duration(value))  # float ok: seconds of panel time, not money
    except (ValueError, TypeError):
        raise steering.ControlError(f"bad duration for {what}: {value!r} (e.g. \"90s\", \"2h\", "
                                    "\"3d\")") from None


def _panel_time(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)  # float ok: epoch seconds, not money
        except OverflowError:
            raise steering.ControlError(f"bad time {str(value)[:40]}: too large") from None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise steering.ControlError(f"bad time {value!r}: epoch seconds or ISO 8601") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    raise steering.ControlError(f"bad time {value!r}: epoch seconds or ISO 8601")
