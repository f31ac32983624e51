"""`smmkit ctl ...` — the control API from the shell, talking to a running fake."""

from __future__ import annotations

import json
from typing import Any

import click
import requests
from smmkit.mock_server.client.control import ControlAPIError, ControlClient
from smmkit.schemas import contract


def _show(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _run(ctx: click.Context, call: Any) -> None:
    client: ControlClient = ctx.obj
    if not ctx.meta.get("smmkit.token_given"):  # checked here so `ctl X --help` needs none
        raise click.UsageError(
            "no admin token: pass --token TOKEN or set SMMKIT_ADMIN_TOKEN (`smmkit serve` "
            "prints it; start it with --admin-token TOKEN to choose one)")
    try:
        _show(call(client))
    except ControlAPIError as exc:
        if exc.status == 401:
            raise click.ClickException(
                f"the admin token was refused by {client.base}. Use the token `smmkit serve` "
                f"printed (--token or SMMKIT_ADMIN_TOKEN), or start the server with "
                f"--admin-token TOKEN to choose it.") from None
        raise click.ClickException(exc.message or str(exc)) from None
    except requests.Timeout:
        raise click.ClickException(f"{client.base} did not answer within {client.timeout:g} s "
                                   "(is the fake busy or stopped?)") from None
    except OSError:  # requests' ConnectionError and friends are OSErrors
        raise click.ClickException(
            f"cannot reach the fake panel at {client.base}: is `smmkit serve` running there? "
            f"Give its URL with --url or SMMKIT_URL "
            f"(e.g. export SMMKIT_URL=http://127.0.0.1:8080).") from None


@click.group()
@click.option("--url", envvar="SMMKIT_URL", default="http://127.0.0.1:8080", show_default=True,
              help="Base URL of the running fake (env SMMKIT_URL).")
@click.option("--token", envvar="SMMKIT_ADMIN_TOKEN",
              help="Admin token printed by `smmkit serve` (env SMMKIT_ADMIN_TOKEN).")
@click.pass_context
def ctl(ctx: click.Context, url: str, token: str | None) -> None:
    """Drive a running fake: clock, accounts, orders, catalogue, faults, journal, snapshots.

    Set SMMKIT_URL and SMMKIT_ADMIN_TOKEN once instead of --url and --token each time."""
    ctx.obj = ControlClient(url, token or "")
    ctx.meta["smmkit.token_given"] = bool(token)


def _number_or_text(value: str | None) -> Any:
    """Epoch seconds and speed factors travel as JSON numbers; anything else as text."""
    try:
        return json.loads(value or "")
    except ValueError:
        return value


@ctl.command()
@click.argument("verb", type=click.Choice(["show", "advance", "freeze", "resume", "set", "speed"]))
@click.argument("value", required=False)
@click.pass_context
def clock(ctx: click.Context, verb: str, value: str | None) -> None:
    """show | advance 2h | freeze | resume | set 2026-01-01T00:00:00Z | speed 60"""
    if verb in ("advance", "set", "speed") and value is None:
        raise click.UsageError(f"clock {verb} needs a value")
    calls = {
        "show": lambda c: c.clock.now(), "freeze": lambda c: c.clock.freeze(),
        "resume": lambda c: c.clock.resume(), "advance": lambda c: c.clock.advance(value),
        "set": lambda c: c.clock.set(_number_or_text(value)),
        "speed": lambda c: c.clock.speed(_number_or_text(value)),
    }
    _run(ctx, calls[verb])


@ctl.command()
@click.argument("verb", type=click.Choice(["list", "show", "create", "top-up", "set-balance",
                                           "currency", "disable", "enable", "delete", "reset"]))
@click.argument("key", required=False)
@click.argument("value", required=False)
@click.option("--balance", default="0", help="Opening balance for create.")
@click.option("--currency", "currency_code", default="USD", help="Currency for create.")
@click.pass_context
def accounts(ctx: click.Context, verb: str, key: str | None, value: str | None, balance: str,
             currency_code: str) -> None:
    """list | show KEY | create KEY | top-up KEY AMOUNT | set-balance KEY AMOUNT |
    currency KEY EUR | disable KEY | enable KEY | delete KEY | reset KEY"""
    if verb != "list" and not key:
        raise click.UsageError(f"accounts {verb} needs a KEY")
    if verb in ("top-up", "set-balance", "currency") and value is None:
        raise click.UsageError(f"accounts {verb} needs a value")
    k, v = key or "", value or ""
    calls = {
        "list": lambda c: c.accounts.list(), "show": lambda c: c.accounts.get(k),
        "create": lambda c: c.accounts.create(k, balance, currency_code),
        "top-up": lambda c: c.accounts.top_up(k, v),
        "set-balance": lambda c: c.accounts.set_balance(k, v),
        "currency": lambda c: c.accounts.set_currency(k, v),
        "disable": lambda c: c.accounts.disable(k),
        "enable": lambda c: c.accounts.enable(k), "delete": lambda c: c.accounts.delete(k),
        "reset": lambda c: c.accounts.reset(k),
    }
    _run(ctx, calls[verb])


@ctl.command()
@click.argument("verb", type=click.Choice(["list", "show", "force"]))
@click.argument("order_id", required=False, type=int)
@click.option("--key", help="Filter: account key.")
@click.option("--status", help="Filter (list) or the status to force.")
@click.option("--service", type=int, help="Filter: service id.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--remains", type=int)
@click.option("--start-count", type=int)
@click.option("--outcome", type=click.Choice(contract.OUTCOMES))
@click.option("--force", "force_flag", is_flag=True, help="Allow an illegal transition.")
@click.pass_context
def orders(ctx: click.Context, verb: str, order_id: int | None, key: str | None,
           status: str | None, service: int | None, limit: int, remains: int | None,
           start_count: int | None, outcome: str | None, force_flag: bool) -> None:
    """list [--key K --status S --service N] | show ID | force ID --status Partial --remains 40"""
    if verb == "list":
        filters = {k: v for k, v in {"key": key, "status": status, "service": service,
                                      "limit": limit}.items() if v is not None}
        _run(ctx, lambda c: c.orders.list(**filters))
        return
    if order_id is None:
        raise click.UsageError(f"orders {verb} needs an ORDER_ID")
    if verb == "show":
        _run(ctx, lambda c: c.orders.get(order_id))
        return
    changes = {k: v for k, v in {"status": status, "remains": remains, "start_count": start_count,
                                  "outcome": outcome}.items() if v is not None}
    if force_flag:
        changes["force"] = True
    _run(ctx, lambda c: c.orders.force(order_id, **changes))


@ctl.command()
@click.argument("verb", type=click.Choice(["list", "force"]))
@click.argument("refill_id", required=False, type=int)
@click.argument("status", required=False)
@click.option("--force", "force_flag", is_flag=True)
@click.pass_context
def refills(ctx: click.Context, verb: str, refill_id: int | None, status: str | None,
            force_flag: bool) -> None:
    """list | force ID STATUS"""
    if verb == "list":
        _run(ctx, lambda c: c.refills.list())
        return
    if refill_id is None or status is None:
        raise click.UsageError("refills force needs REFILL_ID and STATUS")
    _run(ctx, lambda c: c.refills.force(refill_id, status, force=force_flag))


@ctl.command()
@click.argument("verb", type=click.Choice(["list", "add", "change", "remove"]))
@click.argument("service_id", required=False, type=int)
@click.option("--json", "fields",
              help='Fields as JSON, e.g. \'{"rate": "1.20", "enabled": false}\'')
@click.pass_context
def services(ctx: click.Context, verb: str, service_id: int | None, fields: str | None) -> None:
    """list | add --json '{...}' | change ID --json '{...}' | remove ID"""
    try:
        data = json.loads(fields) if fields else {}
    except ValueError as exc:
        raise click.UsageError(f"--json is not JSON: {exc}") from None
    if verb in ("change", "remove") and service_id is None:
        raise click.UsageError(f"services {verb} needs a SERVICE_ID")
    sid = service_id or 0
    calls = {"list": lambda c: c.services.list(), "add": lambda c: c.services.add(**data),
             "change": lambda c: c.services.change(sid, **data),
             "remove": lambda c: c.services.remove(sid)}
    _run(ctx, calls[verb])


@ctl.command()
@click.argument("verb", type=click.Choice(["list", "add", "clear"]))
@click.argument("kind_or_id", required=False)
@click.option("--action", default="*", show_default=True)
@click.option("--key")
@click.option("--count", type=int)
@click.option("--probability", type=float)
@click.option("--ms", type=int)
@click.option("--min-ms", type=int)
@click.option("--max-ms", type=int)
@click.option("--status", type=int)
@click.option("--retry-after", type=int)
@click.option("--error")
@click.pass_context
def faults(ctx: click.Context, verb: str, kind_or_id: str | None, action: str,
           **options: Any) -> None:
    """list | add KIND [--action add --count 1 | --probability 0.1 ...] | clear [ID]"""
    if verb == "list":
        _run(ctx, lambda c: c.faults.list())
    elif verb == "clear":
        _run(ctx, lambda c: c.faults.clear(int(kind_or_id) if kind_or_id else None))
    else:
        if not kind_or_id:
            raise click.UsageError("faults add needs a KIND")
        extra = {k: v for k, v in options.items() if v is not None}
        _run(ctx, lambda c: c.faults.add(kind_or_id, action, **extra))


@ctl.command()
@click.option("--action")
@click.option("--key")
@click.option("--status", type=int)
@click.option("--fault")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--clear", is_flag=True, help="Empty the journal instead.")
@click.pass_context
def journal(ctx: click.Context, clear: bool, **filters: Any) -> None:
    """The newest API requests with their answers."""
    if clear:
        _run(ctx, lambda c: c.clear_journal() or {"cleared": True})
        return
    wanted = {k: v for k, v in filters.items() if v is not None}
    _run(ctx, lambda c: c.journal(**wanted))


@ctl.command()
@click.option("--key", help="Reset only this account.")
@click.pass_context
def reset(ctx: click.Context, key: str | None) -> None:
    """Everything back to the start (or one account)."""
    _run(ctx, lambda c: c.reset(key))


@ctl.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.pass_context
def snapshot(ctx: click.Context, path: str) -> None:
    """Save the whole state to PATH."""
    _run(ctx, lambda c: {"saved": path, "orders": len(c.snapshot(path)["orders"]["rows"])})


@ctl.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def restore(ctx: click.Context, path: str) -> None:
    """Replace the whole state with the snapshot at PATH."""
    _run(ctx, lambda c: c.restore(path))
