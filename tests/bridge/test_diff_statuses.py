"""`smmkit diff` and status spellings: a second fake on loopback spells statuses its own way
("In Progress", "Complete", "Cancelled"...); the diff reaches orders in those statuses — the
key's existing orders read-only, the orders it places with --allow-orders — finds each
spelling, writes it into the dialect file, and with that file the fake is identical."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from smmkit.contract_tests.bridge.diff import DiffError, run_diff
from smmkit.contract_tests.bridge.infer import infer_dialect
from smmkit.contract_tests.bridge.statuses import STATUSES, canonical_status
from smmkit.contract_tests.exchange import Exchange
from smmkit.contract_tests.targets import HttpTarget
from smmkit.schemas import contract
from smmkit.schemas.dialects import load_dialect

from smmkit.cli import main

SPELLINGS = {"Pending": "pending", "In progress": "In Progress", "Completed": "Complete",
             "Partial": "Partially completed", "Canceled": "Cancelled"}
# Each order placed on the live panel, and where it is steered to (None: left Pending).
# (Not Processing: the fake, forced there on a frozen clock, still reports Pending.)
STEERED = [None, {"status": "In progress", "remains": 60},
           {"status": "Completed"}, {"status": "Partial", "remains": 30},
           {"status": "Canceled"}]


def spellings(fidelity: Any) -> set[tuple[str, str]]:
    return {(d.live, d.fake) for p in fidelity.pairs for d in p.differences
            if d.kind == "spelling"}


def differences(fidelity: Any) -> list[str]:
    return [f"{p.label}: {d}" for p in fidelity.pairs for d in p.differences]


@pytest.fixture
def spelled_live(live: Any, tmp_path: Path) -> Any:
    path = tmp_path / "spelled.json"
    path.write_text(json.dumps({"name": "spelled", "statuses": SPELLINGS}))
    return live(dialect=str(path))


def place_steered(panel: Any, key: str) -> list[str]:
    ids = []
    for n, changes in enumerate(STEERED):
        answer = requests.post(panel.api_url, timeout=10, data={
            "key": key, "action": "add", "service": "1", "quantity": "100",
            "link": f"https://instagram.com/existing-{n}"}).json()
        if changes:
            panel.control.orders.force(answer["order"], force=True, **changes)
        ids.append(str(answer["order"]))
    return ids


@pytest.mark.parametrize("spelling, canonical", [
    ("In Progress", "In progress"), ("in_progress", "In progress"), ("Complete", "Completed"),
    ("COMPLETED", "Completed"), ("Cancelled", "Canceled"), ("cancel", "Canceled"),
    ("Partially completed", "Partial"), ("pending", "Pending"), ("Processing", "Processing"),
    ("rejected", "Rejected"), ("Refunded", None), ("In", None), ("", None), (7, None)])
def test_a_spelling_folds_onto_the_one_status_it_means(spelling: Any,
                                                       canonical: str | None) -> None:
    assert canonical_status(spelling) == canonical


def test_the_statuses_are_the_contracts() -> None:
    assert set(STATUSES) == {*contract.ORDER_STATUSES, *contract.REFILL_STATUSES}
    assert len(STATUSES) == len(set(STATUSES))


def test_existing_orders_show_every_spelling_and_the_written_dialect_closes_the_gap(
        spelled_live: Any, key: str, tmp_path: Path) -> None:
    ids = place_steered(spelled_live, key)
    target = HttpTarget(spelled_live.api_url, key)
    before = run_diff(target, key=key, orders=ids)
    assert spellings(before) == {(spelled, canonical)
                                 for canonical, spelled in SPELLINGS.items()}
    assert {d.where for p in before.pairs for d in p.differences} == {"$.status",
                                                                       "$.<id>.status"}
    assert before.score < 1.0
    written = tmp_path / "provider.json"
    result = CliRunner().invoke(main, ["diff", spelled_live.api_url, "--key", key, "--orders",
                                       ",".join(ids), "--write-dialect", str(written)])
    assert result.exit_code == 0, result.output
    assert "spelling at $.status" in result.output
    assert json.loads(written.read_text())["statuses"] == SPELLINGS
    after = run_diff(target, key=key, orders=ids, dialect=str(written))
    assert after.score == 1.0, differences(after)
    result = CliRunner().invoke(main, ["diff", spelled_live.api_url, "--key", key, "--orders",
                                       ",".join(ids), "--dialect", str(written)])
    assert "fidelity: 100.0%" in result.output
    # read-only: the live orders are as they were
    assert [spelled_live.control.orders.get(int(i))["status"] for i in ids] == [
        "Pending", *(c["status"] for c in STEERED[1:])]


def test_without_orders_to_look_at_the_read_only_script_sees_no_spelling(
        spelled_live: Any, key: str) -> None:
    fidelity = run_diff(HttpTarget(spelled_live.api_url, key), key=key)
    assert spellings(fidelity) == set() and fidelity.score == 1.0
    assert infer_dialect(fidelity.pairs)["statuses"] == {}


def test_an_unknown_or_missing_order_is_compared_as_the_error_it_is(
        spelled_live: Any, key: str) -> None:
    ids = place_steered(spelled_live, key)[:2]
    fidelity = run_diff(HttpTarget(spelled_live.api_url, key), key=key,
                        orders=[*ids, "424242"])
    [missing] = [p for p in fidelity.pairs if p.live.params.get("order") == "424242"]
    assert missing.live.json() == missing.fake.json() == {"error": "Incorrect order ID"}
    with pytest.raises(DiffError, match="order ids"):
        run_diff(HttpTarget(spelled_live.api_url, key), key=key, orders=["1; DROP"])
    result = CliRunner().invoke(main, ["diff", spelled_live.api_url, "--key", key,
                                       "--orders", "x"])
    assert result.exit_code == 1 and "orders must be at most 50 order ids" in result.output


class RunningClockTarget(HttpTarget):
    """A live panel whose orders move on by themselves (its clock runs, the fake's does not):
    each new order is In progress with 10 delivered by the time it is next asked about, and a
    cancel has taken effect by then."""

    def __init__(self, panel: Any, key: str) -> None:
        super().__init__(panel.api_url, key)
        self.panel = panel

    def send(self, params: Any, **options: Any) -> Exchange:
        exchange = super().send(params, **options)
        placed = exchange.json()
        if params.get("action") == "add" and isinstance(placed, dict) and "order" in placed:
            quantity = int(params["quantity"])
            self.panel.control.orders.force(placed["order"], status="In progress",
                                            remains=quantity - 10)
        if params.get("action") == "cancel":
            self.panel.control.clock.advance(600)
        return exchange


def test_orders_the_diff_places_are_mirrored_status_by_status(spelled_live: Any,
                                                             key: str) -> None:
    target = RunningClockTarget(spelled_live, key)
    opening = Decimal(str(target.send({"action": "balance"}).json()["balance"]))
    before = run_diff(target, key=key, allow_orders=True, budget=Decimal("0.5"))
    found = spellings(before)
    assert ("In Progress", "In progress") in found  # the fake's order was steered to it
    assert any(live in ("Partially completed", "Cancelled") for live, _ in found)
    statuses = {d.where for p in before.pairs for d in p.differences}
    assert statuses <= {"$.status", "$.<id>.status"}, differences(before)
    doc = infer_dialect(before.pairs, "learned")
    assert doc["statuses"]["In progress"] == "In Progress"
    after = run_diff(target, key=key, allow_orders=True, budget=Decimal("0.5"),
                     dialect=load_dialect(doc))
    assert after.score == 1.0, differences(after)  # balances after the cancel included
    closing = Decimal(str(target.send({"action": "balance"}).json()["balance"]))
    assert opening - closing <= Decimal("1.0")
