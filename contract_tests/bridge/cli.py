"""The commands of the bridge to a real panel: `proxy`, `catalog pull` and `diff`.

Thin click layers: each builds its library call, turns library errors into one clear
`click.ClickException` line, and prints. Nothing here ever prints or writes the key.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from smmkit.contract_tests.bridge.diff import Fidelity


def _amount(ctx: click.Context, param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount <= 0:
        raise click.BadParameter(f"{value!r} must be a positive amount")
    return amount


@click.command("proxy")
@click.option("--upstream", required=True, metavar="URL",
              help="The panel's API URL, e.g. https://provider.example/api/v2.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--dialect", default=None, metavar="NAME|FILE",
              help="The upstream's dialect (default: detected from the traffic).")
@click.option("--allow-orders", is_flag=True, help="Forward add/refill/cancel (needs --budget).")
@click.option("--budget", callback=_amount, default=None, metavar="AMOUNT",
              help="Most the forwarded adds may cost, priced from the upstream's services.")
@click.option("--record", type=click.Path(dir_okay=False), default=None,
              help="Write every exchange (key redacted) as a JSON line here.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds to wait for the upstream before answering 524.")
def proxy(upstream: str, host: str, port: int, dialect: str | None, allow_orders: bool,
          budget: Decimal | None, record: str | None, timeout: float) -> None:
    """Forward a client to its panel and judge every exchange against the contract."""
    from smmkit.contract_tests.bridge.proxy import ProxyConfig, start_proxy

    try:
        config = ProxyConfig(upstream=upstream.rstrip("/") if upstream.endswith("//")
                             else upstream, dialect=dialect, allow_orders=allow_orders,
                             budget=budget, record=record, timeout=timeout)
        running = start_proxy(config, host=host, port=port,
                              log=lambda line: click.echo(line, err=True))
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"smmkit proxy listening on {running.api_url} -> {upstream}")
    click.echo(f"  verdicts: {running.url}/_proxy/  (JSON: {running.url}/_proxy/exchanges)"
               + (f"  recording: {record}" if record else ""))
    click.echo("  spending: " + (f"allowed within {budget}" if allow_orders else
                                 "refused (add/refill/cancel)"))
    sys.stdout.flush()
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    running.stop()
    click.echo(running.proxy.summary())


@click.group("catalog")
def catalog() -> None:
    """Catalogue files for the fake."""


@catalog.command("pull")
@click.argument("url")
@click.option("--key", required=True, envvar="SMM_KEY", help="API key (or $SMM_KEY).")
@click.option("-o", "--out", default="catalog.json", show_default=True,
              type=click.Path(dir_okay=False), help="Catalogue file to write.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1, 600))
def pull(url: str, key: str, out: str, timeout: float) -> None:
    """Turn the `services` of the panel at URL into a catalogue file for `serve --catalog`."""
    from smmkit.contract_tests.bridge.pull import (
        PullError,
        fetch_services,
        to_catalog,
        write_catalog,
    )

    try:
        pulled = to_catalog(fetch_services(url, key, timeout=timeout))
        if not pulled.services:
            raise PullError("no usable service in the panel's answer; nothing written")
        write_catalog(pulled, out)
    except (PullError, OSError) as exc:
        raise click.ClickException(str(exc).replace(key, "***")) from exc
    for reason in pulled.skipped:
        click.echo(f"skipped {reason}", err=True)
    click.echo(f"wrote {len(pulled.services)} services to {out}"
               + (f" ({len(pulled.skipped)} skipped)" if pulled.skipped else ""))


@click.command("diff")
@click.argument("url")
@click.option("--key", required=True, envvar="SMM_KEY", help="API key (or $SMM_KEY).")
@click.option("--allow-orders", is_flag=True,
              help="Also run the small spending script (one cheapest order; needs --budget).")
@click.option("--budget", callback=_amount, default=None, metavar="AMOUNT",
              help="Most the spending script may cost on the live panel.")
@click.option("--dialect", default=None, metavar="NAME|FILE",
              help="Dialect the fake answers in (default perfectpanel).")
@click.option("--orders", default="", metavar="ID,ID,...",
              help="Ids of your existing orders on the live panel, asked about read-only so "
                   "their status spellings are compared (at most 50).")
@click.option("--write-dialect", type=click.Path(dir_okay=False), default=None,
              help="Write the dialect file that makes the fake answer like the live panel.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the fidelity report as JSON here.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1, 600))
def diff(url: str, key: str, allow_orders: bool, budget: Decimal | None, dialect: str | None,
         orders: str, write_dialect: str | None, json_path: str | None, timeout: float) -> None:
    """Compare the fake with the live panel at URL, answer by answer; score its fidelity."""
    import json
    from pathlib import Path

    from smmkit.contract_tests.bridge.diff import DiffError, run_diff
    from smmkit.contract_tests.bridge.infer import infer_dialect
    from smmkit.contract_tests.targets import HttpTarget

    if allow_orders and budget is None:
        raise click.BadParameter("--allow-orders needs --budget", param_hint="--budget")
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URL")
    try:
        fidelity = run_diff(HttpTarget(url, key, timeout=timeout), key=key, dialect=dialect,
                            allow_orders=allow_orders, budget=budget or Decimal(0),
                            orders=[o for o in orders.split(",") if o.strip()])
        if write_dialect:
            name = Path(write_dialect).stem or "live"
            doc = infer_dialect(fidelity.pairs, name=name if _NAME.match(name) else "live")
            Path(write_dialect).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                                           "utf-8")
        if json_path:
            Path(json_path).write_text(json.dumps(fidelity.to_json(), indent=2), "utf-8")
    except (DiffError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc).replace(key, "***")) from exc
    _fidelity_table(fidelity, url)
    if write_dialect:
        click.echo(f"wrote {write_dialect}: run `smmkit diff {url} --dialect {write_dialect}`"
                   " to check it")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a dialect's name


def _fidelity_table(fidelity: Fidelity, url: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"smmkit diff — fake vs {url}")
    for column in ("action", "exchanges", "identical", "differs (how)"):
        table.add_column(column)
    for action, row in fidelity.by_action().items():
        table.add_row(action, str(row["exchanges"]), str(row["identical"]),
                      "\n".join(row["how"]) or "-")
    console.print(table)
    for note in fidelity.notes:
        console.print(note, markup=False, highlight=False)
    same = sum(not p.differences for p in fidelity.pairs)
    console.print(f"fidelity: {fidelity.score:.1%} ({same}/{len(fidelity.pairs)} identical)",
                  markup=False, highlight=False)
