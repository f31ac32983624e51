"""The panel core: accounts, catalogue, orders, refills, cancels and money.

Plain Python over a `Store`: no Flask, no request objects, no globals, no SQL — the HTTP layer
parses parameters, calls one method here and shapes the result; the store's named operations
(`store.ops`, storage/tables.py) read and write the tables. Every state change happens in one
write transaction, so a request either changes everything it should or nothing.
Before every action the panel *settles*: orders whose final time has passed on the panel clock
get their final status and refund, so balances and reported charges always agree
(`balance + Σ reported charges = opening balance + top-ups`).

Money moves through one door, `ops.move_money` (balance and ledger row together); an order's
refund follows one rule, `money.refund_owed`, booked by `book_final` here.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, NamedTuple

from smmkit.mock_server.core import lifecycle as lc
from smmkit.mock_server.core.catalog import Service, parse_add, parse_int, service_from_json
from smmkit.mock_server.core.clock import ClockState, check_clock
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
from smmkit.mock_server.core.money import (
    ZERO,
    charge_for,
    parse_amount,
    parse_currency,
    refund_owed,
    round_money,
)
from smmkit.mock_server.storage.read_cache import reads_for
from smmkit.mock_server.storage.savepoints import SavepointLost, savepoint
from smmkit.mock_server.storage.schema import SEQUENCE_STARTS
from smmkit.mock_server.storage.sqlite import Store
from smmkit.mock_server.storage.tables import BalanceRefused, NoSuchAccount

FIRST_ORDER_ID = SEQUENCE_STARTS["orders"]
FIRST_REFILL_ID = SEQUENCE_STARTS["refills"]
MAX_ID = 2**62  # larger ids cannot exist; answering "unknown" keeps them away from SQLite


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


class Moment(NamedTuple):
    """One instant of the panel, as a request sees it (a named tuple: built on every request,
    where a frozen dataclass's __init__ cost more than the reads it describes)."""

    now: float
    due: bool  # some order's final time has passed and its refund is not yet booked
    faults: bool  # some fault rule is armed


class OrderView(NamedTuple):
    """What `status` reports for one order (a named tuple: the answer's cache looks each one
    up, and a tuple's hash and equality are C, a dataclass's Python)."""

    order: int
    charge: Decimal  # the charge kept after refunds
    start_count: int
    status: str
    remains: int
    currency: str


def plan_values(plan: lc.Plan) -> tuple[Any, ...]:
    """A plan's values in the order of the store's plan columns."""
    return (plan.total, plan.per_run, plan.runs, plan.interval, plan.created_at,
            plan.start_at, plan.unit_seconds, plan.outcome, plan.delivered_final,
            plan.start_count, plan.cancel_at)


def due_refund(row: Any) -> Decimal:
    """The refund an unbooked order's final state implies (its row: charge and plan)."""
    final = lc.final_state(lc.plan_of(row))
    return refund_owed(Decimal(row.charge), final.status, final.remains, row.total)


def book_final(ops: Any, db: Any, row: Any, final: lc.View, final_at: float,
               *, at: float) -> Decimal:
    """Book an order's final state and move the refund it implies (or the difference from a
    refund booked before); the refund. Inside the caller's transaction. Raises
    `BalanceRefused` when taking back an earlier refund would make the balance negative."""
    charge, refunded = Decimal(row.charge), Decimal(row.refunded)
    refund = refund_owed(charge, final.status, final.remains, row.total)
    ops.book_final(db, row.id, status=final.status, remains=final.remains,
                   start_count=final.start_count, final_at=final_at, refunded=refund)
    if refund != refunded:
        ops.move_money(db, row.account_id, refund - refunded, kind="refund", at=at,
                       order_id=row.id)
    return refund


def refill_status(row: Any, now: float) -> str:
    """A refill's status at `now` (a forced status wins over its plan)."""
    if row.forced_status:
        return str(row.forced_status)
    return lc.refill_status_at(lc.RefillPlan(row.created_at, bool(row.rejected)), now)


MAX_KNOWN = 200_000  # worked-out orders kept per thread


def _known(row: Any, currency: str) -> tuple[Any, ...]:
    """What `status` needs of a row that does not change while the row does not."""
    charge = Decimal(row.charge)
    if row.final_status is not None:
        final = OrderView(row.id, charge - Decimal(row.refunded), row.final_start_count,
                          row.final_status, row.final_remains, currency)
        return (row, None, charge, final, None)
    plan = lc.plan_of(row)
    return (row, plan, charge, None, plan.final_at)


def _booker(ref: weakref.ReferenceType[Panel], event: threading.Event) -> None:
    """Settle when reads ask for it; holds the panel weakly and ends when it is gone."""
    while True:
        event.wait(timeout=1.0)
        panel = ref()
        if panel is None or panel.store.closed:
            return
        if event.is_set():
            event.clear()
            try:
                panel.settle()
            except Exception as exc:  # noqa: BLE001 - this thread must outlive any failure
                if panel.store.closed:  # closed (and its files removed) while booking: done
                    return
                # settle's transaction rolled back; the next read asks again. Never die here:
                # a dead booker leaves due refunds unbooked for the life of the process.
                print(f"smmkit: booking due orders failed: {type(exc).__name__}: {exc}",
                      file=sys.stderr)
        del panel


class _Serving:
    """`Panel.request()`: pins the request's Moment on this thread while it is served."""

    __slots__ = ("panel",)

    def __init__(self, panel: Panel) -> None:
        self.panel = panel

    def __enter__(self) -> Moment:
        panel = self.panel
        panel.store.ensure_clean()
        pinned = panel._pinned
        pinned.moment = None
        pinned.timeless = True
        pinned.booked = False
        panel.reads.begin()
        try:
            moment = pinned.moment = panel.moment()
        except BaseException:
            self.__exit__()
            raise
        return moment

    def __exit__(self, *exc: object) -> None:
        panel = self.panel
        pinned = panel._pinned
        # Something was due and this request booked nothing (a write books what is due in its
        # own transaction): have it booked, whatever the request read. Kept answers wait until
        # nothing is due, and an order that fell due while only other orders were polled stayed
        # unbooked for minutes, every answer worked out anew meanwhile.
        moment = pinned.moment
        if moment is not None and moment.due and not pinned.booked:
            panel._book_soon()
        pinned.moment = None
        panel.reads.end()


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
        self.ops = store.ops  # the store's named operations: the only way to its tables
        self.reads = reads_for(store)  # the hot reads, from memory while nothing changed
        self.seed = seed
        self.wall = wall
        self._initial_accounts = tuple(accounts)
        self._initial_catalog = tuple(catalog)
        self._initial_clock = clock or ClockState(wall(), wall())
        self._catalog_cache: tuple[int | None, dict[int, Service]] = (-1, {})
        self._pinned = threading.local()  # the Moment of the request this thread is serving
        self._booking = threading.Event()  # set by reads that saw due orders: book them soon
        self._booker_pid = 0
        for spec in self._initial_accounts:  # refused before anything is written
            self._check_spec(spec)
        if not self.ops.has_state(self.store.connection()):
            self._populate()

    # ------------------------------------------------------------ set-up and reset

    def _populate(self) -> None:
        with self.store.transaction() as db:
            if not self.ops.has_state(db):  # another worker may have got there first
                self._fill(db)

    def _fill(self, db: Any) -> None:
        c = self._initial_clock
        self.ops.init_state(db, c.anchor_wall, c.anchor_panel, c.speed, c.frozen,
                            secrets.randbits(62))
        for spec in self._initial_accounts:
            self._insert_account(db, spec)
        self.ops.replace_services(db, [(s.service, s.to_json()) for s in self._initial_catalog])

    def reset(self) -> None:
        """Back to the initial accounts, catalogue and clock, with no orders or refills — in
        one transaction, so a request racing the reset sees the panel before or after it.
        Order and refill ids are not reused."""
        with self.store.transaction() as db:
            self.ops.reset_all(db)
            self._fill(db)  # a new catalogue version: every worker drops its cached copy

    def catalog_changed(self, db: Any = None) -> None:
        """Tell every worker its cached catalogue is stale (a random version cannot repeat)."""
        if db is not None:
            self.ops.set_catalog_version(db, secrets.randbits(62))
            return
        with self.store.transaction() as tx:
            self.ops.set_catalog_version(tx, secrets.randbits(62))

    @staticmethod
    def _check_spec(spec: AccountSpec) -> None:
        try:
            parse_currency(spec.currency)
            parse_amount(spec.balance, "balance")
        except ValueError as exc:
            raise ValueError(f"account {spec.key!r}: {exc}") from None

    def _insert_account(self, db: Any, spec: AccountSpec) -> int:
        self._check_spec(spec)
        account_id = self.ops.insert_account(db, spec.key, spec.balance, spec.currency)
        if account_id is None:
            raise ValueError(f"an account with key {spec.key!r} already exists")
        return account_id

    # ------------------------------------------------------------ clock

    def clock_state(self) -> ClockState:
        return self._clock_from(self.ops.clock_row(self.store.connection()))

    def _clock_from(self, row: Any | None) -> ClockState:
        if row is None:  # only a store emptied from outside: fill it again
            self._populate()
            row = self.ops.clock_row(self.store.connection())
        assert row is not None
        return ClockState(row.anchor_wall, row.anchor_panel, row.speed,
                          bool(row.frozen))

    def now(self) -> float:
        return self.clock_state().now(self.wall())

    def moment(self) -> Moment:
        """The panel's now, with the due/faults probes; pinned while inside `request()`."""
        pinned = getattr(self._pinned, "moment", None)
        if pinned is not None:
            return pinned
        row = self.reads.pulse(self.wall())
        if row is None:
            self._populate()
            row = self.ops.pulse(self.store.connection(), self.wall())
        return Moment(row.now, bool(row.due), bool(row.faults))

    def request(self) -> _Serving:
        """Serve one request at one instant (`with panel.request() as moment:`): the clock is
        read once, whatever the request does. A transaction an earlier failure left open on
        this thread is ended first."""
        return _Serving(self)

    def timeless(self) -> bool:
        """Whether what this request read so far holds at any later instant until the store
        changes: no order still moving, no refund due but unbooked (a final, booked order;
        a balance with nothing due; an unknown key). Reset by every `request()`."""
        return bool(getattr(self._pinned, "timeless", False))

    def _on_the_clock(self) -> None:
        """This request's answer depends on the instant it was read."""
        self._pinned.timeless = False

    def change_clock(self, change: Callable[[ClockState, float], ClockState]) -> ClockState:
        """Apply `change(state, wall)` to the shared clock, then settle what became due. A
        change that would put the clock out of range (`check_clock`) raises ValueError and
        changes nothing."""
        with self.store.transaction() as db:
            wall = self.wall()
            new = check_clock(change(self._clock_from(self.ops.clock_row(db)), wall), wall)
            self.ops.write_clock(db, new.anchor_wall, new.anchor_panel, new.speed, new.frozen)
        self.settle(new.now(self.wall()))
        return new

    def advance(self, seconds: float) -> float:
        """Move panel time forward, settling everything due in between; the new time."""
        return self.change_clock(lambda c, wall: c.advanced(wall, seconds)).now(self.wall())

    # ------------------------------------------------------------ accounts

    def authenticate(self, key: object) -> Account:
        if not isinstance(key, str) or not key or len(key) > 256:
            raise InvalidKey("no key")
        row = self.reads.account_by_key(key)
        if row is None or not row.enabled:
            raise InvalidKey("unknown or disabled key")  # never the key: messages get logged
        built = self._built_accounts()
        account = built.get(row.id)
        if account is None or account[0] is not row:  # built again once its row is read again
            if len(built) >= MAX_KNOWN:
                built.clear()
            account = built[row.id] = (row, Account(row.id, row.key, Decimal(row.balance),
                                                    row.currency, bool(row.enabled)))
        return account[1]

    def _built_accounts(self) -> dict[int, tuple[Any, Account]]:
        """This thread's Accounts with the rows they were built from."""
        built: dict[int, tuple[Any, Account]] | None = getattr(self._pinned, "accounts", None)
        if built is None:
            built = self._pinned.accounts = {}
        return built

    def _account(self, who: Account | str) -> Account:
        return who if isinstance(who, Account) else self.authenticate(who)

    def create_account(self, key: str, balance: Decimal | str = "0", currency: str = "USD") -> None:
        amount = parse_amount(balance, "an opening balance")
        with self.store.transaction() as db:
            self._insert_account(db, AccountSpec(key, amount, parse_currency(currency)))

    def top_up(self, key: str, amount: Decimal | str) -> Decimal:
        """Add funds (a negative amount withdraws, never below zero); the new balance."""
        value = parse_amount(amount, "top-up", allow_negative=True)
        with self.store.transaction() as db:
            row = self.ops.account_by_key(db, key)
            if row is None:
                raise ValueError(f"unknown account {key!r}")
            try:
                return self.ops.move_money(db, row.id, value, kind="topup", at=self.now(),
                                           topup=True)
            except BalanceRefused as exc:
                raise ValueError(f"top-up of {value} refused: {exc}") from None

    def balance(self, who: Account | str) -> tuple[Decimal, str]:
        """The balance with every refund already due, read without taking the write lock."""
        account = self._account(who)
        moment = self.moment()
        if not moment.due:  # nothing due: the stored balance holds until something changes
            row = self.reads.balance_of(account.id)
            if row is None:
                raise InvalidKey("account deleted")
            return Decimal(row.balance), row.currency
        self._on_the_clock()
        self._book_soon()
        with self.store.snapshot() as db:  # balance and unbooked refunds from one snapshot
            row = self.ops.balance_of(db, account.id)
            if row is None:
                raise InvalidKey("account deleted")
            pending = sum((due_refund(r) for r in
                           self.ops.due_orders(db, moment.now, account.id)), ZERO)
        return Decimal(row.balance) + pending, row.currency

    # ------------------------------------------------------------ catalogue

    def catalog(self) -> dict[int, Service]:
        """Every service by id (enabled or not), cached per worker until the catalogue changes."""
        version = self.reads.catalog_version()
        if self._catalog_cache[0] != version:
            db = self.store.connection()
            services = {s.service: s for s in map(service_from_json, self.ops.service_data(db))}
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
        place = self.prepare_order(who, params)
        with self.store.transaction() as db:
            return place(db)

    def prepare_order(self, who: Account | str,
                      params: Mapping[str, str]) -> Callable[[Any], int]:
        """Validate and price an order (raising what a bad one gets, before any write); the
        write that places it, debiting its charge, to run inside a write transaction (its
        errors: NotEnoughFunds, ActiveOrder, InvalidKey). `place_orders` runs many at once."""
        account = self._account(who)
        moment = self.moment()
        now = moment.now
        service = self._service(params.get("service", ""))
        request = parse_add(service, params)
        total = request.total
        charge = (round_money(service.rate) if service.priced_per_package
                  else charge_for(service.rate, total))
        ops = self.ops
        if moment.due:  # `place` books what is due: the request need not ask the booker
            self._pinned.booked = True
        order_params = {"quantity": request.quantity, "runs": request.runs,
                        "interval": request.interval, **request.extras}

        def place(db: Any) -> int:
            if moment.due:
                self._settle_in(db, now)
            if ops.active_order_exists(db, account.id, service.service, request.link):
                raise ActiveOrder(f"order for {request.link!r} on service {service.service} active")
            order_id = ops.next_id(db, "orders")
            plan = lc.plan_order(
                seed=self.seed, order_id=order_id, total=total, per_run=request.quantity,
                runs=request.runs, interval_minutes=request.interval, created_at=now,
                start_delay=service.start_delay, units_per_minute=service.speed)
            ops.insert_order(db, order_id=order_id, account_id=account.id,
                             service_id=service.service, link=request.link, charge=charge,
                             plan=plan_values(plan), due_at=plan.final_at, params=order_params)
            try:
                ops.move_money(db, account.id, -charge, kind="charge", at=now, order_id=order_id)
            except BalanceRefused as exc:
                raise NotEnoughFunds(str(exc)) from None
            except NoSuchAccount:  # deleted while this request was under way
                raise InvalidKey("account deleted") from None
            return order_id

        return place

    def place_orders(self, places: Sequence[Callable[[Any], int]]) -> list[int | Exception]:
        """Run prepared orders (`prepare_order`) in one write transaction, each in a savepoint
        of its own: one refused (funds, an active order) leaves the others placed. Each
        order's id, or the exception it raised. One commit for many orders: one wait for the
        write lock, and the pages they share (the account, the ends of the indexes) written
        once. Raises when the transaction as a whole fails: then no order is placed."""
        results: list[int | Exception] = []
        with self.store.transaction() as db:
            for place in places:
                try:
                    with savepoint(db):
                        results.append(place(db))
                except SavepointLost:
                    raise
                except Exception as exc:  # noqa: BLE001 - that order's answer, not ours
                    results.append(exc)
        return results

    def order_status(self, who: Account | str, order_id: int) -> OrderView:
        account = self._account(who)
        now = self.moment().now
        row = self.reads.order_of(account.id, order_id) if 0 < order_id < MAX_ID else None
        if row is None:
            raise IncorrectOrder(f"no order {order_id} for this key")
        return self._view(row, account, now, self._known_orders())

    def order_statuses(
        self, who: Account | str, order_ids: Iterable[int]
    ) -> dict[int, OrderView | PanelError]:
        """Each requested id → its view, or IncorrectOrder when this key has no such order."""
        account = self._account(who)
        now = self.moment().now
        ids = list(dict.fromkeys(order_ids))
        rows = self.reads.orders_of(account.id, [i for i in ids if 0 < i < MAX_ID])
        result: dict[int, OrderView | PanelError] = {}
        known = self._known_orders()
        for order_id in ids:
            row = rows.get(order_id)
            if row is None:
                result[order_id] = IncorrectOrder(f"no order {order_id} for this key")
            else:
                result[order_id] = self._view(row, account, now, known)
        return result

    def _view(self, row: Any, account: Account, now: float,
              known: dict[int, tuple[Any, ...]]) -> OrderView:
        """One order of `account` as `status` tells it at `now` (`row`: as read)."""
        entry = known.get(row.id)
        if entry is not None and entry[0] is row and entry[3] is not None:
            return entry[3]  # final, and booked: what polling mostly asks
        if entry is None or entry[0] is not row:  # read again since: work it out again
            if len(known) >= MAX_KNOWN:
                known.clear()
            entry = known[row.id] = _known(row, account.currency)
        _, plan, charge, final, final_at = entry
        if final is not None:
            return final  # type: ignore[no-any-return]
        self._on_the_clock()
        if row.due_at <= now:  # final, refund not booked yet: report what booking will do
            self._book_soon()
            view = lc.final_state(plan)
            return OrderView(row.id, charge - due_refund(row), view.start_count, view.status,
                             view.remains, account.currency)
        view = lc.view_at(plan, now, final_at)
        return OrderView(row.id, charge, view.start_count, view.status, view.remains,
                         account.currency)

    def _known_orders(self) -> dict[int, tuple[Any, ...]]:
        """This thread's worked-out orders: (row, plan, charge, final view, final_at), kept
        while the read cache hands out the same row (a row read again is worked out again)."""
        known: dict[int, tuple[Any, ...]] | None = getattr(self._pinned, "known", None)
        if known is None:
            known = self._pinned.known = {}
        return known

    def _orders(self, db: Any, account: Account, ids: list[int]) -> dict[int, Any]:
        return self.ops.orders_of(db, account.id, [i for i in ids if 0 < i < MAX_ID])

    def cancel(self, who: Account | str, order_ids: Iterable[int]) -> dict[int, PanelError | None]:
        """Accept cancel requests; None = accepted. An accepted cancel takes effect
        `CANCEL_DELAY` later, or sooner when the order would otherwise finish first: the
        order then ends Canceled or Partial, never Completed (`lc.cancel_effect_at`)."""
        account = self._account(who)
        moment = self.moment()
        now = moment.now
        ids = list(dict.fromkeys(order_ids))
        catalog = self.catalog()
        result: dict[int, PanelError | None] = {}
        with self.store.transaction() as db:
            if moment.due:
                self._settle_in(db, now)
            rows = self._orders(db, account, ids)
            for order_id in ids:
                row = rows.get(order_id)
                if row is None:
                    result[order_id] = IncorrectOrder(f"no order {order_id} for this key")
                    continue
                service = catalog.get(row.service_id)
                plan = lc.plan_of(row)
                effect = None
                if (service is not None and service.cancel and row.due_at is not None
                        and plan.cancel_at is None):
                    effect = lc.cancel_effect_at(plan, now)
                if effect is None:
                    result[order_id] = CancelUnavailable(f"order {order_id} cannot be canceled")
                    continue
                cancelled = replace(plan, cancel_at=effect)
                self.ops.set_cancel(db, order_id, effect, cancelled.final_at)
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
            due = self.ops.any_due(self.store.connection(), now)
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

    def _settle_in(self, db: Any, now: float) -> None:
        self._pinned.booked = True  # (rolled back with its transaction: the next request asks)
        for row in self.ops.due_orders(db, now):
            plan = lc.plan_of(row)
            book_final(self.ops, db, row, lc.final_state(plan), plan.final_at, at=plan.final_at)

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
            rows = self._orders(db, account, ids)
            for order_id in ids:
                row = rows.get(order_id)
                if row is None:
                    result[order_id] = IncorrectOrder(f"no order {order_id} for this key")
                    continue
                service = catalog.get(row.service_id)
                if service is None or not service.refill:
                    result[order_id] = RefillDisabled(f"service of order {order_id} has no refill")
                    continue
                if (row.final_status not in (lc.COMPLETED, lc.PARTIAL)
                        or now > row.final_at + service.refill_days * 86400
                        or self._refill_in_flight(db, order_id, now)):
                    result[order_id] = RefillUnavailable(f"order {order_id} cannot be refilled now")
                    continue
                refill_id = self.ops.next_id(db, "refills")
                plan = lc.plan_refill(seed=self.seed, refill_id=refill_id, created_at=now)
                self.ops.insert_refill(db, refill_id, order_id, account.id, now, plan.rejected)
                result[order_id] = refill_id
        return result

    def _refill_in_flight(self, db: Any, order_id: int, now: float) -> bool:
        return any(refill_status(row, now) not in lc.REFILL_FINAL
                   for row in self.ops.refills_of_order(db, order_id))

    def refill_statuses(
        self, who: Account | str, refill_ids: Iterable[int]
    ) -> dict[int, str | PanelError]:
        account = self._account(who)
        now = self.now()
        ids = list(dict.fromkeys(refill_ids))
        rows = self.ops.refills_of(self.store.connection(), account.id,
                                   [i for i in ids if 0 < i < MAX_ID])
        return {i: (refill_status(rows[i], now) if i in rows
                    else RefillNotFound(f"no refill {i} for this key")) for i in ids}

    # ------------------------------------------------------------ audit

    def audit(self, key: str) -> dict[str, Decimal]:
        """The conservation law's terms for one account (settled first), read in one snapshot:
        balance and charges always agree, whatever runs at the same time."""
        self.settle()
        with self.store.snapshot() as db:
            row = self.ops.account_by_key(db, key)
            if row is None:
                raise ValueError(f"unknown account {key!r}")
            kept = sum((Decimal(r.charge) - Decimal(r.refunded)
                        for r in self.ops.kept_charges(db, row.id)), ZERO)
            pending = sum((due_refund(r) for r in self.ops.due_orders(db, self.now(), row.id)),
                          ZERO)
        return {"balance": Decimal(row.balance) + pending, "charges": kept - pending,
                "opening": Decimal(row.opening), "topups": Decimal(row.topups)}
