"""`smmkit diff URL --key KEY`: how faithfully the fake imitates a live panel, and the dialect
file that makes it imitate it exactly.

The same script runs against the live panel and against an in-process fake selling the live
panel's pulled catalogue, with the live balance and currency: read-only probes by default (the
catalogue, the balance, unknown ids single and multi, a bad key, a missing and an unknown
action), and with `allow_orders` a small spending script within the budget (refused adds, one
cheapest order, its status, a cancel, a refill). Each pair of answers is compared
(`compare.compare`); the fidelity is the share of identical pairs. `infer_dialect` reads the
live answers into a dialect file; loaded into the fake, it answers like the live panel.

Status spellings show only where both panels answer about an order in the same status, so the
fake is steered (`statuses.FakeOrders`): for the live orders named with `orders` (read-only:
the key's own existing orders) it holds an order in each one's status, and each order the
spending script places is kept, step by step, in the status the live panel reports for it.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from smmkit.contract_tests.bridge.compare import Difference, compare, parse
from smmkit.contract_tests.bridge.pull import to_catalog
from smmkit.contract_tests.bridge.statuses import FakeOrders, canonical_status, order_views
from smmkit.contract_tests.catalogue import KitService, parse_catalogue
from smmkit.contract_tests.exchange import Exchange
from smmkit.schemas import contract
from smmkit.schemas.dialects import load_dialect

UNKNOWN_ID = "999999991"
OTHER_ID = "999999992"
MAX_ORDERS = 50  # existing live orders the read-only script asks about


class DiffError(Exception):
    """The live panel could not be compared (unreachable, key refused, no catalogue)."""


@dataclass(frozen=True)
class Step:
    label: str
    exchange: Exchange
    code: str | None = None  # the error the step provokes, when it provokes one
    limit: int | None = None
    # Fields the two panels fill independently here (compared by JSON type only).
    independent: frozenset[str] = frozenset()


@dataclass
class Pair:
    label: str
    live: Exchange
    fake: Exchange
    code: str | None
    limit: int | None
    differences: list[Difference]

    @property
    def action(self) -> str:
        return self.live.action or "(none)"


@dataclass
class Fidelity:
    pairs: list[Pair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        if not self.pairs:
            return 0.0
        return sum(not p.differences for p in self.pairs) / len(self.pairs)

    def by_action(self) -> dict[str, dict[str, Any]]:
        """Per action: exchanges, identical ones, and each kind of difference once (with the
        first example and how often it was seen)."""
        table: dict[str, dict[str, Any]] = {}
        for pair in self.pairs:
            row = table.setdefault(pair.action, {"exchanges": 0, "identical": 0, "how": {}})
            row["exchanges"] += 1
            row["identical"] += not pair.differences
            for difference in pair.differences:
                key = f"{difference.kind} at {difference.where}"
                example, count = row["how"].get(key, (difference.summary(), 0))
                row["how"][key] = (example, count + 1)
        return {action: {**row, "how": [f"{example} (×{count})" if count > 1 else example
                                        for example, count in row["how"].values()]}
                for action, row in sorted(table.items())}

    def to_json(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "notes": self.notes, "actions": self.by_action(),
                "pairs": [{"label": p.label, "action": p.action,
                           "differences": [str(d) for d in p.differences]} for p in self.pairs]}


Send = Callable[..., Exchange]


def read_only_script(send: Send) -> list[Step]:
    return [
        Step("services", send({"action": "services"})),
        Step("balance", send({"action": "balance"})),
        Step("status of an unknown order", send({"action": "status", "order": UNKNOWN_ID}),
             "incorrect_order"),
        Step("status of unknown orders", send({"action": "status",
                                               "orders": f"{UNKNOWN_ID},{OTHER_ID}"}),
             "incorrect_order"),
        Step("unknown refill", send({"action": "refill_status", "refill": UNKNOWN_ID}),
             "refill_not_found"),
        Step("unknown refills", send({"action": "refill_status",
                                      "refills": f"{UNKNOWN_ID},{OTHER_ID}"}),
             "refill_not_found"),
        Step("bad key", send({"action": "balance", "key": "smmkit-diff-not-a-key"}),
             "invalid_key"),
        Step("no action", send({}), "incorrect_request"),
        Step("unknown action", send({"action": "smmkit_diff_unknown"}), "incorrect_request"),
    ]


def existing_orders_script(send: Send, orders: Sequence[str]) -> list[Step]:
    """The status of each given order, one by one and all at once: what the read-only script
    learns of status spellings. Their charges and counts are each panel's own."""
    own = frozenset({"charge"})
    steps = [Step(f"status of existing order #{n}", send({"action": "status", "order": order}),
                  independent=own) for n, order in enumerate(orders, 1)]
    if len(orders) > 1:
        steps.append(Step("status of existing orders", send({"action": "status",
                                                             "orders": ",".join(orders)}),
                          independent=own))
    return steps


