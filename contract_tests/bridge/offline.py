"""`smmkit check --from-recording FILE`: judge a recording offline, exchange by exchange.

The recording is read with the kit's own `load_recorded` and judged by the same `Judge` the
proxy used, in the same order, so a recording judged again gives the verdicts the proxy gave
live. Where a verdict differs from the one recorded (the kit or the dialect changed since),
both are shown.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smmkit.contract_tests.bridge.judge import Verdict, judge_all
from smmkit.contract_tests.exchange import Exchange, load_recorded


class RecordingError(Exception):
    """The file is not a recording the kit can read."""


@dataclass(frozen=True)
class Judged:
    exchange: Exchange
    verdict: Verdict
    recorded: Verdict | None

    @property
    def changed(self) -> bool:
        return self.recorded is not None and (self.recorded.verdict, self.recorded.findings) \
            != (self.verdict.verdict, self.verdict.findings)


def judge_recording(path: str | Path, dialect: str | None = None) -> list[Judged]:
    try:
        exchanges = load_recorded(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"cannot read {path}: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordingError(f"{path} is not a recording (one JSON exchange per line): "
                             f"{exc}") from None
    judged = []
    for exchange, verdict in zip(exchanges, judge_all(exchanges, dialect), strict=True):
        recorded = exchange.extra.get("verdict")
        judged.append(Judged(exchange, verdict,
                             Verdict.from_json(recorded) if isinstance(recorded, dict) else None))
    return judged


def failed(judged: list[Judged], *, strict: bool = False) -> bool:
    bad = {"violation", "deviation"} if strict else {"violation"}
    return any(j.verdict.verdict in bad for j in judged)


def to_json(judged: list[Judged]) -> dict[str, Any]:
    return {"verdicts": dict(Counter(j.verdict.verdict for j in judged)),
            "exchanges": [{"action": j.exchange.action, "status": j.exchange.status,
                           "changed": j.changed, **j.verdict.to_json()} for j in judged]}


def report(judged: list[Judged], path: str, *, strict: bool = False,
           json_path: str | None = None) -> int:
    """Print the verdicts (rich table) and return the exit code: 1 when something failed."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"smmkit check — recording {path}")
    for column in ("#", "action", "status", "verdict", "dialect", "findings"):
        table.add_column(column)
    for i, j in enumerate(judged, 1):
        v = j.verdict
        notes = [f"{f['severity']} {f['check']}: {f['message'][:120]}" for f in v.findings]
        notes += [f"request: {r[:120]}" for r in v.request]
        if j.changed and j.recorded is not None:
            notes.append(f"(recorded live as {j.recorded.verdict})")
        table.add_row(str(i), j.exchange.action or "-", str(j.exchange.status), v.verdict,
                      v.dialect, "\n".join(notes))
    console.print(table)
    counts = Counter(j.verdict.verdict for j in judged)
    console.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no exchanges",
                  markup=False, highlight=False)
    if json_path:
        Path(json_path).write_text(json.dumps(to_json(judged), indent=2), "utf-8")
    return 1 if failed(judged, strict=strict) else 0


def run_offline(path: str, dialect: str, *, strict: bool = False,
                json_path: str | None = None) -> int:
    """What `check --from-recording` runs: judge, print, and the exit code (2: unreadable)."""
    import click

    try:
        judged = judge_recording(path, None if dialect == "auto" else dialect)
    except (RecordingError, ValueError) as exc:
        click.echo(f"Error: {exc}", err=True)
        return 2
    return report(judged, path, strict=strict, json_path=json_path)
