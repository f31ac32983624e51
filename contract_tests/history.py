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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from smmkit.contract_tests.catalogue import (
    KitService,
    by_id,
    parse_catalogue,
    parse_decimal,
    parse_int,
)
from smmkit.contract_tests.exchange import NO_JSON, Exchange
from smmkit.contract_tests.violation import Violation, finding

FINAL = frozenset({"Completed", "Partial", "Canceled"})
RANK = {"Pending": 0, "Processing": 1, "In progress": 2, "Completed": 3, "Partial": 3,
        "Canceled": 3}
SPENDING = frozenset({"add", "cancel", "refill"})


@dataclass
class OrderRecord:
    order: str
    account: str
    service: KitService | None
    quantity: int | None
    charge: Decimal | None  # what the add should have cost
    status: str | None = None
    reported: Decimal | None = None  # latest charge reported by `status`
    seen_at: int = -1  # sequence number of the latest status observation


@dataclass
class Account:
    opening: Decimal | None = None
    top_ups: Decimal = Decimal("0")
    currency: str | None = None
    last_balance: tuple[Decimal, int] | None = None
    last_spend: int = -1
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    refills: set[str] = field(default_factory=set)


class History:
    """Feed exchanges in order with `observe`; each call returns the findings it adds."""

    def __init__(self, *, dialect: str = "perfectpanel",
                 catalogue: Iterable[KitService] | None = None) -> None:
        self.dialect = dialect
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
        self.account(account).opening = Decimal(str(balance))

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
        from smmkit.contract_tests.checks import classify_error_text

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
        from smmkit.contract_tests.checks import accepted_texts

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
        if charge is not None and record.charge is not None:
            if status in ("Partial", "Canceled"):
                if not Decimal(0) <= charge <= record.charge:
                    found.append(finding("charge", "money",
                                         f"order {ident} ({status}) reports charge {charge}, "
                                         f"outside [0, {record.charge}]", exchange))
            elif charge != record.charge:
                found.append(finding("charge", "money",
                                     f"order {ident} reports charge {charge}, expected "
                                     f"{record.charge} (rate × quantity / 1000, half-up)",
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
        record.reported = charge
        record.seen_at = self.seq
        return found

    def _transition(self, exchange: Exchange, record: OrderRecord, status: Any) -> list[Violation]:
        before = record.status
        if before is None or not isinstance(status, str) or status == before:
            return []
        if before in FINAL:
            return [finding("final_status", "semantics",
                            f"order {record.order} left final status {before!r} for {status!r}",
                            exchange)]
        if RANK.get(status, 99) < RANK.get(before, -1):
            return [finding("lifecycle_order", "semantics",
                            f"order {record.order} went back from {before!r} to {status!r}",
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
                account.opening = balance
            return found
        if previous is None or previous[0] != balance or account.last_spend > previous[1]:
            return found
        records = list(account.orders.values())
        if any(r.seen_at < previous[1] or r.reported is None for r in records):
            return found
        charged = sum((r.reported for r in records if r.reported is not None), Decimal(0))
        expected = account.opening + account.top_ups
        if balance + charged != expected:
            found.append(finding(
                "money_conservation", "money",
                f"balance {balance} + reported charges {charged} = {balance + charged}, but "
                f"opening {account.opening} + top-ups {account.top_ups} = {expected}", exchange))
        return found