def cheapest(services: list[KitService], budget: Decimal) -> KitService | None:
    """The cheapest Default service whose two smallest orders fit the budget, cancel first."""
    usable = [s for s in services if s.type == "Default" and s.min >= 1
              and 2 * s.cheapest_charge() <= budget]
    return min(usable, key=lambda s: (not s.cancel, s.cheapest_charge(), s.service),
               default=None)


def spending_script(send: Send, service: KitService, link: str) -> list[Step]:
    sid = str(service.service)
    steps = []
    if service.min > 1:
        steps.append(Step("add below the minimum", send({
            "action": "add", "service": sid, "link": link + "-low",
            "quantity": str(service.min - 1)}), "min_quantity", service.min))
    steps += [
        Step("add with a bad link", send({"action": "add", "service": sid, "link": "not a link",
                                          "quantity": str(service.min)}), "incorrect_link"),
        Step("add on an unknown service", send({"action": "add", "service": UNKNOWN_ID,
                                                "link": link, "quantity": str(service.min)}),
             "incorrect_service"),
    ]
    placed = send({"action": "add", "service": sid, "link": link, "quantity": str(service.min)})
    steps.append(Step("add the cheapest order", placed))
    order = placed.json().get("order") if isinstance(placed.json(), dict) else None
    if order is None:
        return steps
    steps += [Step("status of the order", send({"action": "status", "order": str(order)})),
              Step("status of orders", send({"action": "status",
                                             "orders": f"{order},{UNKNOWN_ID}"}))]
    if service.cancel:
        steps += [Step("cancel the order", send({"action": "cancel", "orders": str(order)})),
                  Step("status after cancel", send({"action": "status", "order": str(order)}))]
    steps.append(Step("balance after spending", send({"action": "balance"})))
    return steps


# ---------------------------------------------------------------------- the fake side


def _fake_target(services_answer: Any, key: str, balance: Decimal, currency: str,
                 dialect: str | None, workdir: Path) -> tuple[Any, Any, FakeOrders]:
    from smmkit.contract_tests.targets import WsgiTarget
    from smmkit.mock_server import Config, build_panel, create_app

    pulled = to_catalog(services_answer)
    if not pulled.services:
        raise DiffError("the live panel's services answer holds no usable service")
    catalog = workdir / "catalog.json"
    catalog.write_text(json.dumps(pulled.services), "utf-8")
    no_accounts = workdir / "accounts.json"  # the one account is made in memory below
    no_accounts.write_text("[]", "utf-8")
    token = secrets.token_urlsafe(24)  # steers the in-process fake only; never leaves it
    config = Config(db=":memory:", clock="manual", catalog=str(catalog),
                    accounts=str(no_accounts), dialect=dialect or "perfectpanel",
                    journal_limit=0, admin_token=token)
    panel = build_panel(config)
    panel.create_account(key, balance, currency)  # in memory only: the key is in no file
    app = create_app(panel, config=config)
    return WsgiTarget(app, key), pulled, FakeOrders(app, token, key)


def _fake_orders_like(live_steps: list[Step], orders: FakeOrders, services: list[KitService],
                      balance: Decimal, notes: list[str]) -> list[str]:
    """For each live order asked about, the id of a fake order in the same status (an id the
    fake does not know when the live panel did not answer with a status it can hold)."""
    service = min((s for s in services if s.type == "Default" and s.max >= max(s.min, 2)),
                  key=lambda s: (s.cheapest_charge(), s.service), default=None)
    orders.set_balance(Decimal("1e9"))  # room to place them; the live balance is set back
    mirrored: list[str] = []
    for n, step in enumerate(live_steps, 1):
        if "order" not in step.exchange.params:
            continue
        [(ident, view)] = order_views(step.exchange)
        status = canonical_status(view.get("status")) if view else None
        if view and status not in contract.ORDER_STATUSES:
            notes.append(f"order {ident}: status {view.get('status')!r} means no order status "
                         f"of the contract; the fake cannot answer like it")
        placed = (orders.place(service, status, view.get("remains"), n)
                  if service and view and status in contract.ORDER_STATUSES else None)
        mirrored.append(str(placed) if placed is not None else UNKNOWN_ID)
    orders.set_balance(balance)
    return mirrored


