"""The strategies: valid requests the fake accepts, invalid ones it refuses with the right text."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smmkit.contract_tests import strategies as smm
from smmkit.contract_tests.catalogue import QUANTITY_RULES, parse_catalogue
from smmkit.contract_tests.checks import check_expected_error
from smmkit.contract_tests.targets import WsgiTarget

from smmkit import schemas

FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
RICH_KEY = "smmkit-kit-rich"


@pytest.fixture(scope="module")
def world() -> Any:
    """The fake in-process (WSGI), its parsed catalogue and a rich account."""
    from smmkit.mock_server.core.config import Config, build_panel
    from smmkit.mock_server.web.app import create_app

    config = Config(db=":memory:", seed=1, clock="manual")
    panel = build_panel(config)
    panel.create_account(RICH_KEY, balance="100000000", currency="USD")
    target = WsgiTarget(create_app(panel, config=config), RICH_KEY)
    catalogue = target.send({"action": "services"}).json()
    return panel, target, catalogue


def test_every_service_type_of_the_fake_is_covered(world: Any) -> None:
    _, _, catalogue = world
    assert {s["type"] for s in catalogue} <= set(QUANTITY_RULES)


def test_valid_adds_conform_to_the_request_schema_and_are_accepted(world: Any) -> None:
    panel, target, catalogue = world
    services = {s.service: s for s in parse_catalogue(catalogue)}
    types = sorted({s.type for s in services.values()})
    assert len(types) >= 10

    @settings(FAST, max_examples=8)
    @given(data=st.data())
    def check(kind: str, data: st.DataObject) -> None:
        params = data.draw(smm.add_requests(catalogue, types=[kind], quantity_cap=5000))
        service = services[int(params["service"])]
        assert service.type == kind
        assert schemas.check_request({"key": RICH_KEY, **params}, service.type) == []
        quantity = service.quantity_of(params)
        assert quantity is not None
        if not service.package and service.type != "Subscriptions":
            assert service.min <= quantity <= service.max
        panel.reset()
        panel.create_account(RICH_KEY, balance="100000000", currency="USD")
        answer = target.send(params).json()
        assert "order" in answer, (params, answer)

    for kind in types:  # every service type of the catalogue, not just the likeliest draws
        check(kind)


@pytest.mark.parametrize("spending", [True, False])
def test_invalid_requests_get_their_catalogue_error(world: Any, spending: bool) -> None:
    panel, target, catalogue = world
    names: set[str] = set()

    @settings(FAST, max_examples=250)  # enough draws to meet every kind of invalid request
    @given(smm.invalid_requests(catalogue, spending=spending))
    def check(invalid: smm.InvalidRequest) -> None:
        names.add(invalid.name)
        assert invalid.spends <= spending
        exchange = target.send(invalid.params, note=invalid.name)
        assert check_expected_error(exchange, invalid.code, limit=invalid.limit) == []

    check()
    read_only = {"bad key", "missing key", "bad action", "unknown order", "unknown refill",
                 "more than 100 ids"}
    spenders = {"unknown service", "empty link", "non-integer quantity", "above max", "below min",
                "refill of unknown order"}
    assert read_only <= names
    assert (spenders <= names) if spending else not (names & spenders)


def test_invalid_adds_know_what_they_would_cost(world: Any) -> None:
    _, _, catalogue = world

    @FAST
    @given(smm.invalid_requests(catalogue))
    def check(invalid: smm.InvalidRequest) -> None:
        assert isinstance(invalid.cost_if_accepted, Decimal)
        if invalid.name in ("above max", "below min"):
            assert invalid.cost_if_accepted > 0

    check()


@FAST
@given(st.data())
def test_id_strategies_answer_with_comma_lists(data: st.DataObject) -> None:
    params = data.draw(smm.multi_status_requests([1, 2, 3]))
    ids = [part.strip() for part in params["orders"].split(",")]
    assert 1 <= len(ids) <= 10 and all(i.isdigit() for i in ids) and len(set(ids)) == len(ids)
    assert data.draw(smm.read_only_requests())["action"] in {"services", "balance", "status",
                                                             "refill_status"}
