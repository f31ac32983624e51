"""A `Report` as JUnit XML (for CI), JSON (for machines) and one self-contained HTML page (for
people): inline CSS, no scripts, no external assets, so it can be mailed or attached as is."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from smmkit.contract_tests.runner import Report
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
        grouped[(v.action or "(session)", v.family)].append(v)
    failures = sum(1 for vs in grouped.values() if any(_fails(report, v) for v in vs))
    suite = ET.Element("testsuite", name="smmkit contract", tests=str(len(grouped)),
                       failures=str(failures), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    for name, value in (("url", report.url), ("dialect", report.dialect),
                        ("seed", str(report.seed))):
        ET.SubElement(props, "property", name=name, value=value)
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
    return v.severity == "violation" or report.strict


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:70rem;
color:#1d2330;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px
solid #dde;padding-bottom:.2rem}
.verdict{display:inline-block;padding:.25rem .7rem;border-radius:1rem;font-weight:600;color:#fff}
.ok{background:#1f8a4c}.bad{background:#c0392b}.meta{color:#556;margin:.4rem 0 1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;padding:.3rem
.6rem;border-bottom:1px solid #eef}th{background:#f5f6fa}td.n{text-align:right;
font-variant-numeric:tabular-nums}.v{color:#c0392b;font-weight:600}.d{color:#b7791f}
.finding{border-left:4px solid #c0392b;background:#fdf5f4;padding:.5rem .8rem;margin:.8rem 0}
.finding.deviation{border-color:#d69e2e;background:#fffaf0}
.finding h3{font-size:1rem;margin:0 0 .3rem}pre{background:#1d2330;color:#e8eaf0;padding:.6rem;
overflow-x:auto;border-radius:4px;white-space:pre-wrap;word-break:break-all}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _counts_table(title: str, rows: dict[str, dict[str, int]], with_exchanges: bool) -> str:
    head = "<th>exchanges</th>" if with_exchanges else ""
    body = "".join(
        f"<tr><td>{_e(name)}</td>"
        + (f"<td class=n>{row['exchanges']}</td>" if with_exchanges else "")
        + f"<td class='n{' v' if row['violations'] else ''}'>{row['violations']}</td>"
        f"<td class='n{' d' if row['deviations'] else ''}'>{row['deviations']}</td></tr>"
        for name, row in rows.items())
    if not body:
        body = f"<tr><td colspan=4>no {_e(title.lower())} findings</td></tr>"
    return (f"<table><tr><th>{_e(title)}</th>{head}<th>violations</th><th>deviations</th></tr>"
            f"{body}</table>")


def _finding(v: Violation) -> str:
    body = ""
    if v.exchange is not None:
        body = (f"<p>HTTP {v.exchange.status}, <code>{_e(v.exchange.content_type)}</code>:</p>"
                f"<pre>{_e(v.exchange.text(800))}</pre>")
    return (f"<div class='finding {_e(v.severity)}'><h3>{_e(v.severity)}: "
            f"<code>{_e(v.check)}</code> ({_e(v.family)}) on <code>{_e(v.action or '-')}</code>"
            f"</h3><p>{_e(v.message)}</p>{body}"
            f"<p>Reproduce:</p><pre>{_e(v.reproduction or '(no single request)')}</pre></div>")


def to_html(report: Report) -> str:
    verdict = ("<span class='verdict ok'>conforms</span>" if report.ok
               else f"<span class='verdict bad'>{len(report.failures)} failing finding(s)</span>")
    scores = ", ".join(f"{_e(d)} {s:.0%}" for d, s in report.dialect_scores.items())
    ledger_rows = "".join(
        f"<tr><td>{_e(e.action)}</td><td>{_e(e.order or '-')}</td><td>{_e(e.service)}</td>"
        f"<td class=n>{_e(e.quantity)}</td><td class=n>{_e(_money(e.expected_charge))}</td>"
        f"<td class=n>{_e(_money(e.balance_after) or '-')}</td><td>{_e(e.note)}</td></tr>"
        for e in report.ledger)
    spend = (
        f"<h2>Spend ledger</h2><p>Budget {_e(_money(report.budget))}; balance "
        f"{_e(_money(report.opening_balance))} → {_e(_money(report.closing_balance))}; spent "
        f"<b>{_e(_money(report.spent))}</b>.</p><table><tr><th>action</th><th>order</th>"
        f"<th>service</th><th>quantity</th><th>expected charge</th><th>balance after</th>"
        f"<th>note</th></tr>{ledger_rows or '<tr><td colspan=7>nothing spent</td></tr>'}"
        "</table>"
        if report.allow_orders else
        "<h2>Spend ledger</h2><p>Read-only run: no <code>add</code>, <code>refill</code> or "
        "<code>cancel</code> was sent.</p>")
    findings = "".join(_finding(v) for v in report.findings) or "<p>No findings.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>smmkit check — {_e(report.url)}</title>
<style>{_CSS}</style></head><body>
<h1>smmkit contract check</h1>
<p class=meta><code>{_e(report.url)}</code> · dialect <b>{_e(report.dialect)}</b>
({scores}) · {len(report.exchanges)} exchanges · seed <code>{report.seed}</code></p>
<p>{verdict}</p>
<h2>By action</h2>{_counts_table("Action", report.by_action(), True)}
<h2>By check family</h2>{_counts_table("Family", report.by_family(), False)}
{spend}
<h2>Findings</h2>{findings}
</body></html>
"""


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