def _mirroring(send: Send, live_steps: list[Step], orders: FakeOrders) -> Send:
    """`send` to the fake, each `status` first steered to what the live panel said at the
    same step of the same script."""
    ahead = iter(live_steps)

    def mirrored(params: dict[str, Any]) -> Exchange:
        live = next(ahead, None)
        if live is not None and params.get("action") == "status":
            orders.mirror(params, live.exchange)
        return send(params)

    return mirrored


def _balance_of(exchange: Exchange) -> tuple[Decimal, str]:
    data = parse(exchange.body)
    if not isinstance(data, dict) or "balance" not in data:
        text = exchange.error_text
        raise DiffError(f"the live panel refused `balance`: {text!r}" if text else
                        f"the live panel's balance answer is not usable: {exchange.text(120)!r}")
    try:
        amount = Decimal(str(data["balance"]).strip())
    except ArithmeticError:
        raise DiffError(f"the live balance {data['balance']!r} is not an amount") from None
    return amount, str(data.get("currency") or "USD")


def run_diff(live: Any, *, key: str, dialect: str | None = None, allow_orders: bool = False,
             budget: Decimal = Decimal(0), orders: Sequence[str] = ()) -> Fidelity:
    """Run the script on `live` (a Target) and on a fake made from it; compare pair by pair.
    `orders`: ids of the key's existing live orders, asked about read-only (status spellings)."""
    from smmkit.contract_tests.targets import TargetError

    if dialect is not None:
        load_dialect(dialect)  # a bad file is refused before the live panel is asked anything
    orders = [str(o).strip() for o in orders]
    if len(orders) > MAX_ORDERS or not all(o.isdigit() and len(o) <= 18 for o in orders):
        raise DiffError(f"orders must be at most {MAX_ORDERS} order ids (digits), got "
                        f"{', '.join(orders[:3])}{'...' if len(orders) > 3 else ''}")
    fidelity = Fidelity()
    try:
        services = live.send({"action": "services"})
        balance, currency = _balance_of(live.send({"action": "balance"}))
    except TargetError as exc:
        raise DiffError(str(exc)) from None
    answer = json.loads(services.body, parse_float=Decimal) if services.json() else None
    if not isinstance(answer, list):
        raise DiffError(f"the live panel's services answer is not a list: {services.text(120)!r}")
    with tempfile.TemporaryDirectory(prefix="smmkit-diff-") as workdir:
        fake, pulled, fake_orders = _fake_target(answer, key, balance, currency, dialect,
                                                 Path(workdir))
        fidelity.notes += [f"skipped service {reason}" for reason in pulled.skipped]
        catalogue = parse_catalogue(parse(services.body))
        try:
            live_steps = read_only_script(live.send)
            fake_steps = read_only_script(fake.send)
            if orders:
                existing = existing_orders_script(live.send, orders)
                live_steps += existing
                fake_steps += existing_orders_script(fake.send, _fake_orders_like(
                    existing, fake_orders, catalogue, balance, fidelity.notes))
            if allow_orders:
                service = cheapest(catalogue, budget)
                if service is None:
                    fidelity.notes.append(f"no Default service's two smallest orders fit the "
                                          f"budget {budget}: spending script skipped")
                else:
                    link = f"https://instagram.com/smmkit-diff-{secrets.token_hex(4)}"
                    spent = spending_script(live.send, service, link)
                    live_steps += spent
                    fake_steps += spending_script(_mirroring(fake.send, spent, fake_orders),
                                                  service, link)
        except TargetError as exc:
            raise DiffError(str(exc)) from None
    for a, b in zip(live_steps, fake_steps, strict=False):
        fidelity.pairs.append(Pair(a.label, a.exchange, b.exchange, a.code, a.limit,
                                   compare(a.exchange, b.exchange, independent=a.independent)))
    if len(live_steps) != len(fake_steps):
        fidelity.notes.append(f"the scripts diverged: {len(live_steps)} live steps, "
                              f"{len(fake_steps)} on the fake (the live panel refused an "
                              f"order the fake accepted, or the other way round)")
    return fidelity
