"""A `Report` as JUnit XML (for CI), JSON (for machines) and one self-contained HTML page (for
people): inline CSS, no scripts, no external assets, so it can be mailed or attached as is."""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from smmkit.contract_tests.runner import Report, _action_row
from smmkit.contract_tests.violation import Violation


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def to_dict(report: Report) -> dict[str, Any]:
    return {
        "url": report.url,
        "ok": report.ok,
        "dialect": report.dialect,
        "dialect_scores": report.dialect_scores,
        "seed": report.seed,
        "strict": report.strict,
        "allow_orders": report.allow_orders,
        "budget": _money(report.budget),
        "opening_balance": _money(report.opening_balance),
        "closing_balance": _money(report.closing_balance),
        "spent": _money(report.spent),
        "exchanges": len(report.exchanges),
        "exit_code": report.exit_code,
        "headline": report.headline,
        "partial": report.partial,
        "duration_seconds": round(report.duration, 3),
        "checks": report.check_results(),
        "not_run": report.not_run,
        "timeline": report.timeline,
        "summary": {"by_action": report.by_action(), "by_family": report.by_family()},
        "findings": [v.to_dict() for v in report.findings],
        "ledger": [
            {"action": e.action, "order": e.order, "service": e.service, "quantity": e.quantity,
             "expected_charge": _money(e.expected_charge),
             "balance_after": _money(e.balance_after), "note": e.note}
            for e in report.ledger
        ],
    }


def to_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False)


def to_junit(report: Report) -> str:
    """One testsuite; one testcase per (action, check family) seen, failures listed inside."""
    grouped: dict[tuple[str, str], list[Violation]] = defaultdict(list)
    for action in report.by_action():
        for family in ("transport", "schema", "errors", "money", "semantics", "probe"):
            grouped[(action, family)] = []
    for v in report.findings:
        grouped[(_action_row(v.action) if v.action else "(session)", v.family)].append(v)
    failures = sum(1 for vs in grouped.values() if any(_fails(report, v) for v in vs))
    errors = 1 if report.headline else 0
    suite = ET.Element("testsuite", name="smmkit contract", tests=str(len(grouped) + errors),
                       failures=str(failures), errors=str(errors), skipped="0")
    props = ET.SubElement(suite, "properties")
    for name, value in (("url", report.url), ("dialect", report.dialect),
                        ("seed", str(report.seed)), ("partial", str(report.partial).lower()),
                        ("headline", report.headline)):
        ET.SubElement(props, "property", name=name, value=value)
    if report.headline:
        case = ET.SubElement(suite, "testcase", classname="smmkit", name="diagnosis")
        ET.SubElement(case, "error", message=report.headline, type="PanelNotCheckable")
    for (action, family), found in sorted(grouped.items()):
        case = ET.SubElement(suite, "testcase", classname=f"smmkit.{action}", name=family)
        failing = [v for v in found if _fails(report, v)]
        if failing:
            failure = ET.SubElement(case, "failure", message=f"{len(failing)} finding(s)",
                                    type="ContractViolation")
            failure.text = "\n\n".join(str(v) for v in failing)
        others = [v for v in found if not _fails(report, v)]
        if others:
            ET.SubElement(case, "system-out").text = "\n\n".join(str(v) for v in others)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def _fails(report: Report, v: Violation) -> bool:
    return v.severity == "violation" or (report.strict and v.severity == "deviation")


@dataclass(frozen=True)
class Group:
    """Findings of one check on one action whose messages differ only in numbers and ids."""

    check: str
    action: str
    severity: str
    shape: str
    examples: tuple[Violation, ...]
    count: int


_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?")


def group(findings: Sequence[Violation], examples: int = 3) -> list[Group]:
    """Same check, action and message shape -> one Group with a count and up to `examples`."""
    buckets: dict[tuple[str, str, str, str], list[Violation]] = {}
    for v in findings:
        shape = _VARYING.sub("…", v.message)
        buckets.setdefault((v.check, v.action, v.severity, shape), []).append(v)
    order = {"violation": 0, "deviation": 1, "note": 2}
    groups = [Group(check, action, severity, shape, tuple(found[:examples]), len(found))
              for (check, action, severity, shape), found in buckets.items()]
    return sorted(groups, key=lambda g: (order.get(g.severity, 3), g.check, g.action))


def to_html(report: Report) -> str:
    """One self-contained page from the Jinja2 template, autoescaped: text a hostile panel
    sent (service names, error texts, bodies) can never become markup."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("smmkit.contract_tests", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["money"] = lambda value: _money(value) or "-"
    return env.get_template("report.html.j2").render(
        report=report, groups=group(report.findings), checks=report.check_results(),
        version=_version(), when=time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                time.gmtime(report.started or time.time())))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smmkit")
    except PackageNotFoundError:
        return "unknown"


def write(report: Report, *, junit: str | Path | None = None, json_path: str | Path | None = None,
          html_path: str | Path | None = None) -> list[Path]:
    """Write the requested formats; returns the paths written."""
    written: list[Path] = []
    for path, render in ((junit, to_junit), (json_path, to_json), (html_path, to_html)):
        if path is not None:
            target = Path(path)
            target.write_text(render(report), encoding="utf-8")
            written.append(target)
    return written
