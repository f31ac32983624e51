"""The bundled contract suite:
``pytest --pyargs smmkit.contract_tests.suite [--smm-url U --smm-key K]``.

Without --smm-url it runs against the fake. Tests marked ``smm_spends`` place orders: on a live
panel they run only with --smm-allow-orders and a positive --smm-budget, and never spend more.
"""

from __future__ import annotations

import pytest
from smmkit.contract_tests.checks import assert_conforms, check_expected_error
from smmkit.contract_tests.runner import run_check
from smmkit.contract_tests.violation import ContractViolation


def _fail_on(report) -> None:
    if not report.ok:
        raise ContractViolation(report.failures)


def test_read_only_check_finds_no_violation(smm_target) -> None:
    report = run_check(smm_target.check_config(examples=10, seed=1))
    _fail_on(report)


@pytest.mark.parametrize("action", ["services", "balance"])
def test_plain_actions_conform_in_every_transport(smm_target, action) -> None:
    exchanges = [smm_target.send({"action": action}, transport=t)
                 for t in ("form", "json", "query")]
    assert_conforms(exchanges, dialect=_dialect(smm_target))


def test_unknown_key_is_refused_with_the_catalogue_text(smm_target) -> None:
    exchange = smm_target.send({"key": "smmkit-suite-no-such-key", "action": "balance"})
    assert_conforms(exchange, dialect=_dialect(smm_target))
    found = check_expected_error(exchange, "invalid_key", dialect=_dialect(smm_target))
    assert not found, found


@pytest.mark.smm_spends
def test_orders_stay_within_budget_and_conform(smm_target) -> None:
    report = run_check(smm_target.check_config(allow_orders=True, budget=smm_target.budget,
                                               examples=10, seed=2))
    _fail_on(report)
    assert report.spent <= smm_target.budget


@pytest.mark.smm_spends
def test_stateful_model_on_the_fake(smm_target) -> None:
    if smm_target.live:
        pytest.skip("the stateful model spends without a budget: it runs against the fake only")
    from smmkit.contract_tests.stateful import run_stateful

    run_stateful(smm_target.client, dialect=_dialect(smm_target), max_examples=5,
                 stateful_step_count=15, seed=3)


def _dialect(target) -> str:
    return "perfectpanel" if target.dialect == "auto" else target.dialect
