"""The stateful machine: quiet on the real fake, loud on a fake whose money leaks."""

from __future__ import annotations

from typing import Any

import pytest
from _defects import ChargeMisreported, LeavesCompleted
from kit_support import SECOND_KEY, fake_config
from smmkit.contract_tests.checks import ContractViolation
from smmkit.contract_tests.stateful import run_stateful
from smmkit.contract_tests.targets import HttpTarget, WsgiTarget


def test_machine_over_http_finds_nothing_on_the_fake(fake: Any) -> None:
    from smmkit.mock_server.core.config import DEMO_KEY

    target = HttpTarget(fake.api_url, DEMO_KEY, advance=fake.panel.advance,
                        reset=fake.panel.reset)
    run_stateful(target, other=HttpTarget(fake.api_url, SECOND_KEY), max_examples=8,
                 stateful_step_count=25, seed=11)


def test_machine_in_process_finds_nothing_on_the_fake(fresh_panel: Any) -> None:
    from smmkit.mock_server.core.config import DEMO_KEY
    from smmkit.mock_server.web.app import create_app

    app = create_app(fresh_panel, config=fake_config())
    target = WsgiTarget(app, DEMO_KEY, advance=fresh_panel.advance, reset=fresh_panel.reset)
    run_stateful(target, other=WsgiTarget(app, SECOND_KEY), max_examples=15,
                 stateful_step_count=30, seed=12)


@pytest.mark.parametrize("defect", [ChargeMisreported, LeavesCompleted],
                         ids=lambda d: d.__name__)
def test_machine_reports_a_broken_fake(fresh_panel: Any, defect: Any) -> None:
    from smmkit.mock_server.core.config import DEMO_KEY
    from smmkit.mock_server.web.app import create_app

    app = defect(create_app(fresh_panel, config=fake_config()))

    def reset() -> None:  # the broken fake forgets with its panel: each example starts afresh
        fresh_panel.reset()
        app.forget()

    target = WsgiTarget(app, DEMO_KEY, advance=fresh_panel.advance, reset=reset)
    with pytest.raises(ContractViolation) as info:
        run_stateful(target, max_examples=30, stateful_step_count=30, seed=13)
    assert defect.check in {v.check for v in info.value.violations}
