"""The background booker (core/panel.py) works on a PostgreSQL store: it checks `store.closed`
once a second, and a PostgreSQL store without that flag killed the thread with an
AttributeError, so due orders were booked only when a write came by."""

from __future__ import annotations

import threading
import time

from smmkit.mock_server.core.config import DEMO_KEY, Config, build_panel


def test_the_booker_books_due_orders_and_stops_with_the_store(pg_url: str) -> None:
    panel = build_panel(Config(db=pg_url, speed=1_000_000))  # orders fall due in milliseconds
    try:
        panel.add_order(DEMO_KEY, {"service": "1", "link": "https://x.test/b", "quantity": "100"})
        time.sleep(0.05)
        panel.balance(DEMO_KEY)  # a read that sees due orders asks the booker to book them
        deadline = time.monotonic() + 10
        unbooked = 1
        while unbooked and time.monotonic() < deadline:
            time.sleep(0.1)
            unbooked = panel.store.connection().execute(
                "SELECT COUNT(*) FROM orders WHERE due_at IS NOT NULL").fetchone()[0]
        assert unbooked == 0
        assert any(t.name == "smmkit-booker" and t.is_alive() for t in threading.enumerate())
    finally:
        panel.store.close()
    assert panel.store.closed
