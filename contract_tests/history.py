"""Checks across exchanges: what a panel said earlier constrains what it may say now.

`History` follows one session in order, per account (the key's fingerprint): the catalogue, the
orders the kit placed with what they should cost, every status seen, balances and top-ups. It
checks exact charges, remains, final statuses, the lifecycle order, refill/cancel rules, that
another key's ids are invisible, and money conservation (docs/PROTOCOL.md §6):

    balance + Σ reported charges == opening balance + top-ups

Conservation is checked over a *bracket* — balance B1, a status of every order, balance B2 with
B1 == B2 and nothing spent in between — so a refund landing mid-way (a live panel's clock runs)
only skips a check, never fakes a finding. Orders the account had before the session are not
known to the kit: on a live account with orders still running, a refund of one shows as a
conservation finding; use a fresh account.

Money is exact to 5 decimals inside a panel; one that *writes* fewer (`money_places`, a dialect
file's `money.decimals`) rounds each amount half-up as it writes it. Each written charge is then
held to the exact one rounded, and the law to what rounding can explain, summed honestly: each
written amount may be off by half a unit of the last place. A written charge stands for the
exact charges the contract allows that are written so (one, mostly: its price, 0, a partial
refund), so the slack is mostly the two balances' (one unit), and a panel that loses a unit on
every order is caught from its second order on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from smmkit.contract_tests.catalogue import (
    FIVE_PLACES,
    KitService,
    by_id,
    parse_catalogue,
    parse_decimal,
    parse_int,
)
from smmkit.contract_tests.exchange import NO_JSON, Exchange
from smmkit.contract_tests.texts import accepted_texts, classify_error_text
from smmkit.contract_tests.violation import Violation, finding
from smmkit.schemas import contract

FINAL = contract.FINAL_STATUSES
SPENDING = frozenset({"add", "cancel", "refill"})
MONEY_PLACES = 5  # docs/PROTOCOL.md §6: the decimals money is exact to


@dataclass
class OrderRecord:
    order: str
    account: str
    service: KitService | None
    quantity: int | None
    charge: Decimal | None  # what the add should have cost
    status: str | None = None
    reported: Decimal | None = None  # latest charge reported by `status`
    # The exact amounts `reported` can stand for: (least, most) of the charges the contract
    # allows that are written so, else the written charge ± half a unit.
    bounds: tuple[Decimal, Decimal] | None = None
    seen_at: int = -1  # sequence number of the latest status observation
    remains: int | None = None  # latest remains reported


@dataclass
class Account:
    opening: Decimal | None = None
    opening_written: bool = False  # read from a balance answer (rounded as written)
    top_ups: Decimal = Decimal("0")
    currency: str | None = None
    last_balance: tuple[Decimal, int] | None = None
    last_spend: int = -1
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    refills: set[str] = field(default_factory=set)


class History:
    """Feed exchanges in order with `observe`; each call returns the findings it adds."""

    def __init__(self, *, dialect: str = "perfectpanel",
                 catalogue: Iterable[KitService] | None = None,
                 money_places: int = MONEY_PLACES) -> None:
        self.dialect = dialect
        self.money_places = money_places
        self._unit = Decimal(1).scaleb(-money_places)
        self.services: dict[int, KitService] = by_id(catalogue or ())
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, OrderRecord] = {}
        self.refill_owner: dict[str, str] = {}
        self.seq = 0

    # ------------------------------------------------------------------ public helpers
    def account(self, name: str) -> Account:
        return self.accounts.setdefault(name, Account())

    def top_up(self, account: str, amount: Decimal | str) -> None:
        """Money added to `account` outside the API (the conservation law counts it)."""
        self.account(account).top_ups += Decimal(str(amount))

    def set_opening(self, account: str, balance: Decimal | str) -> None:
        """The exact opening balance (known from outside the API, not as written)."""
        self.account(account).opening = Decimal(str(balance))

    def written(self, amount: Decimal) -> Decimal:
        """`amount` as the panel writes it: half-up to its money places (exact from 5 on)."""
        if self.money_places >= MONEY_PLACES:
            return amount
        return amount.quantize(self._unit, rounding=ROUND_HALF_UP)

    @property
    def half_unit(self) -> Decimal:
        """The most rounding moves one written amount (nothing when money is written exact)."""
        return Decimal(0) if self.money_places >= MONEY_PLACES else self._unit / 2

    def orders_of(self, account: str) -> list[str]:
        return list(self.account(account).orders)

    def refills_of(self, account: str) -> list[str]:
        return sorted(self.account(account).refills)

    # ------------------------------------------------------------------ observing
    def observe(self, exchange: Exchange) -> list[Violation]:
        self.seq += 1
        data = exchange.json()
        if data is NO_JSON:
            return []
        handler = getattr(self, f"_on_{exchange.action}", None)
        found: list[Violation] = handler(exchange, data) if handler else []
        if exchange.action in SPENDING:
            self.account(exchange.account).last_spend = self.seq
        return found

    def _on_services(self, exchange: Exchange, data: Any) -> list[Violation]:
        parsed = parse_catalogue(data)
        if parsed:
            self.services = by_id(parsed)
        return []

    def _on_add(self, exchange: Exchange, data: Any) -> list[Violation]:
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return self._quantity_text(exchange, data["error"])
        if not isinstance(data, dict) or "order" not in data:
            return []
        order = str(data["order"])
        found: list[Violation] = []
        if order in self.orders:
            found.append(finding("unique_order_ids", "semantics",
                                 f"add answered order {order}, an id given out before", exchange))
        service = self.services.get(parse_int(exchange.params.get("service")) or -1)
        record = OrderRecord(
            order=order, account=exchange.account, service=service,
            quantity=service.quantity_of(exchange.params) if service else None,
            charge=service.charge_of(exchange.params) if service else None,
        )
        self.orders[order] = record
        self.account(exchange.account).orders[order] = record
        return found

    def _quantity_text(self, exchange: Exchange, text: str) -> list[Violation]:
        """A quantity error names the service's own limit: "... minimal 50" for min 50."""
        _, code, limit = classify_error_text(text, self.dialect)
        service = self.services.get(parse_int(exchange.params.get("service")) or -1)
        if service is None or limit is None or code not in ("min_quantity", "max_quantity"):
            return []
        wanted = service.min if code == "min_quantity" else service.max
        if limit == wanted:
            return []
        return [finding("quantity_limit", "errors",
                        f"{text!r} names {limit}, but service {service.service} has "
                        f"{code.split('_')[0]} {wanted}", exchange)]

    def _foreign(self, exchange: Exchange, ident: str, value: Any, kind: str) -> list[Violation]:
        """An id owned by another account must look exactly like an unknown id."""
        owner = (self.orders[ident].account if kind == "order" and ident in self.orders
                 else self.refill_owner.get(ident) if kind == "refill" else None)
        if owner is None or owner == exchange.account:
            return []
        code = "incorrect_order" if kind == "order" else "refill_not_found"
        texts = accepted_texts(code, self.dialect)
        if kind == "refill":
            texts |= accepted_texts("refill_not_found", "seed")
        error = value.get("error") if isinstance(value, dict) else None
        if error in texts and (not isinstance(value, dict) or set(value) == {"error"}):
            return []
        return [finding("foreign_ids_invisible", "semantics",
                        f"{kind} {ident} of another key is visible: {value!r} (expected the "
                        f"unknown-id error)", exchange)]

    def _on_status(self, exchange: Exchange, data: Any) -> list[Violation]:
        if "orders" in exchange.params and "order" not in exchange.params:
            if not isinstance(data, dict) or set(data) == {"error"}:
                return []
            found: list[Violation] = []
            for ident, value in data.items():
                found += self._one_status(exchange, str(ident), value)
            return found
        ident = str(exchange.params.get("order", "")).strip()
        return self._one_status(exchange, ident, data)

    def _one_status(self, exchange: Exchange, ident: str, value: Any) -> list[Violation]:
        found = self._foreign(exchange, ident, value, "order")
        record = self.orders.get(ident)
        if found or record is None or record.account != exchange.account:
            return found
        if not isinstance(value, dict) or "status" not in value:
            return found
        status = value.get("status")
        charge = parse_decimal(value.get("charge"))
        remains = parse_int(value.get("remains"))
        found += self._transition(exchange, record, status)
        if remains is not None and record.remains is not None and record.status == status \
                == "In progress" and remains > record.remains:
            found.append(finding("remains_grew", "semantics",
                                 f"order {ident}: remains grew from {record.remains} to "
                                 f"{remains} while In progress", exchange))
        found += self._kept(exchange, record, status, charge, remains)
        price = None if record.charge is None else self.written(record.charge)
        if charge is not None and price is not None:
            if status in ("Partial", "Canceled"):
                if not Decimal(0) <= charge <= price:
                    found.append(finding("charge", "money",
                                         f"order {ident} ({status}) reports charge {charge}, "
                                         f"outside [0, {price}]", exchange))
            elif charge != price:
                found.append(finding("charge", "money",
                                     f"order {ident} reports charge {charge}, expected "
                                     f"{price} (rate × quantity / 1000, half-up)",
                                     exchange))
        if remains is not None and record.quantity is not None:
            if remains > record.quantity:
                found.append(finding("remains", "semantics",
                                     f"order {ident}: remains {remains} above quantity "
                                     f"{record.quantity}", exchange))
            elif remains < 0 and status != "Completed":
                found.append(finding("remains", "semantics",
                                     f"order {ident}: negative remains {remains} on a "
                                     f"{status} order (over-delivery ends Completed)", exchange))
        currency = value.get("currency")
        known = self.account(exchange.account).currency
        if isinstance(currency, str) and known and currency != known:
            found.append(finding("currency", "money",
                                 f"order {ident} in {currency}, the balance is in {known}",
                                 exchange))
        record.status = status if isinstance(status, str) else record.status
        record.remains = remains if remains is not None else record.remains
        record.reported = charge
        record.bounds = self._bounds(record, status, charge, remains)
        record.seen_at = self.seq
        return found

    def _allowed(self, record: OrderRecord, status: Any, remains: int | None) -> set[Decimal]:
        """The exact charges the contract allows `record` in `status` (empty: not known).
        A Partial keeps the original charge or charge × (quantity − remains) / quantity
        (half-up, docs/PROTOCOL.md §6); a Canceled the original or 0; any other its price."""
        if record.charge is None:
            return set()
        if status not in ("Partial", "Canceled"):
            return {record.charge}
        if status == "Canceled":
            return {record.charge, Decimal(0)}
        if remains is None or not record.quantity:
            return set()
        share = record.charge * max(remains, 0) / record.quantity
        refund = share.quantize(FIVE_PLACES, ROUND_HALF_UP)
        kept = record.charge * (record.quantity - max(remains, 0)) / record.quantity
        return {record.charge, record.charge - refund, kept.quantize(FIVE_PLACES, ROUND_HALF_UP)}

    def _bounds(self, record: OrderRecord, status: Any, charge: Decimal | None,
                remains: int | None) -> tuple[Decimal, Decimal] | None:
        """Least and most the exact charge behind the written `charge` can be."""
        if charge is None:
            return None
        fits = [a for a in self._allowed(record, status, remains) if self.written(a) == charge]
        if fits:
            return min(fits), max(fits)
        return charge - self.half_unit, charge + self.half_unit

    def _kept(self, exchange: Exchange, record: OrderRecord, status: Any,
              charge: Decimal | None, remains: int | None) -> list[Violation]:
        """A Partial or Canceled order reports one of the charges `_allowed` names, written."""
        if charge is None or record.charge is None or not record.quantity or \
                status not in ("Partial", "Canceled") or (status == "Partial" and remains is None):
            return []
        allowed = {self.written(a) for a in self._allowed(record, status, remains)}
        if charge in allowed:
            return []
        return [finding("partial_charge", "money",
                        f"order {record.order} is {status} with remains {remains} of "
                        f"{record.quantity} and reports charge {charge}; it should keep "
                        f"{' or '.join(sorted(str(a) for a in allowed))}", exchange)]

    def _transition(self, exchange: Exchange, record: OrderRecord, status: Any) -> list[Violation]:
        before = record.status
        if before is None or not isinstance(status, str) or status == before:
            return []
        if before in FINAL:
            return [finding("final_status", "semantics",
                            f"order {record.order} left final status {before!r} for {status!r}",
                            exchange)]
        if before in contract.ORDER_STATUSES and status in contract.ORDER_STATUSES \
                and not contract.reachable(before, status):
            return [finding("lifecycle_order", "semantics",
                            f"order {record.order} went from {before!r} to {status!r}, not a "
                            "transition of docs/PROTOCOL.md §5",
                            exchange)]
        return []

    def _items(self, exchange: Exchange, data: Any, field_name: str) -> list[tuple[str, Any]]:
        if isinstance(data, list):
            return [(str(item.get("order")), item.get(field_name))
                    for item in data if isinstance(item, dict)]
        if isinstance(data, dict) and "error" not in data:
            ident = str(exchange.params.get("order", exchange.params.get("orders", ""))).strip()
            return [(ident, data.get(field_name))]
        return []

    def _on_refill(self, exchange: Exchange, data: Any) -> list[Violation]:
        found: list[Violation] = []
        for ident, value in self._items(exchange, data, "refill"):
            found += self._foreign(exchange, ident, value, "order")
            record = self.orders.get(ident)
            if isinstance(value, dict) or value is None:
                continue
            refill = str(value)
            self.refill_owner.setdefault(refill, exchange.account)
            self.account(exchange.account).refills.add(refill)
            if record and record.account == exchange.account and record.service:
                if not record.service.refill:
                    found.append(finding("refill_rules", "semantics",
                                         f"refill accepted for order {ident} of service "
                                         f"{record.service.service}, which has no refill",
                                         exchange))
        return found

    def _on_refill_status(self, exchange: Exchange, data: Any) -> list[Violation]:
        if isinstance(data, list):
            pairs = [(str(i.get("refill")), i.get("status")) for i in data if isinstance(i, dict)]
        else:
            pairs = [(str(exchange.params.get("refill", "")).strip(), data)]
        found: list[Violation] = []
        for ident, value in pairs:
            if isinstance(value, str):
                value = {"status": value}
            found += self._foreign(exchange, ident, value, "refill")
        return found

    def _on_cancel(self, exchange: Exchange, data: Any) -> list[Violation]:
        found: list[Violation] = []
        for ident, value in self._items(exchange, data, "cancel"):
            found += self._foreign(exchange, ident, value, "order")
            record = self.orders.get(ident)
            if isinstance(value, dict) or record is None or record.account != exchange.account:
                continue
            if record.status in FINAL:
                found.append(finding("cancel_rules", "semantics",
                                     f"cancel accepted for order {ident}, already "
                                     f"{record.status}", exchange))
            elif record.service and not record.service.cancel:
                found.append(finding("cancel_rules", "semantics",
                                     f"cancel accepted for order {ident} of service "
                                     f"{record.service.service}, which has no cancel", exchange))
        return found

    def _on_balance(self, exchange: Exchange, data: Any) -> list[Violation]:
        if not isinstance(data, dict) or "error" in data:
            return []
        balance = parse_decimal(data.get("balance"))
        account = self.account(exchange.account)
        if isinstance(data.get("currency"), str):
            account.currency = data["currency"]
        if balance is None:
            return []
        found: list[Violation] = []
        if balance < 0:
            found.append(finding("negative_balance", "money", f"balance {balance} < 0", exchange))
        previous, account.last_balance = account.last_balance, (balance, self.seq)
        if account.opening is None:
            if not account.orders:
                account.opening, account.opening_written = balance, True
            return found
        if previous is None or previous[0] != balance or account.last_spend > previous[1]:
            return found
        records = list(account.orders.values())
        if any(r.seen_at < previous[1] or r.reported is None for r in records):
            return found
        least = sum((r.bounds[0] for r in records if r.bounds), Decimal(0))
        most = sum((r.bounds[1] for r in records if r.bounds), Decimal(0))
        expected = account.opening + account.top_ups
        # This balance, and the opening one when it was read, may each be off by half a unit;
        # the charges' own rounding is in their bounds.
        slack = (1 + account.opening_written) * self.half_unit
        if balance + least - expected > slack or expected - (balance + most) > slack:
            charges = f"{least}" if least == most else f"{least} to {most}"
            explained = format((slack + most - least).normalize(), "f")
            within = (f" (rounding to {self.money_places} decimals explains at most ± "
                      f"{explained})" if self.half_unit else "")
            found.append(finding(
                "money_conservation", "money",
                f"balance {balance} + reported charges {charges} ≠ opening {account.opening} "
                f"+ top-ups {account.top_ups} = {expected}{within}", exchange))
        return found
