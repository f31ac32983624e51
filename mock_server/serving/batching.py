"""The orders of one event-loop turn placed in one transaction (group commit).

Every order waits for the write lock that all workers share, and inside it SQLite rereads the
pages another worker's commit made stale and writes the pages the order changed: the account,
the last page of the orders, the ledger and each index. Placed one transaction each, two
workers spent most of an order's time inside that lock, one after the other. Here the worker
checks and prices each order as it arrives (`ApiEndpoint.answer(later=True)`, no lock), and
at the end of the loop turn places all of them in one transaction, each in a savepoint of its
own (`Panel.place_orders`): one wait for the lock, one reread, one commit, the shared pages
written once.

What a client sees is unchanged: its answer is sent only after the commit that holds its
order (a crash before it loses an order never acknowledged), an order refused for its funds
or an active link is refused alone, and later requests on the same connection wait for the
answer before them, as they did. If the transaction fails as a whole, no order of the turn is
placed and each gets the answer of that failure.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from typing import Any

from smmkit.mock_server.web.api import Pending, Reply, encode
from smmkit.mock_server.web.app import ApiEndpoint


class WriteBatch:
    """The orders a worker's loop has checked this turn and not yet placed."""

    def __init__(self, endpoint: ApiEndpoint) -> None:
        self.endpoint = endpoint
        self._waiting: list[tuple[Any, Any, Pending]] = []  # (connection, request, pending)

    def add(self, conn: Any, request: Any, pending: Pending) -> None:
        """Place `pending` at the end of this turn; then `conn.placed(request, reply)`."""
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self.flush)
        self._waiting.append((conn, request, pending))  # (one at most per connection: it
        # reads no further request until this one is answered)

    def flush(self) -> None:
        """Place and answer what waits (at the end of the turn, and when the worker stops)."""
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        try:
            replies = self.endpoint.carry_out([pending for _, _, pending in waiting])
        except Exception:  # noqa: BLE001 - a bug: every waiting client still gets an answer
            traceback.print_exc(file=sys.stderr)
            replies = [Reply(500, encode({"error": "Internal error"}))] * len(waiting)
        for (conn, request, _), reply in zip(waiting, replies, strict=True):
            conn.placed(request, reply)
