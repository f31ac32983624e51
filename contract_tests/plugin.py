"""The pytest plugin (entry point ``pytest11: smmkit``): the fake panel and a target as fixtures.

Cheap and polite: importing this module imports nothing but pytest; the fake, requests and
Hypothesis are imported inside the fixtures that need them. Options are namespaced ``--smm-*``.

- ``smm_server`` (session): the fake on an ephemeral port, manual clock.
- ``smm_panel`` (per test): that server reset (accounts, catalogue, clock, faults, journal) and
  driven through its control API — ``smm_panel.clock.advance("2h")``,
  ``.orders.force(id, status="Partial", remains=40)``, ``.faults.next("add", "drop")``,
  ``.journal(action="add")``, ``.assert_client_conformed()``; ``.core`` is the in-process Panel.
- ``smm_target`` (per test): the live panel given by ``--smm-url``/``--smm-key``, else the fake
  with the demo key. Tests marked ``smm_spends`` are skipped on a live panel unless
  ``--smm-allow-orders`` and a positive ``--smm-budget`` are given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest

FAKE_BUDGET = Decimal("1")  # what spending tests may spend on the fake when no budget is given
FAKE_SECOND_KEY = "smmkit-second-key"  # the fake's second demo account (data/accounts.json)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smmkit", "SMM panel API v2 contract kit")
    group.addoption("--smm-url", default=None, help="API URL of a live panel (…/api/v2).")
    group.addoption("--smm-key", default=None, help="API key for --smm-url.")
    group.addoption("--smm-allow-orders", action="store_true", default=False,
                    help="Let tests marked smm_spends place orders on the live panel.")
    group.addoption("--smm-budget", default="0", help="Most the spending tests may spend.")
    group.addoption("--smm-other-key", default=None,
                    help="A second account's key: this key's ids must be invisible to it.")
    group.addoption("--smm-watch", default="60", metavar="SECONDS",
                    help="How long a live run follows the orders it placed until final "
                         "(the fake's clock is driven instead; 0 skips).")
    group.addoption("--smm-dialect", default="perfectpanel",
                    choices=("perfectpanel", "seed", "auto"), help="Dialect to check against.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "smm_spends: places orders; on a live panel needs --smm-allow-orders and "
        "--smm-budget")


@dataclass
class SmmTarget:
    """Where the tests point: a live panel or the fake, and what they may spend there."""

    url: str
    key: str
    dialect: str
    live: bool
    allow_orders: bool
    budget: Decimal
    client: Any  # targets.HttpTarget
    panel: Any = None  # the fake's Panel, None on a live panel
    watch: float = 60.0  # --smm-watch: seconds a live run follows its orders
    other_key: str | None = None  # a second account (--smm-other-key; the fake's second key)

    @property
    def can_spend(self) -> bool:
        return self.allow_orders and self.budget > 0

    def send(self, params: Mapping[str, Any], **options: Any) -> Any:
        return self.client.send(params, **options)

    def check_config(self, **changes: Any) -> Any:
        from smmkit.contract_tests.runner import CheckConfig

        values: dict[str, Any] = {"url": self.url, "key": self.key, "dialect": self.dialect,
                                  "target": self.client, "other_key": self.other_key,
                                  "watch": self.watch}
        if getattr(self.client, "can_advance", False):  # the fake: drive its clock in the watch
            values["clock"] = self.client.advance
        if self.other_key and hasattr(self.client, "with_key"):
            values["other_target"] = self.client.with_key(self.other_key)
        values.update(changes)
        return CheckConfig(**values)


def _budget(config: pytest.Config) -> Decimal:
    raw = config.getoption("smm_budget")
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise pytest.UsageError(f"--smm-budget: {raw!r} is not a decimal amount") from None


def _watch(config: pytest.Config) -> float:
    raw = config.getoption("smm_watch")
    try:
        seconds = float(raw)
    except ValueError:
        raise pytest.UsageError(f"--smm-watch: {raw!r} is not a number of seconds") from None
    if not 0 <= seconds <= 86400:
        raise pytest.UsageError(f"--smm-watch: {raw!r} must be between 0 and 86400 seconds")
    return seconds


def _live(config: pytest.Config) -> bool:
    url, key = config.getoption("smm_url"), config.getoption("smm_key")
    if bool(url) != bool(key):
        raise pytest.UsageError("--smm-url and --smm-key go together")
    return bool(url)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("smm_spends") is None or not _live(item.config):
        return
    if not (item.config.getoption("smm_allow_orders") and _budget(item.config) > 0):
        pytest.skip("spends money: pass --smm-allow-orders and --smm-budget to run it live")


@pytest.fixture(scope="session")
def smm_server() -> Iterator[Any]:
    """The fake panel on 127.0.0.1:<ephemeral>, manual clock, seed 1."""
    from smmkit.mock_server.core.config import Config
    from smmkit.mock_server.serving.server import start_background

    running = start_background(Config(db=":memory:", seed=1, clock="manual", port=0))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def smm_panel(smm_server: Any) -> Any:
    """The fake, reset, as a ControlClient (clock, accounts, orders, refills, services, faults,
    journal, snapshots); `.core` is the in-process Panel."""
    from smmkit.mock_server.client.control import ControlClient

    client = ControlClient(smm_server.url, smm_server.config.admin_token)
    client.reset()
    client.core = smm_server.panel
    return client


@pytest.fixture
def smm_target(request: pytest.FixtureRequest) -> SmmTarget:
    """The live panel of --smm-url/--smm-key, else the (reset) fake with the demo key."""
    from smmkit.contract_tests.targets import HttpTarget

    config = request.config
    dialect = config.getoption("smm_dialect")
    if _live(config):
        url, key = config.getoption("smm_url"), config.getoption("smm_key")
        other = config.getoption("smm_other_key")
        return SmmTarget(url=url, key=key, dialect=dialect, live=True,
                         allow_orders=config.getoption("smm_allow_orders"),
                         budget=_budget(config),
                         client=HttpTarget(url, key, secrets=(other,) if other else ()),
                         other_key=other, watch=_watch(config))
    from smmkit.mock_server.core.config import DEMO_KEY

    panel = request.getfixturevalue("smm_panel")
    running = request.getfixturevalue("smm_server")
    core = running.panel  # in-process: clock moves without an HTTP round trip
    client = HttpTarget(running.api_url, DEMO_KEY, advance=core.advance, reset=core.reset,
                        top_up=core.top_up)
    budget = _budget(config)
    return SmmTarget(url=running.api_url, key=DEMO_KEY, dialect=dialect, live=False,
                     allow_orders=True, budget=budget if budget > 0 else FAKE_BUDGET,
                     client=client, panel=panel,
                     other_key=config.getoption("smm_other_key") or FAKE_SECOND_KEY)
