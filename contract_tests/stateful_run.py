"""`smmkit check --stateful`: the rule-based state machine (`stateful.run_stateful`) against the
checked URL, its findings added to the report.

Two modes. With `--admin-token` the target is our fake: its clock is driven through the control
API and each example starts from the fake's reset world (a replay must meet the same panel).
Without it the target is treated as a live panel: no resets (each example's History replays
the session so far, so earlier orders and their money stay known), a few short programs, every add
reserved at its worst case against what is left of `--budget` before it is sent (an add that does
not fit is not sent), a wait rule polling for at most `--watch` instead of moving a clock, and
findings collected rather than raised — a replay of a failing program would spend again. When
what is left cannot pay for the cheapest add the machine is not run at all.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from smmkit.contract_tests.catalogue import QUANTITY_RULES, parse_catalogue, parse_decimal
from smmkit.contract_tests.exchange import fingerprint
from smmkit.contract_tests.stateful import Allowance, Patience, run_stateful
from smmkit.contract_tests.targets import HttpTarget
from smmkit.contract_tests.violation import ContractViolation, Violation, finding

from smmkit import schemas

LIVE_EXAMPLES, LIVE_STEPS = 4, 10  # small: without resets every example spends for real


def stateful_findings(config: Any, report: Any) -> list[Violation]:
    report.not_run.pop("stateful", None)
    dialect = report.dialect if report.dialect != "auto" else "perfectpanel"
    if dialect not in schemas.DIALECTS:
        report.not_run["stateful"] = (f"the state machine judges the built-in dialects only, "
                                      f"not the dialect file {dialect!r}")
        return []
    if not config.admin_token:
        return _live(config, report, dialect)
    from smmkit.mock_server.client.control import ControlClient

    control = ControlClient(config.url, config.admin_token, timeout=config.timeout)
    target = config.target or HttpTarget(
        config.url, config.key, timeout=config.timeout, retries=config.retries,
        advance=lambda seconds: control.clock.advance(int(seconds)), reset=control.reset)
    other = target.with_key(config.other_key) if config.other_key else None
    try:
        run_stateful(target, other=other, dialect=dialect, max_examples=3,
                     stateful_step_count=15, seed=report.seed, strict=config.strict)
    except ContractViolation as exc:
        return [v.with_seed(report.seed) for v in exc.violations]
    except Exception as exc:  # noqa: BLE001 - a crash of the machine is a finding, not a traceback
        return [_crash(exc)]
    return []


def remaining_budget(config: Any, report: Any) -> Decimal:
    """What the checks before left of `--budget`: their reservations or the balance's drop,
    whichever is more."""
    return config.budget - max(report.reserved, report.spent, Decimal(0))


def _cheapest_add(report: Any) -> Decimal | None:
    for exchange in report.exchanges:
        if exchange.action == "services" and exchange.account:
            services = [s for s in parse_catalogue(exchange.json())
                        if s.type in QUANTITY_RULES and s.min <= s.max]
            if services:
                return min(s.cheapest_charge() for s in services)
    return None


def _live(config: Any, report: Any, dialect: str) -> list[Violation]:
    left, cheapest = remaining_budget(config, report), _cheapest_add(report)
    if cheapest is None:
        report.not_run["stateful"] = "no orderable service in the catalogue"
        return []
    if cheapest > left:
        report.not_run["stateful"] = (f"budget: {left} left of {config.budget} cannot pay the "
                                      f"cheapest add ({cheapest})")
        return []
    target = config.target or HttpTarget(config.url, config.key, timeout=config.timeout,
                                         retries=config.retries, rate=config.rate)
    other = config.other_target or (target.with_key(config.other_key)
                                    if config.other_key and hasattr(target, "with_key")
                                    else None)
    allowance, sink = Allowance(left), list[Violation]()
    session = list(report.exchanges)
    try:
        run_stateful(target, other=other, dialect=dialect, max_examples=LIVE_EXAMPLES,
                     stateful_step_count=LIVE_STEPS, seed=report.seed, quantity_cap=1,
                     strict=config.strict, allowance=allowance, sink=sink,
                     patience=Patience(config.watch, config.poll), earlier=session)
    except Exception as exc:  # noqa: BLE001 - a crash of the machine is a finding, not a traceback
        sink.append(_crash(exc))
    _account_for(report, session[len(report.exchanges):], allowance.committed,
                 fingerprint(getattr(target, "key", None)))
    if allowance.refused:
        report.not_run["stateful (adds)"] = (f"{allowance.refused} add(s) not sent: above the "
                                            f"{left} left of the budget")
    unique = {(v.check, v.message): v for v in sink}
    return [v.with_seed(report.seed) for v in unique.values()]


def _account_for(report: Any, sent: list[Any], committed: Decimal, own: str) -> None:
    """The machine's exchanges, reservations and last balance join the report, so the spend
    line (`spent X of budget Y`) and the request count cover the whole run."""
    report.exchanges += sent
    report.requests += len(sent)
    report.reserved += committed
    for exchange in reversed(sent):
        data = exchange.json()
        if exchange.action == "balance" and exchange.account == own \
                and isinstance(data, dict) and "error" not in data:
            amount = parse_decimal(data.get("balance"))
            if amount is not None:
                report.closing_balance = amount
            return


def _crash(exc: Exception) -> Violation:
    return finding("stateful", "semantics",
                   f"the state machine stopped: {type(exc).__name__}: {str(exc)[:300]}")
