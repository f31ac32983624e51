"""What one event-loop turn answers: its orders placed in one transaction (group commit), and
every answer sent only after the turn's journal lines are written, in one write.

Every order waits for the write lock that all workers share, and inside it SQLite rereads the
pages another worker's commit made stale and writes the pages the order changed: the account,
the last page of the orders, the ledger and each index. Placed one transaction each, two
workers spent most of an order's time inside that lock, one after the other. Here the worker
checks and prices each order as it arrives (`ApiEndpoint.answer(later=True)`, no lock), and
at the end of the loop turn places all of them in one transaction, each in a savepoint of its
own (`Panel.place_orders`): one wait for the lock, one reread, one commit, the shared pages
written once.

The journal shows a request once its answer is sent. Written one line per request, its append
was the largest single cost of a polled status; the loop's lines are held (`Journal.hold`) and
written together at the end of the turn, before any answer of the turn leaves.

What a client sees is unchanged: its answer is sent only after the commit that holds its
order (a crash before it loses an order never acknowledged) and after its journal line, an
order refused for its funds or an active link is refused alone, and later requests on the same
connection wait for the answer before them, as they did. If the transaction fails as a whole,
no order of the turn is placed and each gets the answer of that failure.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from typing import Any

from smmkit.mock_server.storage.journal import Journal
from smmkit.mock_server.web.api import Pending, Reply, encode
from smmkit.mock_server.web.app import ApiEndpoint


class Turn:
    """The answers a worker's loop has worked out this turn and not yet sent, and the orders it
    has checked and not yet placed."""

    def __init__(self, endpoint: ApiEndpoint) -> None:
        self.endpoint = endpoint
        journal = getattr(endpoint, "journal", None)
        # the files' journal (SQLite's): PostgreSQL's is a table, written by the pool's threads
        self.journal = journal if isinstance(journal, Journal) else None
        self._orders: list[tuple[Any, Any, Pending]] = []  # (connection, request, pending)
        self._answers: list[tuple[Any, Any, Any]] = []  # (connection, request, outcome)
        self._due = False  # `end` is scheduled
        if self.journal is not None:  # this (the loop's) thread: its lines wait for `end`
            self.journal.hold(self.soon)

    def order(self, conn: Any, request: Any, pending: Pending) -> None:
        """Place `pending` at the end of this turn; then `conn.deliver(request, reply)`."""
        self._orders.append((conn, request, pending))  # (one at most per connection: it
        # reads no further request until this one is answered)
        self.soon()

    def answer(self, conn: Any, request: Any, outcome: Any) -> None:
        """`conn.deliver(request, outcome)` at the end of this turn, after its journal line."""
        self._answers.append((conn, request, outcome))
        self.soon()

    def soon(self) -> None:
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self.end)

    def end(self) -> None:
        """Place what waits, write the turn's journal lines, then answer (at the end of the turn,
        and when the worker stops)."""
        self._due = False
        orders, self._orders = self._orders, []
        answers, self._answers = self._answers, []
        if orders:  # (a connection has one answer at most waiting: any order between them)
            placed = [(conn, request, reply) for (conn, request, _), reply
                      in zip(orders, self._place(orders), strict=True)]
            answers = placed + answers
        if self.journal is not None:
            self.journal.release()
        for conn, request, outcome in answers:
            conn.deliver(request, outcome)

    def _place(self, orders: list[tuple[Any, Any, Pending]]) -> list[Reply]:
        try:
            return self.endpoint.carry_out([pending for _, _, pending in orders])
        except Exception:  # noqa: BLE001 - a bug: every waiting client still gets an answer
            traceback.print_exc(file=sys.stderr)
            return [Reply(500, encode({"error": "Internal error"}))] * len(orders)
