"""smmkit's contract kit: check that an SMM panel API v2 keeps the contract of docs/PROTOCOL.md.

How the pieces fit (each module's docstring says more):

    targets     send(params) -> Exchange over HTTP (requests) or in-process WSGI — the only
                place that knows a transport
    exchange    Exchange: one request + answer, key redacted; record/replay as JSON lines
    checks      per-exchange checks -> [Violation]; violations(), assert_conforms()
    history     checks across exchanges: charges, remains, final statuses, another key's ids,
                money conservation
    strategies  Hypothesis strategies for every action, valid and invalid (public)
    stateful    a RuleBasedStateMachine driving a target, invariants after every step
    probes      what `run_check` sends, the budget guard
    runner      run_check(CheckConfig) -> Report (judged per dialect, "auto" picks the best)
    reports     JUnit XML, JSON, one self-contained HTML page
    cli         `smmkit check URL --key KEY`
    plugin      pytest fixtures smm_server / smm_panel / smm_target, options --smm-*
    suite       the bundled suite: pytest --pyargs smmkit.contract_tests.suite

The package itself imports nothing heavy (the pytest plugin lives in it); the names below are
loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Exchange": "exchange", "load_recorded": "exchange", "dump": "exchange",
    "Violation": "violation", "ContractViolation": "violation",
    "violations": "checks", "assert_conforms": "checks", "History": "history",
    "CheckConfig": "runner", "Report": "runner", "run_check": "runner",
    "CheckError": "runner", "run_stateful": "stateful",
    "HttpTarget": "targets", "WsgiTarget": "targets",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'contract_tests' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
