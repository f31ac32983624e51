"""Money conservation for a panel that writes money with fewer than 5 decimals.

Inside, the fake's money is exact to 5 decimals; in a dialect with `money.decimals` 0-4 it
writes every balance and charge rounded half-up. The kit, judging with that dialect file, must
never flag a correct panel for its rounding (any opening balance, any orders, any outcome), and
must still catch a broken panel that loses one unit of the last place on every order — a
wrapper around the fake that writes each balance that much lower (tests/kit/_defects.py builds
its broken panels the same way)."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from smmkit.contract_tests.bridge.judge import Judge
from smmkit.contract_tests.history import History
from smmkit.contract_tests.targets import WsgiTarget
from smmkit.mock_server import Config, build_panel, create_app
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.config import DEMO_KEY
from smmkit.schemas.dialects import load_dialect

SETTINGS = settings(max_examples=10, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
# Default services of the built-in catalogue: (id, min, max); rates 0.0125 to 18.00 per 1000.
SERVICES = [(1, 50, 10000), (3, 20, 20000), (4, 50, 15000), (16, 100, 1000000),
            (21, 50, 5000), (22, 20, 20000), (32, 100, 100000)]
OUTCOMES = (None, "In progress", "Completed", "Partial", "Canceled")
EXACT = (None, "In progress", "Completed")  # outcomes whose charge is the price, exactly


def dialect_file(tmp: Path, decimals: int, trim: bool, as_: str) -> str:
    path = tmp / f"money-{decimals}.json"
    path.write_text(json.dumps({"name": f"money-{decimals}", "money": {
        "as": as_, "decimals": decimals, "trim_zeros": trim}}))
    return str(path)


class LosesAUnitPerOrder:
    """A broken panel: each balance it writes is one unit of its last place lower for every
    order it has taken — money gone that no charge accounts for."""

    def __init__(self, app: Any, dialect: str) -> None:
        self.app, self.spec, self.orders = app, load_dialect(dialect), 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        from werkzeug.wrappers import Request, Response

        body = Request(environ).get_data()  # read once, then handed on to the fake
        action = dict(parse_qsl(body.decode())).get("action")
        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        answer = Response.from_app(self.app, environ)
        data = json.loads(answer.get_data(), parse_float=Decimal)
        if action == "add" and "order" in data:
            self.orders += 1
        if action == "balance" and "balance" in data:
            unit = Decimal(1).scaleb(-int(self.spec.money["decimals"]))
            lost = self.spec.money_text(Decimal(str(data["balance"])) - self.orders * unit)
            text = json.dumps({**data, "balance": "@"})
            written = f'"{lost}"' if self.spec.money["as"] == "string" else lost
            answer.set_data(text.replace('"@"', written))
        return answer(environ, start_response)


def session(tmp: Path, dialect: str, opening: Decimal, orders: list[tuple[int, int, Any]],
            broken: bool = False) -> list[Any]:
    """The catalogue (what each order should cost) and the balance; the orders, each steered to
    its outcome; a status of each between two balances (the bracket the law is checked over).
    The exchanges, in order."""
    config = Config(db=":memory:", clock="manual", dialect=dialect, journal_limit=0)
    panel = build_panel(config)
    steering.update_account(panel, DEMO_KEY, {"balance": str(opening)})
    app = create_app(panel, config=config)
    target = WsgiTarget(LosesAUnitPerOrder(app, dialect) if broken else app, DEMO_KEY)
    sent = [target.send({"action": "services"}), target.send({"action": "balance"})]
    placed = []
    for n, (index, share, outcome) in enumerate(orders):
        service, low, high = SERVICES[index]
        quantity = low + (high - low) * share // 1000
        sent.append(target.send({"action": "add", "service": str(service),
                                 "quantity": str(quantity), "link": f"https://x.test/{n}"}))
        order = sent[-1].json()["order"]  # a KeyError here names the refusal in the body
        placed.append(order)
        if outcome is not None:
            remains = {"Partial": max(1, quantity * share // 1000 % quantity),
                       "In progress": quantity}.get(outcome)
            changes = {"status": outcome, "force": True}
            if remains is not None and (outcome != "Partial" or 0 < remains < quantity):
                changes["remains"] = remains
            steering.force_order(panel, order, changes)
    sent.append(target.send({"action": "balance"}))
    sent += [target.send({"action": "status", "order": str(o)}) for o in placed]
    sent.append(target.send({"action": "balance"}))
    return sent


def findings(dialect: str, exchanges: list[Any]) -> list[tuple[str, str]]:
    judge = Judge(dialect)
    return [(f["check"], f["message"]) for e in exchanges for f in judge.judge(e).findings
            if f["severity"] == "violation"]


# At least what six of the dearest orders cost (110 each): every add is accepted.
openings = st.decimals(min_value=Decimal("700"), max_value=Decimal("100000"), places=5)
orders_of = st.tuples(st.integers(0, len(SERVICES) - 1), st.integers(0, 1000),
                      st.sampled_from(OUTCOMES))


@SETTINGS
@given(decimals=st.integers(0, 5), trim=st.booleans(), as_=st.sampled_from(["string", "number"]),
       opening=openings, orders=st.lists(orders_of, min_size=1, max_size=6))
@example(decimals=2, trim=False, as_="string", opening=Decimal("1000.00499"),
         orders=[(0, 0, None), (0, 0, "Canceled"), (3, 0, "Partial")])
def test_a_correct_panel_is_never_flagged_for_its_rounding(
        tmp_path: Path, decimals: int, trim: bool, as_: str, opening: Decimal,
        orders: list[tuple[int, int, Any]]) -> None:
    dialect = dialect_file(tmp_path, decimals, trim, as_)
    assert findings(dialect, session(tmp_path, dialect, opening, orders)) == []


@SETTINGS
@given(decimals=st.integers(0, 4), trim=st.booleans(), as_=st.sampled_from(["string", "number"]),
       opening=openings, orders=st.lists(st.tuples(st.integers(0, len(SERVICES) - 1),
                                                   st.integers(0, 1000),
                                                   st.sampled_from(EXACT)),
                                         min_size=2, max_size=6))
def test_a_panel_losing_a_unit_per_order_is_caught(
        tmp_path: Path, decimals: int, trim: bool, as_: str, opening: Decimal,
        orders: list[tuple[int, int, Any]]) -> None:
    dialect = dialect_file(tmp_path, decimals, trim, as_)
    checks = {check for check, _ in findings(
        dialect, session(tmp_path, dialect, opening, orders, broken=True))}
    assert checks == {"money_conservation"}


def test_the_two_decimal_rule_and_what_it_says(tmp_path: Path) -> None:
    dialect = dialect_file(tmp_path, 2, False, "string")
    orders = [(0, 0, None), (0, 0, None), (0, 0, None)]  # 0.045 each: written 0.05
    assert findings(dialect, session(tmp_path, dialect, Decimal("1000"), orders)) == []
    [(check, message)] = findings(dialect, session(tmp_path, dialect, Decimal("1000"), orders,
                                                   broken=True))
    assert message == ("balance 999.84 + reported charges 0.13500 ≠ opening 1000 + top-ups 0 = "
                       "1000 (rounding to 2 decimals explains at most ± 0.01)")


def test_without_the_dialect_the_rounding_would_be_misjudged(tmp_path: Path) -> None:
    """The check the dialect's decimals change: judged as if money had 5 decimals, the same
    correct 2-decimal session is flagged (what the kit did before it read `decimals`)."""
    dialect = dialect_file(tmp_path, 2, False, "string")
    exchanges = session(tmp_path, dialect, Decimal("1000"), [(0, 0, None)] * 3)
    history = History(money_places=5)
    assert {v.check for e in exchanges for v in history.observe(e)} == {"money_conservation",
                                                                        "charge"}
    history = History(money_places=2)
    assert [v.check for e in exchanges for v in history.observe(e)] == []
