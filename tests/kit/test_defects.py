"""The kit catches each seeded defect of a broken fake, and names the check that caught it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from _defects import DEFECTS, Defect
from kit_support import SECOND_KEY, fake_config
from smmkit.contract_tests.checks import violations
from smmkit.contract_tests.history import History
from smmkit.contract_tests.runner import CheckConfig, run_check
from smmkit.contract_tests.targets import HttpTarget


def scenario(url: str, panel: Any) -> list:
    """A scripted session the runner cannot do alone (it has no clock): two orders, a cancel,
    a day passes, statuses twice, a second key peeks, a conservation bracket."""
    from smmkit.mock_server.core.config import DEMO_KEY

    me, other = HttpTarget(url, DEMO_KEY), HttpTarget(url, SECOND_KEY)
    sent = [me.send({"action": "services"}), me.send({"action": "balance"})]
    orders = []
    for service, quantity, link in (("16", "100", "https://t.me/kit/a"),
                                    ("3", "20", "https://t.me/kit/b")):
        sent.append(me.send({"action": "add", "service": service, "link": link,
                             "quantity": quantity}))
        orders.append(str(sent[-1].json()["order"]))
    both = ",".join(orders)
    sent.append(me.send({"action": "status", "orders": both}))
    sent.append(me.send({"action": "cancel", "orders": orders[0]}))
    panel.advance(86_400)
    sent += [me.send({"action": "status", "orders": both}),
             me.send({"action": "status", "order": orders[1]}),
             other.send({"action": "status", "order": orders[0]}),
             me.send({"action": "balance"}), me.send({"action": "status", "orders": both}),
             me.send({"action": "balance"})]
    return sent


def caught(url: str, panel: Any, defect: Defect) -> set[str]:
    """Names of every check that reported something, by the runner and by the scenario."""
    from smmkit.mock_server.core.config import DEMO_KEY

    report = run_check(CheckConfig(url=url, key=DEMO_KEY, allow_orders=True,
                                   budget=Decimal("1"), seed=7, examples=10,
                                   clock=panel.advance, other_key=SECOND_KEY))
    panel.reset()
    defect.forget()
    found = violations(scenario(url, panel), history=History())
    return report.checks_failed() | {v.check for v in found}


def test_the_unbroken_wrapper_gives_no_finding(fresh_panel: Any, serve: Any) -> None:
    from smmkit.mock_server.web.app import create_app

    app = Defect(create_app(fresh_panel, config=fake_config()))
    assert caught(serve(app).api_url, fresh_panel, app) == set()


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.__name__)
def test_each_defect_is_reported_by_its_check(defect: type[Defect], fresh_panel: Any,
                                              serve: Any) -> None:
    from smmkit.mock_server.web.app import create_app

    app = defect(create_app(fresh_panel, config=fake_config()))
    found = caught(serve(app).api_url, fresh_panel, app)
    assert defect.check in found, f"{defect.__name__} not caught; the kit said {sorted(found)}"
