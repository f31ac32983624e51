"""The panel core: accounts, catalogue, orders, refills, cancels and money.

Plain Python over a `Store`: no Flask, no request objects, no globals — the HTTP layer parses
parameters, calls one method here and shapes the result. Every state change happens in one
SQLite write transaction, so a request either changes everything it should or nothing.
Before every action the panel *settles*: orders whose final time has passed on the panel clock
get their final status and refund, so balances and reported charges always agree
(`balance + Σ reported charges = opening balance + top-ups`).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal

from smmkit.mock_server.core import lifecycle as lc
from smmkit.mock_server.core.catalog import Service, parse_add, parse_int, service_from_json
from smmkit.mock_server.core.clock import ClockState
from smmkit.mock_server.core.errors import (
    ActiveOrder,
    CancelUnavailable,
    IncorrectOrder,
    IncorrectRequest,
    IncorrectService,
    InvalidKey,
    NotEnoughFunds,
    PanelError,
    RefillDisabled,
    RefillNotFound,
    RefillUnavailable,
)
from smmkit.mock_server.core.money import ZERO, charge_for, parse_money, refund_for, round_money
from smmkit.mock_server.storage.sqlite import Store

FIRST_ORDER_ID = 23501
FIRST_REFILL_ID = 1
MAX_ID = 2**62  # larger ids cannot exist; answering "unknown" keeps them away from SQLite
# One query per request: the panel's now (same arithmetic as ClockState.now), whether any
# order is due for settling by then, and whether any fault rule is armed.
_PULSE = ("SELECT n, EXISTS(SELECT 1 FROM orders WHERE due_at <= n), EXISTS(SELECT 1 FROM faults) "
          "FROM (SELECT CASE WHEN frozen THEN anchor_panel "
          "ELSE anchor_panel + (? - anchor_wall) * speed END AS n FROM state)")
_PLAN_COLUMNS = ("total, per_run, runs, interval, created_at, start_at, unit_seconds, outcome, "
                 "delivered_final, start_count, cancel_at")


@dataclass(frozen=True)
class Account:
    id: int
    key: str
    balance: Decimal
    currency: str
    enabled: bool = True


@dataclass(frozen=True)
class AccountSpec:
    """An account to create: what `--accounts FILE` holds."""

    key: str
    balance: Decimal
    currency: str = "USD"


@dataclass(frozen=True)
class Moment:
    """One instant of the panel, as a request sees it."""

    now: float
    due: bool  # some order's final time has passed and its refund is not yet booked
    faults: bool  # some fault rule is armed


@dataclass(frozen=True, slots=True)
class OrderView:
    """What `status` reports for one order."""

    order: int
    charge: Decimal  # the charge kept after refunds
    start_count: int
    status: str
    remains: int
    currency: str


def _plan(row: sqlite3.Row | tuple) -> lc.Plan:
    return lc.Plan(*row[:11])


def _booker(ref: weakref.ReferenceType[Panel], event: threading.Event) -> None:
    """Settle when reads ask for it; holds the panel weakly and ends when it is gone."""
    while True:
        event.wait(timeout=1.0)
        panel = ref()
        if panel is None:
            return
        if event.is_set():
            event.clear()
            try:
                panel.settle()
            except Exception as exc:  # noqa: BLE001 - this thread must outlive any failure
                # settle's transaction rolled back; the next read asks again. Never die here:
                # a dead booker leaves due refunds unbooked for the life of the process.
                print(f"smmkit: booking due orders failed: {type(exc).__name__}: {exc}",
                      file=sys.stderr)
        del panel


def _due_refund(plan: lc.Plan, charge: Decimal) -> Decimal:
    """The refund an order's final state implies (Partial: the undelivered part; Canceled: all)."""
    final = lc.final_state(plan)
    if final.status in (lc.PARTIAL, lc.CANCELED):
        return refund_for(charge, final.remains, plan.total)
    return ZERO


