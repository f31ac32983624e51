"""`smmkit check URL --key KEY`: a thin click command over `runner.run_check`.

It builds a `CheckConfig`, runs the check with a rich progress bar, prints findings grouped
(same check, action and message shape: one line with a count and up to three examples), writes
every requested report — also after Ctrl-C (partial, and marked so) — and prints their paths.

Exit codes: 0 the panel conforms; 1 it broke the contract; 2 usage or configuration error;
3 the panel could not be checked (unreachable, not an API v2 endpoint, key refused).
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import click
from smmkit.contract_tests import registry
from smmkit.contract_tests.runner import DIALECT_CHOICES, CheckConfig, CheckError, Report, run_check

if TYPE_CHECKING:
    from rich.console import Console

STEPS = ("catalogue", "balance", "unknown and given ids", "bad key and bad action",
         "transports", "orders", "invalid requests", "watch", "refills", "other key", "money")
EXIT_CONFORMS, EXIT_BROKEN, EXIT_USAGE, EXIT_UNCHECKED = 0, 1, 2, 3


def _budget(ctx: click.Context, param: click.Parameter, value: str | None) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise click.BadParameter(f"{value!r} must be a non-negative amount")
    return amount


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """Seconds from `90`, `90s`, `5m` or `1h`."""
    text = value.strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration (e.g. 60, 90s, 5m)") from None
    if not 0 <= seconds <= 86_400:
        raise click.BadParameter(f"{value!r} must be between 0 and 24h")
    return seconds


def _names(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    names = tuple(n.strip() for n in (value or "").split(",") if n.strip())
    unknown = sorted(set(names) - set(registry.CHECKS))
    if unknown:
        raise click.BadParameter(f"unknown check(s) {', '.join(unknown)}; "
                                 "see --list-checks")
    return names


def _list_checks(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for row in registry.describe():
        click.echo(f"{row['check']:<22} {row['family']:<10} {row['about']}")
        click.echo(f"{'':<22} default: {row['default']}; --strict: {row['strict']}")
    ctx.exit(0)


@click.command("check")
@click.argument("url", required=False)
@click.option("--key", envvar="SMM_KEY", help="API key (or $SMM_KEY).")
@click.option("--allow-orders", is_flag=True,
              help="Allow add/cancel/refill: places the cheapest orders within --budget.")
@click.option("--budget", callback=_budget, default=None, metavar="AMOUNT",
              help="Most the run may spend (needed with --allow-orders).")
@click.option("--dialect", default="perfectpanel", show_default=True, metavar="NAME|FILE",
              help=f"Dialect to check against: {', '.join(DIALECT_CHOICES)} (best fit), "
                   "raw-keys or a dialect file (judged against that file only).")
@click.option("--seed", type=int, default=None, help="Hypothesis seed, to reproduce a run.")
@click.option("--order", "order_ids", multiple=True, help="An existing order id to watch.")
@click.option("--refill", "refill_ids", multiple=True, help="An existing refill id to look up.")
@click.option("--other-key", envvar="SMM_OTHER_KEY", default=None,
              help="A second account's key: this key's ids must be invisible to it.")
@click.option("--watch", "watch", default="60", callback=_duration, show_default=True,
              metavar="DURATION", help="Follow placed orders until final (0 skips).")
@click.option("--admin-token", envvar="SMMKIT_ADMIN_TOKEN", default=None,
              help="Our fake's admin token: advance its clock instead of waiting.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=20.0, show_default=True,
              help="Total seconds per request (connect, wait and read).")
@click.option("--retries", type=click.IntRange(0, 10), default=2, show_default=True,
              help="Retries of a connection error or a 429 (Retry-After honoured).")
@click.option("--rate", type=click.FloatRange(0.01, 1000), default=None,
              help="At most this many requests per second.")
@click.option("--examples", type=click.IntRange(0, 1000), default=15, show_default=True,
              help="Hypothesis examples of invalid requests.")
@click.option("--checks", "checks", callback=_names, default=None, metavar="A,B",
              help="Run only these checks (see --list-checks).")
@click.option("--skip-checks", "skip_checks", callback=_names, default=None, metavar="A,B",
              help="Run all but these checks.")
@click.option("--list-checks", is_flag=True, expose_value=False, is_eager=True,
              callback=_list_checks, help="List every check with its severity and exit.")
@click.option("--stateful", is_flag=True,
              help="Also run the rule-based state machine (needs --allow-orders and --budget). "
                   "With --admin-token (our fake) it resets the fake per example and drives its "
                   "clock; without, a few short programs within what is left of --budget.")
@click.option("--strict", is_flag=True, help="Deviations fail the run too.")
@click.option("-v", "--verbose", is_flag=True, help="Show every finding and example.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write JSON here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write a self-contained HTML report here.")
@click.option("--from-recording", "recording", type=click.Path(exists=True, dir_okay=False),
              help="Judge a recording of `smmkit proxy --record` offline instead of URL.")
def check(url: str | None, key: str | None, allow_orders: bool, budget: Decimal, dialect: str,
          seed: int | None, order_ids: tuple[str, ...], refill_ids: tuple[str, ...],
          other_key: str | None, watch: float, admin_token: str | None, timeout: float,
          retries: int, rate: float | None, examples: int, checks: tuple[str, ...],
          skip_checks: tuple[str, ...], stateful: bool, strict: bool, verbose: bool,
          junit: str | None, json_path: str | None, html_path: str | None,
          recording: str | None) -> None:
    """Check the SMM panel API v2 at URL against the contract (read-only by default).

    Exit codes: 0 conforms, 1 the panel broke the contract, 2 usage or configuration error,
    3 the panel could not be checked (unreachable, not an API v2 endpoint, key refused).
    """
    if recording:  # bridge (issue 14): offline judging lives in contract_tests/bridge/offline.py
        from smmkit.contract_tests.bridge.offline import run_offline
        raise SystemExit(run_offline(recording, dialect, strict=strict, json_path=json_path))
    if url is None or not key:
        raise click.UsageError("give URL and --key (or --from-recording FILE)")
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    console = Console(stderr=True)
    _hypothesis_cache()
    try:
        config = CheckConfig(url=url, key=key, allow_orders=allow_orders, budget=budget,
                             dialect=dialect, seed=seed, order_ids=order_ids,
                             refill_ids=refill_ids, examples=examples, strict=strict,
                             other_key=other_key, watch=watch, admin_token=admin_token,
                             timeout=timeout, retries=retries, rate=rate, checks=checks,
                             skip_checks=skip_checks)
        if stateful and not allow_orders:
            raise CheckError("--stateful places orders: give --allow-orders and --budget")
        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), console=console,
                      transient=True) as progress:
            task = progress.add_task("checking", total=len(STEPS))

            def on_step(step: str) -> None:
                done = STEPS.index(step) if step in STEPS else 0
                progress.update(task, completed=done, description=step)

            report = run_check(config, on_step=on_step)
            if stateful and not report.headline and not report.partial:
                from smmkit.contract_tests.stateful_run import stateful_findings

                progress.update(task, description="stateful")
                report.not_run.pop("stateful", None)
                report.findings += stateful_findings(config, report)
            progress.update(task, completed=len(STEPS))
    except CheckError as exc:
        console.print(f"Error: {exc}", markup=False, highlight=False)
        raise SystemExit(EXIT_USAGE) from None
    out = Console(soft_wrap=True, width=max(100, _terminal_width()))
    written = _write(report, console, junit=junit, json_path=json_path, html_path=html_path)
    _summary(report, out, verbose=verbose)
    for path in written:
        out.print(f"report: {path}", markup=False, highlight=False)
    raise SystemExit(report.exit_code)


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def _hypothesis_cache() -> None:
    """Hypothesis' example database goes to a cache directory, not `.hypothesis/` in the
    user's working directory (the kit's own runs use no database at all)."""
    from hypothesis import settings
    from hypothesis.configuration import set_hypothesis_home_dir
    from hypothesis.database import DirectoryBasedExampleDatabase

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    where = base / "smmkit" / "hypothesis"
    set_hypothesis_home_dir(str(where))
    settings.register_profile("smmkit-check", database=DirectoryBasedExampleDatabase(where))
    settings.load_profile("smmkit-check")


def _write(report: Report, console: Console, **paths: str | None) -> list[Path]:
    from smmkit.contract_tests import reports

    try:
        return reports.write(report, junit=paths["junit"], json_path=paths["json_path"],
                             html_path=paths["html_path"])
    except OSError as exc:
        console.print(f"Error: could not write a report: {exc}", markup=False)
        raise SystemExit(EXIT_USAGE) from None


def _summary(report: Report, console: Console, *, verbose: bool = False) -> None:
    from rich.table import Table
    from smmkit.contract_tests.reports import group

    def say(text: str, style: str | None = None) -> None:
        console.print(text, style=style, markup=False, highlight=False, overflow="ignore",
                      crop=False, soft_wrap=True)

    if report.headline:
        say(f"✗ could not check {report.url}: {report.headline}", "red")
        return
    table = Table(title=f"smmkit check — {report.url} ({report.dialect})")
    for name, justify in (("action", "left"), ("exchanges", "right"),
                          ("violations", "right"), ("deviations", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for action, row in report.by_action().items():
        table.add_row(action, str(row["exchanges"]), str(row["violations"]),
                      str(row["deviations"]))
    console.print(table)
    if report.dialect_scores:
        say("dialect fit: " + ", ".join(f"{d}: {s:.0%}" for d, s in report.dialect_scores.items()))
    for grouped in group(report.findings):
        if grouped.severity == "note" and not verbose:
            continue
        first = grouped.examples[0]
        mark = {"violation": "✗", "deviation": "~", "note": "·"}[grouped.severity]
        count = f" (×{grouped.count})" if grouped.count > 1 else ""
        fails = grouped.severity == "violation" or (report.strict
                                                    and grouped.severity == "deviation")
        style = "red" if fails else "yellow"
        say(f"{mark} {grouped.severity}: {first.check} [{first.action or '-'}]{count}: "
            f"{first.message}", style)
        for example in grouped.examples[: (None if verbose else 1)]:
            if example.reproduction:
                for line in example.reproduction.splitlines():
                    say(f"    {line}")
    for check_name, why in report.not_run.items():
        say(f"- not run: {check_name}: {why}")
    if report.allow_orders:
        say(f"spent {report.spent} of budget {report.budget}")
    if report.partial:
        say("interrupted: the reports are partial", "yellow")
    verdict = "conforms" if report.ok else f"{len(report.failures)} failing finding(s)"
    say(f"{verdict}; seed {report.seed}; {report.requests} requests in "
        f"{report.duration:.1f}s", "green" if report.ok else "red")
