"""Orders placed together (group commit, serving/batching.py): the same outcomes as one at a
time, one refused alone, none placed when the transaction fails, one commit for a turn's
orders, and every answer sent only after that commit."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from engines import sqlite_only
from hypothesis import given, settings
from hypothesis import strategies as st
from smmkit.mock_server.core.config import Config, build_panel
from smmkit.mock_server.core.panel import Panel
from smmkit.mock_server.serving import http1
from smmkit.mock_server.web.app import ApiEndpoint, create_app

KEY = "batch-key"


def panel_at(path: Path, balance: str) -> Panel:
    panel = build_panel(Config(db=str(path), clock="manual", seed=7))
    panel.create_account(KEY, balance)
    return panel


def outcome_of(value: int | Exception) -> tuple[str, str]:
    return ("id", str(value)) if isinstance(value, int) else (type(value).__name__, str(value))


orders = st.lists(st.tuples(st.sampled_from(["1", "3"]), st.integers(10, 400),
                            st.integers(0, 3)), min_size=1, max_size=12)


@sqlite_only("the panel's own store, in-process")
@settings(max_examples=40, deadline=None)
@given(orders=orders, balance=st.sampled_from(["0", "1", "5", "40", "1000"]))
def test_orders_placed_together_end_as_placed_one_at_a_time(
        tmp_path_factory: pytest.TempPathFactory, orders: list[tuple[str, int, int]],
        balance: str) -> None:
    """Funds running out half-way, the same link twice, quantities under the minimum: each
    order gets the answer it gets alone, in the same order, and the store ends the same."""
    tmp = tmp_path_factory.mktemp("together")
    together, alone = panel_at(tmp / "t.db", balance), panel_at(tmp / "a.db", balance)
    try:
        asked = [{"service": s, "quantity": str(q), "link": f"https://x.com/p/{link}"}
                 for s, q, link in orders]
        places, got = [], []
        for params in asked:  # a bad quantity is refused before any write, as alone
            try:
                places.append(together.prepare_order(KEY, params))
            except Exception as exc:  # noqa: BLE001 - compared with what alone answers
                got.append(outcome_of(exc))
                continue
            got.append(("pending", ""))
        placed = iter(together.place_orders(places))
        got = [outcome_of(next(placed)) if g == ("pending", "") else g for g in got]
        expected = []
        for params in asked:
            try:
                expected.append(outcome_of(alone.add_order(KEY, params)))
            except Exception as exc:  # noqa: BLE001
                expected.append(outcome_of(exc))
        assert got == expected
        assert together.balance(KEY) == alone.balance(KEY)
        assert together.audit(KEY) == alone.audit(KEY)
        assert together.audit(KEY)["balance"] >= 0
    finally:
        together.store.close()
        alone.store.close()


@sqlite_only("breaks SQLite's transaction from inside")
def test_a_transaction_lost_as_a_whole_places_no_order(tmp_path: Path) -> None:
    panel = panel_at(tmp_path / "p.db", "100")
    endpoint = _endpoint(panel)
    try:
        good = _pending(endpoint, "https://x.com/p/good")

        def lose_the_transaction(db: Any) -> int:
            db.execute("ROLLBACK")  # what SQLite does itself on some I/O errors
            raise RuntimeError("disk I/O error")

        replies = endpoint.carry_out([good, good._replace(place=lose_the_transaction), good])
        assert [r.status for r in replies] == [500, 500, 500]
        assert {r.body for r in replies} == {b'{"error":"Internal error"}'}
        assert panel.balance(KEY) == (Decimal("100"), "USD")
        assert panel.store.connection().execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0
    finally:
        panel.store.close()


def _endpoint(panel: Panel) -> ApiEndpoint:
    app = create_app(panel)
    endpoint = [v for v in vars(app.wsgi_app).values() if isinstance(v, ApiEndpoint)][0]
    return endpoint


def _pending(endpoint: ApiEndpoint, link: str) -> Any:
    from smmkit.mock_server.web.app import ApiRequest

    body = f"key={KEY}&action=add&service=3&quantity=100&link={link}".encode()
    pending = endpoint.answer(ApiRequest("POST", "", "application/x-www-form-urlencoded", body),
                              later=True)
    assert type(pending).__name__ == "Pending", pending
    return pending


class Wire:
    def __init__(self, log: list[tuple[str, bytes]], name: str) -> None:
        self.log, self.name = log, name

    def write(self, data: bytes) -> None:
        self.log.append((self.name, data))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default


def _request(body: str) -> bytes:
    data = body.encode()
    return (b"POST /api/v2 HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nContent-Length: %d\r\n\r\n" % len(data)) + data


@sqlite_only("the built-in server's loop (SQLite only)")
def test_one_turns_orders_commit_once_and_are_answered_after_it(tmp_path: Path) -> None:
    """Six connections send an order each in one loop turn, and one of them a balance behind
    its order: one commit places all six, no answer leaves before it, and the balance behind
    an order on its connection sees that order."""
    panel = panel_at(tmp_path / "p.db", "100")
    endpoint = _endpoint(panel)
    sent: list[tuple[str, bytes]] = []
    commits: list[int] = []

    async def turn() -> None:
        worker = http1.Worker(endpoint, None, None, inline_api=True,  # type: ignore[arg-type]
                              server_address=("127.0.0.1", 8080))
        before = panel.store.commits_here()
        for n in range(6):
            conn = http1.Connection(worker)
            conn.connection_made(Wire(sent, f"c{n}"))
            data = _request(f"key={KEY}&action=add&service=3&quantity=100"
                            f"&link=https://x.com/p/{n}")
            if n == 0:
                data += _request(f"key={KEY}&action=balance")
            conn.data_received(data)
        assert sent == []  # checked and priced, not yet placed: nothing answered
        await asyncio.sleep(0)  # the end of the turn
        commits.append(panel.store.commits_here() - before)
        await asyncio.sleep(0)  # the next: the balance behind c0's order

    try:
        asyncio.run(turn())
        assert commits == [1]
        bodies = {name: [re.sub(rb"^.*\r\n\r\n", b"", d, flags=re.S) for n, d in sent
                         if n == name] for name in {n for n, _ in sent}}
        assert sorted(bodies) == [f"c{n}" for n in range(6)]
        ids = sorted(int(b[0][len(b'{"order":'):-1]) for b in bodies.values())
        assert ids == list(range(ids[0], ids[0] + 6))
        charge = Decimal("0.012")  # 100 × 0.12 per 1000
        assert bodies["c0"][1] == b'{"balance":"%s","currency":"USD"}' % \
            str(Decimal("100") - 6 * charge).encode()
        assert panel.balance(KEY) == (Decimal("100") - 6 * charge, "USD")
    finally:
        panel.store.close()


@sqlite_only("the built-in server's loop (SQLite only)")
def test_a_turns_journal_lines_are_written_at_once_before_its_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five connections ask in one loop turn (an order, statuses, a balance, an unknown
    key): their five journal lines go out in one write, and every answer leaves after it,
    so a client never holds an answer the journal does not show yet."""
    from smmkit.mock_server.storage import journal as journal_module

    panel = panel_at(tmp_path / "p.db", "100")
    endpoint = _endpoint(panel)
    journal = endpoint.journal
    assert journal is not None
    first = endpoint.answer(http1.ApiRequest(
        "POST", "", "application/x-www-form-urlencoded",
        f"key={KEY}&action=add&service=3&quantity=100&link=https://x.com/p/0".encode()))
    order = int(first.body[len(b'{"order":'):-1])  # type: ignore[union-attr]
    sent: list[tuple[str, bytes]] = []
    lines_when_sent: list[int] = []
    writes: list[int] = []
    real_write = journal_module.os.write

    def counted(fd: int, data: Any) -> int:
        if fd == journal._fd:
            writes.append(bytes(data).count(b"\n"))
        return real_write(fd, data)

    def lines() -> int:
        return sum(p.read_bytes().count(b"\n") for p in journal.logs.glob("*.log"))

    class Watched(Wire):
        def write(self, data: bytes) -> None:
            lines_when_sent.append(lines())
            super().write(data)

    asks = [f"key={KEY}&action=add&service=3&quantity=100&link=https://x.com/p/1",
            f"key={KEY}&action=status&order={order}", f"key={KEY}&action=balance",
            f"key={KEY}&action=status&orders={order},1", "key=nobody&action=balance"]

    async def turn() -> None:
        worker = http1.Worker(endpoint, None, None, inline_api=True,  # type: ignore[arg-type]
                              server_address=("127.0.0.1", 8080))
        before = lines()
        monkeypatch.setattr(journal_module.os, "write", counted)
        for n, ask in enumerate(asks):
            conn = http1.Connection(worker)
            conn.connection_made(Watched(sent, f"c{n}"))
            conn.data_received(_request(ask))
        assert sent == [] and lines() == before  # worked out, held: nothing written or sent
        await asyncio.sleep(0)  # the end of the turn
        monkeypatch.undo()
        assert writes == [len(asks)]
        assert lines_when_sent == [before + len(asks)] * len(asks)

    try:
        asyncio.run(turn())
        assert sorted(name for name, _ in sent) == [f"c{n}" for n in range(len(asks))]
        assert sorted(e["action"] for e in journal.entries(limit=5)) == \
            ["add", "balance", "balance", "status", "status"]
    finally:
        panel.store.close()
