"""Background threads that cannot die, and answers that are never lost (issue 16 item 1).

- The booker thread settles due orders for reads; it died on any error that was not
  sqlite3's, and from then on no refund was booked for the life of the process.
- A request whose action committed always gets its answer: a journal that cannot write (here
  its file replaced by a directory, so SQLite cannot open it) must not turn a placed order into
  a 500. The journal flusher itself is the dashboard's; this tests the API's side of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from engines import sqlite_only
from smmkit.mock_server.core.config import DEMO_KEY, Config, build_panel
from smmkit.mock_server.core.panel import Panel


@pytest.fixture
def fast_panel(tmp_path: Path) -> Iterator[Panel]:
    """A real-clock panel at a million times real speed: orders fall due within milliseconds."""
    panel = build_panel(Config(db=str(tmp_path / "p.db"), speed=1_000_000))
    panel.create_account("bystander", "100")
    yield panel
    panel.store.close()


def _unbooked(panel: Panel) -> int:
    return panel.store.connection().execute(
        "SELECT COUNT(*) FROM orders WHERE due_at IS NOT NULL").fetchone()[0]


def _wait(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@sqlite_only("it stores text in a money column, which PostgreSQL's NUMERIC refuses outright")
def test_the_booker_survives_an_error_and_books_later(fast_panel: Panel,
                                                      capfd: pytest.CaptureFixture) -> None:
    panel = fast_panel
    order = panel.add_order(DEMO_KEY, {"service": "1", "link": "https://x.com/b",
                                       "quantity": "100"})
    with panel.store.transaction() as db:  # a row the booker cannot read (not an SQLite error)
        db.execute("UPDATE orders SET charge = 'garbage' WHERE id = ?", (order,))
    time.sleep(0.05)
    panel.balance("bystander")  # a read that sees due orders asks the booker to book them
    assert _wait(lambda: "booking due orders failed" in capfd.readouterr().err)
    with panel.store.transaction() as db:
        db.execute("UPDATE orders SET charge = '0.09' WHERE id = ?", (order,))
    assert any(t.name == "smmkit-booker" and t.is_alive() for t in threading.enumerate())
    panel.balance("bystander")
    assert _wait(lambda: _unbooked(panel) == 0), "the booker stopped booking"
    audit = panel.audit(DEMO_KEY)
    assert audit["balance"] + audit["charges"] == audit["opening"] + audit["topups"]


@sqlite_only("the journal's file beside the SQLite store is made unwritable")
def test_a_committed_add_is_answered_when_the_journal_cannot_write(tmp_path: Path) -> None:
    from smmkit.mock_server.serving.server import start_background

    config = Config(port=0, db=str(tmp_path / "j.db"), clock="manual")
    running = start_background(config)
    try:
        path = Path(f"{running.panel.store.path}.journal")
        for suffix in ("", "-wal", "-shm"):  # the request threads have not opened it yet
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.mkdir()
        answers = []
        with requests.Session() as session:
            for i in range(150):  # more than the journal's batch of 64: flushes in the request
                response = session.post(running.api_url, timeout=10, data={
                    "key": DEMO_KEY, "action": "add", "service": "3",
                    "link": f"https://x.com/j{i}", "quantity": "20"})
                answers.append((response.status_code, response.json()))
        assert all(status == 200 and set(body) == {"order"} for status, body in answers), \
            [a for a in answers if a[0] != 200][:3]
        stored = running.panel.store.connection().execute(
            "SELECT COUNT(*) FROM orders").fetchone()[0]
        assert stored == len(answers) == 150
    finally:
        running.stop()
        running.panel.store.close()
