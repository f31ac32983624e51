"""The reads every request makes, answered from memory while the database is unchanged.

A `balance` used to cost three SQL statements (the pulse, the key, the balance) and a `status`
three as well: most of the fake's time per request. Here each thread keeps copies of those rows
and, once per request, asks SQLite one cheap question — `PRAGMA data_version`, which changes
when any other connection (another thread, another worker process, `smmkit ctl`) commits — and
counts its own connection's commits. While neither moved, the copies are exactly what the
queries would return; when either moved, every copy is dropped and read again.

So the copies are never stale: a commit anywhere is seen by the next request of every worker.
Writes never go through here (they run SQL inside their transaction, tables.py). `memo()` lends
the layers above a dict with the same lifetime, for what they derive from these rows (the web
layer keeps whole answers there: web/app.py).

Engines without such a version (PostgreSQL: many hosts) get `DirectReads`, the same names
answered by a query each time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from smmkit.mock_server.storage import tables

MAX_ROWS = 200_000  # copies per thread before they are dropped wholesale (memory at 1M orders)
_ABSENT = object()


class DirectReads:
    """The hot reads as plain queries on the calling thread's connection."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.ops = store.ops

    def begin(self) -> None:
        """Called at the start of every request (nothing to check here)."""

    def end(self) -> None:
        """Called at the end of every request."""

    def pulse(self, wall: float) -> Any:
        return self.ops.pulse(self.store.connection(), wall)

    def account_by_key(self, key: str) -> Any:
        return self.ops.account_by_key(self.store.connection(), key)

    def balance_of(self, account_id: int) -> Any:
        return self.ops.balance_of(self.store.connection(), account_id)

    def catalog_version(self) -> int | None:
        return self.ops.catalog_version(self.store.connection())

    def orders_of(self, account_id: int, ids: Sequence[int]) -> dict[int, Any]:
        return self.ops.orders_of(self.store.connection(), account_id, ids)

    def order_of(self, account_id: int, order_id: int) -> Any:
        """The account's order `order_id`, or None."""
        return self.orders_of(account_id, (order_id,)).get(order_id)

    def memo(self) -> dict[Any, Any] | None:
        """A dict the layers above may keep derived answers in while the database is the same
        (dropped with the copies at the next change), or None: this engine cannot tell."""
        return None


class _Copies:
    """One thread's copies, all read at one database version."""

    def __init__(self, epoch: tuple[int, int, int]) -> None:
        self.epoch = epoch
        self.clock: Any = None  # (anchor_wall, anchor_panel, speed, frozen, next_due, faults)
        self.accounts: dict[str, Any] = {}
        self.balances: dict[int, Any] = {}
        self.orders: dict[int, dict[int, Any]] = {}  # account id -> order id -> row or None
        self.order_count = 0
        self.catalog_version: Any = _ABSENT
        self.memo: dict[Any, Any] = {}  # the layers above keep what they derived, for this version


class CachedReads(DirectReads):
    """The hot reads of a SQLite store, from per-thread copies checked once per request."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self._local = threading.local()

    def begin(self) -> None:
        self._local.pinned = None
        self._local.pinned = self._copies()  # the one check against the database version,
        # for the whole request

    def end(self) -> None:
        self._local.pinned = None

    def _copies(self) -> _Copies:
        """This thread's copies, checked: within a request only against this connection's own
        commits (no SQL), otherwise against the database version as well."""
        local = self._local
        try:
            copies: _Copies | None = local.pinned
        except AttributeError:
            copies = None
        if copies is not None and copies.epoch[2] == self.store.commits_here():
            return copies
        pinned = copies is not None
        copies = getattr(local, "copies", None)
        epoch = self.store.epoch()
        if copies is None or copies.epoch != epoch:
            copies = local.copies = _Copies(epoch)
        if pinned:  # a request that wrote: its later reads check against the new state
            local.pinned = copies
        return copies

    def pulse(self, wall: float) -> Any:
        copies = self._copies()
        clock = copies.clock
        if clock is None:
            clock = copies.clock = tables.pulse_parts(self.store.connection())
            if clock is None:  # an emptied store: the caller fills it again
                copies.clock = None
                return None
        anchor_wall, anchor_panel, speed, frozen, next_due, faults = clock
        # the same arithmetic as the pulse query and ClockState.now
        now = anchor_panel if frozen else anchor_panel + (wall - anchor_wall) * speed
        return tables.Pulse(now, int(next_due is not None and next_due <= now), faults)

    def account_by_key(self, key: str) -> Any:
        accounts = self._copies().accounts
        row = accounts.get(key, _ABSENT)
        if row is _ABSENT:
            if len(accounts) >= MAX_ROWS:
                accounts.clear()
            row = accounts[key] = self.ops.account_by_key(self.store.connection(), key)
        return row

    def balance_of(self, account_id: int) -> Any:
        balances = self._copies().balances
        row = balances.get(account_id, _ABSENT)
        if row is _ABSENT:
            if len(balances) >= MAX_ROWS:
                balances.clear()
            row = balances[account_id] = self.ops.balance_of(self.store.connection(), account_id)
        return row

    def catalog_version(self) -> int | None:
        copies = self._copies()
        if copies.catalog_version is _ABSENT:
            copies.catalog_version = self.ops.catalog_version(self.store.connection())
        return copies.catalog_version  # type: ignore[no-any-return]

    def memo(self) -> dict[Any, Any] | None:
        memo = self._copies().memo
        if len(memo) >= MAX_ROWS:
            memo.clear()
        return memo

    def order_of(self, account_id: int, order_id: int) -> Any:
        orders = self._copies().orders.get(account_id)
        if orders is not None:
            row = orders.get(order_id, _ABSENT)
            if row is not _ABSENT:
                return row
        return self.orders_of(account_id, (order_id,)).get(order_id)

    def orders_of(self, account_id: int, ids: Sequence[int]) -> dict[int, Any]:
        """The account's orders among `ids` (one query for the ones not yet copied)."""
        copies = self._copies()
        orders = copies.orders.get(account_id)
        if orders is None:
            orders = copies.orders[account_id] = {}
        missing = [i for i in ids if i not in orders]
        if missing:
            if copies.order_count + len(missing) > MAX_ROWS:
                copies.orders.clear()
                copies.order_count = 0
                orders = copies.orders[account_id] = {}
            found = self.ops.orders_of(self.store.connection(), account_id, missing)
            for order_id in missing:
                orders[order_id] = found.get(order_id)
            copies.order_count += len(missing)
        get = orders.get
        return {order_id: row for order_id in ids if (row := get(order_id)) is not None}


def reads_for(store: Any) -> DirectReads:
    """Cached reads where the engine can say cheaply that nothing changed, else direct ones."""
    return CachedReads(store) if hasattr(store, "epoch") else DirectReads(store)