class Panel:
    """One fake panel over one store. Thread-safe; share it between threads freely."""

    def __init__(
        self,
        store: Store,
        *,
        seed: int = 1,
        accounts: Iterable[AccountSpec] = (),
        catalog: Iterable[Service] = (),
        clock: ClockState | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.seed = seed
        self.wall = wall
        self._initial_accounts = tuple(accounts)
        self._initial_catalog = tuple(catalog)
        self._initial_clock = clock or ClockState(wall(), wall())
        self._catalog_cache: tuple[int, dict[int, Service]] = (-1, {})
        self._pinned = threading.local()  # the Moment of the request this thread is serving
        self._booking = threading.Event()  # set by reads that saw due orders: book them soon
        self._booker_pid = 0
        if self.store.connection().execute("SELECT 1 FROM state").fetchone() is None:
            self._populate()

    # ------------------------------------------------------------ set-up and reset

    def _populate(self) -> None:
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM state").fetchone() is not None:
                return  # another worker got there first
            c = self._initial_clock
            db.execute("INSERT INTO state VALUES (1, ?, ?, ?, ?, 0)",
                       (c.anchor_wall, c.anchor_panel, c.speed, int(c.frozen)))
            for spec in self._initial_accounts:
                self._insert_account(db, spec)
            for position, service in enumerate(self._initial_catalog):
                db.execute("INSERT INTO services VALUES (?, ?, ?)",
                           (service.service, position, json.dumps(service.to_json())))

    def reset(self) -> None:
        """Back to the initial accounts, catalogue and clock, with no orders or refills."""
        with self.store.transaction() as db:
            for table in ("state", "accounts", "services", "orders", "refills", "ledger"):
                db.execute(f"DELETE FROM {table}")
        self._populate()
        self.catalog_changed()

    def catalog_changed(self) -> None:
        """Tell every worker its cached catalogue is stale (a random version cannot repeat)."""
        with self.store.transaction() as db:
            db.execute("UPDATE state SET catalog_version = ?", (secrets.randbits(62),))

    @staticmethod
    def _insert_account(db: sqlite3.Connection, spec: AccountSpec) -> int:
        balance = str(spec.balance)
        try:
            cur = db.execute(
                "INSERT INTO accounts (key, balance, currency, opening) VALUES (?, ?, ?, ?)",
                (spec.key, balance, spec.currency, balance))
        except sqlite3.IntegrityError:
            raise ValueError(f"an account with key {spec.key!r} already exists") from None
        return int(cur.lastrowid or 0)

    # ------------------------------------------------------------ clock

    def clock_state(self) -> ClockState:
        row = self.store.connection().execute(
            "SELECT anchor_wall, anchor_panel, speed, frozen FROM state").fetchone()
        return ClockState(row[0], row[1], row[2], bool(row[3]))

    def now(self) -> float:
        return self.clock_state().now(self.wall())

    def moment(self) -> Moment:
        """The panel's now, with the due/faults probes; pinned while inside `request()`."""
        pinned = getattr(self._pinned, "moment", None)
        if pinned is not None:
            return pinned
        now, due, faults = self.store.connection().execute(_PULSE, (self.wall(),)).fetchone()
        return Moment(now, bool(due), bool(faults))

    @contextmanager
    def request(self) -> Iterator[Moment]:
        """Serve one request at one instant: the clock is read once, whatever the request does."""
        self._pinned.moment = None
        moment = self._pinned.moment = self.moment()
        try:
            yield moment
        finally:
            self._pinned.moment = None

    def change_clock(self, change: Callable[[ClockState, float], ClockState]) -> ClockState:
        """Apply `change(state, wall)` to the shared clock, then settle what became due."""
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT anchor_wall, anchor_panel, speed, frozen FROM state").fetchone()
            new = change(ClockState(row[0], row[1], row[2], bool(row[3])), self.wall())
            db.execute("UPDATE state SET anchor_wall=?, anchor_panel=?, speed=?, frozen=?",
                       (new.anchor_wall, new.anchor_panel, new.speed, int(new.frozen)))
        self.settle(new.now(self.wall()))
        return new

    def advance(self, seconds: float) -> float:
        """Move panel time forward, settling everything due in between; the new time."""
        return self.change_clock(lambda c, wall: c.advanced(wall, seconds)).now(self.wall())

    # ------------------------------------------------------------ accounts

    def authenticate(self, key: object) -> Account:
        if not isinstance(key, str) or not key or len(key) > 256:
            raise InvalidKey("no key")
        row = self.store.connection().execute(
            "SELECT id, key, balance, currency, enabled FROM accounts WHERE key = ?", (key,)
        ).fetchone()
        if row is None or not row[4]:
            raise InvalidKey(f"unknown or disabled key {key[:8]!r}…")
        return Account(row[0], row[1], Decimal(row[2]), row[3], bool(row[4]))

    def _account(self, who: Account | str) -> Account:
        return who if isinstance(who, Account) else self.authenticate(who)

    def create_account(self, key: str, balance: Decimal | str = "0", currency: str = "USD") -> None:
        amount = parse_money(balance)
        if amount < 0:
            raise ValueError(f"an opening balance cannot be negative: {balance!r}")
        with self.store.transaction() as db:
            self._insert_account(db, AccountSpec(key, amount, currency))

    def top_up(self, key: str, amount: Decimal | str) -> Decimal:
        """Add funds (a negative amount withdraws, never below zero); the new balance."""
        value = parse_money(amount)
        with self.store.transaction() as db:
            row = db.execute("SELECT id, balance, topups FROM accounts WHERE key = ?",
                             (key,)).fetchone()
            if row is None:
                raise ValueError(f"unknown account {key!r}")
            balance = Decimal(row[1]) + value
            if balance < 0:
                raise ValueError(f"top-up of {value} would make the balance negative")
            db.execute("UPDATE accounts SET balance = ?, topups = ? WHERE id = ?",
                       (str(balance), str(Decimal(row[2]) + value), row[0]))
            db.execute("INSERT INTO ledger (account_id, at, kind, amount) VALUES (?, ?, ?, ?)",
                       (row[0], self.now(), "topup", str(value)))
        return balance

    def balance(self, who: Account | str) -> tuple[Decimal, str]:
        """The balance with every refund already due, read without taking the write lock."""
        account = self._account(who)
        moment = self.moment()
        query = "SELECT balance, currency FROM accounts WHERE id = ?"
        if not moment.due:
            row = self.store.connection().execute(query, (account.id,)).fetchone()
            return Decimal(row[0]), row[1]
        self._book_soon()
        with self.store.snapshot() as db:  # balance and unbooked refunds from one snapshot
            row = db.execute(query, (account.id,)).fetchone()
            pending = sum((_due_refund(_plan(r), Decimal(r[11])) for r in db.execute(
                f"SELECT {_PLAN_COLUMNS}, charge FROM orders WHERE account_id = ? "
                "AND due_at <= ?", (account.id, moment.now))), ZERO)
        return Decimal(row[0]) + pending, row[1]

    # ------------------------------------------------------------ catalogue

    def catalog(self) -> dict[int, Service]:
        """Every service by id (enabled or not), cached per worker until the catalogue changes."""
        db = self.store.connection()
        version = db.execute("SELECT catalog_version FROM state").fetchone()[0]
        if self._catalog_cache[0] != version:
            rows = db.execute("SELECT data FROM services ORDER BY position, id").fetchall()
            services = {s.service: s for s in (service_from_json(json.loads(r[0])) for r in rows)}
            self._catalog_cache = (version, services)
        return self._catalog_cache[1]

    def services(self, who: Account | str) -> list[Service]:
        self._account(who)
        return [s for s in self.catalog().values() if s.enabled]

    def _service(self, raw: object) -> Service:
        try:
            service_id = parse_int(raw, "service")
        except IncorrectRequest:
            raise IncorrectService(f"service id {str(raw)[:40]!r} is not a number") from None
        service = self.catalog().get(service_id)
        if service is None or not service.enabled:
            raise IncorrectService(f"unknown service {service_id!r}")
        return service

    # ------------------------------------------------------------ orders

    def add_order(self, who: Account | str, params: Mapping[str, str]) -> int:
        """Validate, price and place an order, debiting its charge atomically; its id."""
        account = self._account(who)
        moment = self.moment()
        now = moment.now
        service = self._service(params.get("service", ""))
        request = parse_add(service, params)
        total = request.total
        charge = (round_money(service.rate) if service.priced_per_package
                  else charge_for(service.rate, total))
        with self.store.transaction() as db:
            if moment.due:
                self._settle_in(db, now)
            active = db.execute(
                "SELECT 1 FROM orders WHERE account_id = ? AND service_id = ? AND link = ? "
                "AND due_at IS NOT NULL LIMIT 1", (account.id, service.service, request.link)
            ).fetchone()
            if active:
                raise ActiveOrder(f"order for {request.link!r} on service {service.service} active")
            balance = Decimal(db.execute("SELECT balance FROM accounts WHERE id = ?",
                                         (account.id,)).fetchone()[0])
            if balance < charge:
                raise NotEnoughFunds(f"balance {balance} < charge {charge}")
            last = db.execute("SELECT MAX(id) FROM orders").fetchone()[0]
            order_id = FIRST_ORDER_ID if last is None else last + 1
            plan = lc.plan_order(
                seed=self.seed, order_id=order_id, total=total, per_run=request.quantity,
                runs=request.runs, interval_minutes=request.interval, created_at=now,
                start_delay=service.start_delay, units_per_minute=service.speed)
            db.execute(
                f"INSERT INTO orders (id, account_id, service_id, link, charge, {_PLAN_COLUMNS}, "
                "due_at, params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (order_id, account.id, service.service, request.link, str(charge),
                 *self._plan_values(plan), plan.final_at,
                 json.dumps({"quantity": request.quantity, "runs": request.runs,
                             "interval": request.interval, **request.extras})))
            db.execute("UPDATE accounts SET balance = ? WHERE id = ?",
                       (str(balance - charge), account.id))
            db.execute("INSERT INTO ledger (account_id, at, kind, amount, order_id) "
                       "VALUES (?, ?, 'charge', ?, ?)", (account.id, now, str(-charge), order_id))
        return order_id

    @staticmethod
    def _plan_values(plan: lc.Plan) -> tuple:
        return (plan.total, plan.per_run, plan.runs, plan.interval, plan.created_at,
                plan.start_at, plan.unit_seconds, plan.outcome, plan.delivered_final,
                plan.start_count, plan.cancel_at)

    def order_status(self, who: Account | str, order_id: int) -> OrderView:
        views = self.order_statuses(who, [order_id])
        view = views[order_id]
        if isinstance(view, PanelError):
            raise view
        return view

    def order_statuses(
        self, who: Account | str, order_ids: Iterable[int]
    ) -> dict[int, OrderView | PanelError]:
        """Each requested id → its view, or IncorrectOrder when this key has no such order."""
        account = self._account(who)
        now = self.moment().now
        ids = list(dict.fromkeys(order_ids))
        rows = self._orders(account, ids,
                            f"{_PLAN_COLUMNS}, id, charge, refunded, final_status, "
                            "final_remains, final_start_count, due_at")
        result: dict[int, OrderView | PanelError] = {}
        for order_id in ids:
            row = rows.get(order_id)
            if row is None:
                result[order_id] = IncorrectOrder(f"no order {order_id} for this key")
                continue
            charge = Decimal(row[12])
            if row[14] is not None:
                view, kept = lc.View(row[14], row[15], row[16]), charge - Decimal(row[13])
            elif row[17] <= now:  # final, refund not booked yet: report what booking will do
                self._book_soon()
                plan = _plan(row)
                view, kept = lc.final_state(plan), charge - _due_refund(plan, charge)
            else:
                view, kept = lc.view_at(_plan(row), now), charge
            result[order_id] = OrderView(order_id, kept, view.start_count, view.status,
                                         view.remains, account.currency)
        return result

    def _orders(self, account: Account, ids: list[int], columns: str) -> dict[int, tuple]:
        wanted = [i for i in ids if 0 < i < MAX_ID]
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self.store.connection().execute(
            f"SELECT {columns} FROM orders WHERE id IN ({marks}) AND account_id = ?",
            (*wanted, account.id)).fetchall()
        id_at = columns.split(", ").index("id") if not columns.startswith("id") else 0
        return {row[id_at]: row for row in rows}

    def cancel(self, who: Account | str, order_ids: Iterable[int]) -> dict[int, PanelError | None]:
        """Accept cancel requests (they take effect `CANCEL_DELAY` later); None = accepted."""
        account = self._account(who)
        moment = self.moment()
        now = moment.now
        ids = list(dict.fromkeys(order_ids))
        catalog = self.catalog()
        result: dict[int, PanelError | None] = {}
        with self.store.transaction() as db:
            if moment.due:
                self._settle_in(db, now)
            rows = self._orders(account, ids, f"{_PLAN_COLUMNS}, id, service_id, due_at")
            for order_id in ids:
                row = rows.get(order_id)
                if row is None:
                    result[order_id] = IncorrectOrder(f"no order {order_id} for this key")
                    continue
                service = catalog.get(row[12])
                plan = _plan(row)
                if service is None or not service.cancel or row[13] is None \
                        or plan.cancel_at is not None:
                    result[order_id] = CancelUnavailable(f"order {order_id} cannot be canceled")
                    continue
                cancelled = replace(plan, cancel_at=now + lc.CANCEL_DELAY)
                db.execute("UPDATE orders SET cancel_at = ?, due_at = ? WHERE id = ?",
                           (cancelled.cancel_at, cancelled.final_at, order_id))
                result[order_id] = None
        return result

    # ------------------------------------------------------------ settling

    def settle(self, now: float | None = None) -> float:
        """Book every order due by `now` (default: the panel's now): final status and refund.

        Reads never need this (they report what booking will do); writes book inside their
        own transaction; the control plane books after moving the clock."""
        if now is None:
            moment = self.moment()
            now, due = moment.now, moment.due
        else:
            due = self.store.connection().execute(
                "SELECT EXISTS(SELECT 1 FROM orders WHERE due_at <= ?)", (now,)).fetchone()[0]
        if due:
            with self.store.transaction() as db:
                self._settle_in(db, now)
        return now

    def _book_soon(self) -> None:
        """Ask this process's booker thread to settle: reads stay free of the write lock, and
        the unbooked orders they must account for stay few."""
        if self._booker_pid != os.getpid():  # first use in this (possibly forked) process
            self._booker_pid = os.getpid()
            self._booking = threading.Event()
            threading.Thread(target=_booker, args=(weakref.ref(self), self._booking),
                             name="smmkit-booker", daemon=True).start()
        self._booking.set()

    def _settle_in(self, db: sqlite3.Connection, now: float) -> None:
        rows = db.execute(
            f"SELECT {_PLAN_COLUMNS}, id, account_id, charge FROM orders WHERE due_at <= ? "
            "ORDER BY due_at, id", (now,)).fetchall()
        for row in rows:
            self._finalise(db, row[11], row[12], Decimal(row[13]), _plan(row))

    @staticmethod
    def _finalise(db: sqlite3.Connection, order_id: int, account_id: int, charge: Decimal,
                  plan: lc.Plan, final: lc.View | None = None) -> None:
        final = final or lc.final_state(plan)
        refund = ZERO
        if final.status in (lc.PARTIAL, lc.CANCELED):
            refund = refund_for(charge, final.remains, plan.total)
        db.execute("UPDATE orders SET final_status = ?, final_remains = ?, final_start_count = ?, "
                   "final_at = ?, refunded = ?, due_at = NULL WHERE id = ?",
                   (final.status, final.remains, final.start_count, plan.final_at, str(refund),
                    order_id))
        if refund:
            balance = Decimal(db.execute("SELECT balance FROM accounts WHERE id = ?",
                                         (account_id,)).fetchone()[0])
            db.execute("UPDATE accounts SET balance = ? WHERE id = ?",
                       (str(balance + refund), account_id))
            db.execute("INSERT INTO ledger (account_id, at, kind, amount, order_id) "
                       "VALUES (?, ?, 'refund', ?, ?)", (account_id, plan.final_at, str(refund),
                                                        order_id))

    # ------------------------------------------------------------ refills

    def refill(self, who: Account | str, order_ids: Iterable[int]) -> dict[int, int | PanelError]:
        """Request refills; each order id → the new refill id, or why not."""
        account = self._account(who)
        moment = self.moment()
        now = moment.now
        ids = list(dict.fromkeys(order_ids))
        catalog = self.catalog()
        result: dict[int, int | PanelError] = {}
        with self.store.transaction() as db:
            if moment.due:
                self._settle_in(db, now)
            rows = self._orders(account, ids, "id, service_id, final_status, final_at")
            for order_id in ids:
                row = rows.get(order_id)
                if row is None:
                    result[order_id] = IncorrectOrder(f"no order {order_id} for this key")
                    continue
                service = catalog.get(row[1])
                if service is None or not service.refill:
                    result[order_id] = RefillDisabled(f"service of order {order_id} has no refill")
                    continue
                if (row[2] not in (lc.COMPLETED, lc.PARTIAL)
                        or now > row[3] + service.refill_days * 86400
                        or self._refill_in_flight(db, order_id, now)):
                    result[order_id] = RefillUnavailable(f"order {order_id} cannot be refilled now")
                    continue
                last = db.execute("SELECT MAX(id) FROM refills").fetchone()[0]
                refill_id = FIRST_REFILL_ID if last is None else last + 1
                plan = lc.plan_refill(seed=self.seed, refill_id=refill_id, created_at=now)
                db.execute("INSERT INTO refills (id, order_id, account_id, created_at, rejected) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (refill_id, order_id, account.id, now, int(plan.rejected)))
                result[order_id] = refill_id
        return result

    def _refill_in_flight(self, db: sqlite3.Connection, order_id: int, now: float) -> bool:
        rows = db.execute("SELECT created_at, rejected, forced_status FROM refills "
                          "WHERE order_id = ?", (order_id,)).fetchall()
        return any(self._refill_status(row, now) not in lc.REFILL_FINAL for row in rows)

    @staticmethod
    def _refill_status(row: tuple, now: float) -> str:
        if row[2]:
            return str(row[2])
        return lc.refill_status_at(lc.RefillPlan(row[0], bool(row[1])), now)

    def refill_statuses(
        self, who: Account | str, refill_ids: Iterable[int]
    ) -> dict[int, str | PanelError]:
        account = self._account(who)
        now = self.now()
        ids = [i for i in dict.fromkeys(refill_ids)]
        wanted = [i for i in ids if 0 < i < MAX_ID]
        rows: dict[int, tuple] = {}
        if wanted:
            marks = ",".join("?" * len(wanted))
            for row in self.store.connection().execute(
                    f"SELECT id, created_at, rejected, forced_status FROM refills "
                    f"WHERE id IN ({marks}) AND account_id = ?", (*wanted, account.id)):
                rows[row[0]] = row[1:]
        return {i: (self._refill_status(rows[i], now) if i in rows
                    else RefillNotFound(f"no refill {i} for this key")) for i in ids}

    # ------------------------------------------------------------ audit

    def audit(self, key: str) -> dict[str, Decimal]:
        """The conservation law's terms for one account (settled first)."""
        self.settle()
        db = self.store.connection()
        row = db.execute("SELECT id, balance, opening, topups FROM accounts WHERE key = ?",
                         (key,)).fetchone()
        if row is None:
            raise ValueError(f"unknown account {key!r}")
        kept = sum((Decimal(c) - Decimal(r) for c, r in db.execute(
            "SELECT charge, refunded FROM orders WHERE account_id = ?", (row[0],))), ZERO)
        return {"balance": Decimal(row[1]), "charges": kept, "opening": Decimal(row[2]),
                "topups": Decimal(row[3])}
