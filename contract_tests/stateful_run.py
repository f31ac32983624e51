"""`smmkit check --stateful`: the rule-based state machine (`stateful.run_stateful`) against the
checked URL, its findings added to the report.

The machine places orders without a per-request budget guard, so it runs only where money is
play money: our fake, with its clock driven through the control API (`--admin-token`); each
example resets the fake's world first.
"""

from __future__ import annotations

from typing import Any

from smmkit.contract_tests.stateful import run_stateful
from smmkit.contract_tests.targets import HttpTarget
from smmkit.contract_tests.violation import ContractViolation, Violation, finding


def stateful_findings(config: Any, report: Any) -> list[Violation]:
    if not config.admin_token:
        report.not_run["stateful"] = ("needs --admin-token: the state machine spends without a "
                                      "budget guard, so it runs against our fake only")
        return []
    from smmkit.mock_server.client.control import ControlClient

    control = ControlClient(config.url, config.admin_token, timeout=config.timeout)
    # Each example starts from the fake's reset world (a replay must meet the same panel).
    target = HttpTarget(config.url, config.key, timeout=config.timeout, retries=config.retries,
                        advance=lambda seconds: control.clock.advance(int(seconds)),
                        reset=control.reset)
    other = target.with_key(config.other_key) if config.other_key else None
    try:
        run_stateful(target, other=other, dialect=report.dialect if report.dialect != "auto"
                     else "perfectpanel", max_examples=3, stateful_step_count=15,
                     seed=report.seed, strict=config.strict)
    except ContractViolation as exc:
        return [v.with_seed(report.seed) for v in exc.violations]
    except Exception as exc:  # noqa: BLE001 - a crash of the machine is a finding, not a traceback
        return [finding("stateful", "semantics", f"the state machine stopped: "
                        f"{type(exc).__name__}: {str(exc)[:300]}")]
    return []
