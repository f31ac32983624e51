"""The shortcuts of the hot path give exactly what the long way gives.

- `storage/read_cache.py`: a panel whose reads come from per-thread copies answers like a
  panel that queries every time, whatever another connection (another worker) commits in
  between — a model-based test over random sequences of writes from two panels on one store.
- `web/app.py` keeps the parameters read from a request's bytes: answering never changes them.
- `web/app.py`'s kept answers: an endpoint that keeps timeless answers answers what one that
  works each one out answers, while another panel writes and the clock runs on without commits.
- The WAL-index header: every commit from another connection changes the epoch, checkpoints
  and WAL restarts included.
- `web/dialects.encode` (orjson) writes json.dumps's bytes for every body an answer can hold.
- `Dialect.status_bytes`' templates write what shaping and encoding each view writes, in every
  dialect and whatever the types of its fields.
- `web/api._from_form`'s split writes parse_qsl's dict for every body of under 1,000 fields.
- `web/api.parse_ids`'s shortcut for plain digit lists reads what the general parser reads.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from smmkit.mock_server.core import steering
from smmkit.mock_server.core.config import DEMO_KEY, Config, build_panel
from smmkit.mock_server.core.errors import IncorrectRequest, PanelError
from smmkit.mock_server.core.faults import FaultBook
from smmkit.mock_server.core.panel import OrderView, Panel
from smmkit.mock_server.storage.read_cache import CachedReads, DirectReads
from smmkit.mock_server.storage.sqlite import Store
from smmkit.mock_server.web import dialects
from smmkit.mock_server.web.api import _from_form, parse_any_ids, parse_ids
from smmkit.mock_server.web.dialects import Dialect, encode
from smmkit.schemas.dialects import BUILTIN, load_dialect

# ------------------------------------------------------------------ the read cache


class WriterSteers:
    """Rules both state machines share: `self.writer`, another panel on the store, disables
    the demo key or arms a fault."""

    writer: Panel

    @rule(enabled=st.booleans())
    def enable(self, enabled: bool) -> None:
        steering.update_account(self.writer, DEMO_KEY, {"enabled": enabled})

    @rule(armed=st.booleans())
    def fault(self, armed: bool) -> None:
        book = FaultBook(self.writer.store)
        book.clear()
        if armed:  # every status request (a count would be used up by the first reader)
            book.add({"kind": "rate_limit", "action": "status", "probability": 1})


class TwoWorkers(WriterSteers, RuleBasedStateMachine):
    """`cached` and `writer` are two panels on one store file, like two worker processes;
    `truth` reads the same file with no cache at all. After every step, what `cached` answers
    must be what `truth` answers."""

    @initialize()
    def start(self) -> None:
        import tempfile

        self.dir = tempfile.mkdtemp(prefix="smmkit-hot-")
        db = str(Path(self.dir) / "p.db")
        self.cached = build_panel(Config(db=db, clock="manual"))
        self.writer = build_panel(Config(db=db, clock="manual"))
        self.truth = build_panel(Config(db=db, clock="manual"))
        self.truth.reads = DirectReads(self.truth.store)
        assert isinstance(self.cached.reads, CachedReads)
        self.orders: list[int] = []
        self.keys = [DEMO_KEY]

    def teardown(self) -> None:
        for panel in (getattr(self, "cached", None), getattr(self, "writer", None),
                      getattr(self, "truth", None)):
            if panel is not None:
                panel.store.close()

    def _panel(self, which: bool) -> Panel:
        return self.cached if which else self.writer

    @rule(which=st.booleans(), n=st.integers(0, 10_000), service=st.sampled_from(["1", "3"]))
    def add(self, which: bool, n: int, service: str) -> None:
        try:
            self.orders.append(self._panel(which).add_order(
                DEMO_KEY, {"service": service, "link": f"https://x.com/{n}", "quantity": "100"}))
        except PanelError:
            pass

    @rule(which=st.booleans(), amount=st.sampled_from(["5", "0.00001", "-1"]))
    def top_up(self, which: bool, amount: str) -> None:
        try:
            self._panel(which).top_up(DEMO_KEY, amount)
        except (ValueError, PanelError):
            pass

    @rule(which=st.booleans(), seconds=st.sampled_from([1, 30, 600, 86_400]))
    def advance(self, which: bool, seconds: int) -> None:
        self._panel(which).advance(seconds)

    @precondition(lambda self: self.orders)
    @rule(which=st.booleans(), data=st.data())
    def cancel(self, which: bool, data: st.DataObject) -> None:
        try:
            self._panel(which).cancel(DEMO_KEY, [data.draw(st.sampled_from(self.orders))])
        except PanelError:  # a disabled key
            pass

    @rule(which=st.booleans(), n=st.integers(0, 99))
    def new_account(self, which: bool, n: int) -> None:
        key = f"key-{n}"
        try:
            self._panel(which).create_account(key, "3")
            self.keys.append(key)
        except ValueError:
            pass

    @rule()
    def reset(self) -> None:
        self.writer.reset()
        self.orders.clear()
        self.keys = [DEMO_KEY]

    @invariant()
    def cached_answers_are_the_true_ones(self) -> None:
        if not hasattr(self, "cached"):
            return
        for key in self.keys:
            assert _answers(self.cached, key, self.orders) == _answers(self.truth, key,
                                                                       self.orders)


def _answers(panel: Panel, key: str, orders: list[int]) -> tuple:
    with panel.request() as moment:
        try:
            balance = panel.balance(key)
            views = panel.order_statuses(key, orders)
        except PanelError as exc:
            return (moment.due, moment.faults, type(exc).__name__)
        shown = {i: v if not isinstance(v, PanelError) else type(v).__name__
                 for i, v in views.items()}
        one_by_one = {}  # the single-order path (`order_of`), in another order than above
        for order_id in [*reversed(orders), 999_999_999]:
            try:
                one_by_one[order_id] = panel.order_status(key, order_id)
            except PanelError as exc:
                one_by_one[order_id] = type(exc).__name__
        return (moment.due, moment.faults, balance, shown, one_by_one, sorted(panel.catalog()))


TwoWorkers.TestCase.settings = settings(max_examples=20, stateful_step_count=25,
                                        deadline=None)
TestTwoWorkers = TwoWorkers.TestCase


class KeptReplies(WriterSteers, RuleBasedStateMachine):
    """An endpoint that keeps timeless answers (web/app.py) answers byte for byte what an
    endpoint that works every answer out answers, on one store, while another panel writes
    and while the clock runs on without a commit (a wall clock the test moves)."""

    @initialize()
    def start(self) -> None:
        import tempfile
        import time

        from smmkit.mock_server.web.api import Api
        from smmkit.mock_server.web.app import ApiEndpoint

        self.dir = tempfile.mkdtemp(prefix="smmkit-kept-")
        db = str(Path(self.dir) / "p.db")
        self.wall = time.time()
        panels = [build_panel(Config(db=db)) for _ in range(3)]
        for panel in panels:
            panel.wall = lambda: self.wall
        self.writer, cached, truth = panels
        truth.reads = DirectReads(truth.store)
        self.kept = ApiEndpoint(Api(cached), 1 << 20, faults=FaultBook(cached.store))
        self.fresh = ApiEndpoint(Api(truth), 1 << 20, faults=FaultBook(truth.store),
                                 keep_replies=False)
        self.panels = panels
        self.orders: list[int] = []

    def teardown(self) -> None:
        for panel in getattr(self, "panels", ()):
            panel.store.close()

    @rule(n=st.integers(0, 10_000), service=st.sampled_from(["1", "3"]))
    def add(self, n: int, service: str) -> None:
        try:
            self.orders.append(self.writer.add_order(
                DEMO_KEY, {"service": service, "link": f"https://x.com/{n}", "quantity": "100"}))
        except PanelError:
            pass

    @rule(seconds=st.sampled_from([0.5, 5, 11, 60, 3_600]))
    def time_passes(self, seconds: float) -> None:
        self.wall += seconds  # no commit: only the clock moves

    @rule(seconds=st.sampled_from([30, 86_400]))
    def advance(self, seconds: int) -> None:
        self.writer.advance(seconds)

    @rule()
    def settle(self) -> None:
        self.writer.settle()

    @rule(amount=st.sampled_from(["5", "-1"]))
    def top_up(self, amount: str) -> None:
        try:
            self.writer.top_up(DEMO_KEY, amount)
        except ValueError:
            pass

    @invariant()
    def kept_answers_are_the_fresh_ones(self) -> None:
        if not hasattr(self, "kept"):
            return
        asked = [f"key={DEMO_KEY}&action=balance", "key=nobody&action=balance",
                 f"key={DEMO_KEY}&action=status&order=999999",
                 f"key={DEMO_KEY}&action=status&orders={','.join(map(str, self.orders[-5:]))}"]
        asked += [f"key={DEMO_KEY}&action=status&order={i}" for i in self.orders[-4:]]
        for body in asked:
            fresh = _answer(self.fresh, body)
            assert _answer(self.kept, body) == fresh, body
            assert _answer(self.kept, body) == fresh, body  # asked again: from what was kept


def test_an_answer_that_depends_on_the_instant_is_never_kept(tmp_path: Path) -> None:
    """The moving order and the balance with a refund due are worked out again at every
    instant; a final order's answer is kept (and still right)."""
    import time

    from smmkit.mock_server.web.api import Api
    from smmkit.mock_server.web.app import ApiEndpoint

    wall = [time.time()]
    panel = build_panel(Config(db=str(tmp_path / "p.db")))
    panel.wall = lambda: wall[0]
    try:
        endpoint = ApiEndpoint(Api(panel), 1 << 20)
        order = panel.add_order(DEMO_KEY, {"service": "1", "link": "https://x.com/1",
                                           "quantity": "100"})
        status = f"key={DEMO_KEY}&action=status&order={order}"
        balance = f"key={DEMO_KEY}&action=balance"
        seen = []
        for _ in range(4):  # Pending, In progress, In progress, then final with a refund due
            seen.append((_answer(endpoint, status), _answer(endpoint, balance)))
            wall[0] += 30
        assert len({answer for answer, _ in seen}) == 4
        assert seen[-1][1] != seen[0][1]  # the refund due is in the balance before booking
        panel.settle()
        final = _answer(endpoint, status), _answer(endpoint, balance)
        wall[0] += 86_400
        assert (_answer(endpoint, status), _answer(endpoint, balance)) == final == seen[-1]
        assert len(panel.reads.memo()[endpoint]) == 2  # booked: both answers are kept now
    finally:
        panel.store.close()


def test_a_kept_answer_is_journalled_like_a_worked_out_one(tmp_path: Path) -> None:
    from smmkit.mock_server.storage.journal import Journal
    from smmkit.mock_server.web.api import Api
    from smmkit.mock_server.web.app import ApiEndpoint

    panel = build_panel(Config(db=str(tmp_path / "p.db")))
    try:
        journal = Journal(panel.store)
        endpoint = ApiEndpoint(Api(panel), 1 << 20, journal=journal)
        for _ in range(3):  # worked out, then kept twice
            _answer(endpoint, f"key={DEMO_KEY}&action=balance&note={DEMO_KEY}x")
        assert len(panel.reads.memo()[endpoint]) == 1
        shown = [{k: e[k] for k in ("action", "params", "status", "body", "key_fingerprint")}
                 for e in journal.entries()]
        assert len(shown) == 3 and shown[0] == shown[1] == shown[2]
        assert shown[0]["params"] == {"key": "***", "action": "balance", "note": "***x"}
    finally:
        panel.store.close()


ANSWERED_TWICE = [
    f"key={DEMO_KEY}&action=balance", f"key={DEMO_KEY}&action=services",
    f"key={DEMO_KEY}&action=add&service=1&link=https%3A%2F%2Fx.com%2Fa&quantity=100",
    f"key={DEMO_KEY}&action=status&order=23501", f"key={DEMO_KEY}&action=status&orders=1,23501",
    f"key={DEMO_KEY}&action=refill&order=23501", f"key={DEMO_KEY}&action=cancel&orders=23501",
    f"key={DEMO_KEY}&action=nothing&x=%FF", "key=%FF&action=balance", "action=balance",
]


def test_an_order_that_falls_due_is_booked_by_requests_that_never_read_it(
        tmp_path: Path) -> None:
    """A due, unbooked order turns kept answers off for every request (`moment.due`), so any
    request must get it booked, not only one that reads it: polls of other orders, for minutes,
    were all worked out anew while it waited."""
    panel = build_panel(Config(db=str(tmp_path / "due.db"), speed=1_000_000))
    try:
        panel.create_account("poller", "10")
        panel.add_order(DEMO_KEY, {"service": "1", "link": "https://x.com/due", "quantity": "100"})
        db = panel.store.connection()
        booked = False
        for _ in range(100):
            with panel.request():
                panel.services("poller")  # reads no order at all
            booked = db.execute("SELECT COUNT(*) FROM orders WHERE due_at IS NOT NULL"
                                ).fetchone()[0] == 0
            if booked:
                break
            time.sleep(0.05)
        assert booked
        with panel.request() as moment:
            assert not moment.due
    finally:
        panel.store.close()


@pytest.mark.parametrize("body", ANSWERED_TWICE)
def test_parameters_kept_as_read_are_never_changed_by_answering(tmp_path: Path,
                                                                body: str) -> None:
    """The endpoint keeps the parameters it read from a request's bytes and serves the same
    bytes from them again: nothing that answers may change them."""
    from smmkit.mock_server.storage.journal import Journal
    from smmkit.mock_server.web.api import Api, read_params
    from smmkit.mock_server.web.app import ApiEndpoint

    panel = build_panel(Config(db=str(tmp_path / "p.db")))
    try:
        journal = Journal(panel.store)
        endpoint = ApiEndpoint(Api(panel), 1 << 20, journal=journal)
        answers = [_answer(endpoint, body) for _ in range(3)]
        kept = endpoint._parsed[("", "application/x-www-form-urlencoded", body.encode())]
        fresh = read_params("", "application/x-www-form-urlencoded", body.encode())
        fresh.journal_fields = journal.fields(fresh.values)
        assert kept == fresh
        assert all(status == 200 for status, _ in answers)
        lines = [(e["params"], e["body"]) for e in journal.entries()]
        assert len(lines) == 3 and [b for _, b in lines] == [a.decode() for _, a in answers]
        assert lines[0][0] == lines[1][0] == lines[2][0]
    finally:
        panel.store.close()


def test_kept_parameters_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smmkit.mock_server.web import app
    from smmkit.mock_server.web.api import Api

    monkeypatch.setattr(app, "MAX_PARSED", 5)
    panel = build_panel(Config(db=str(tmp_path / "p.db")))
    try:
        endpoint = app.ApiEndpoint(Api(panel), 1 << 20)
        for n in range(12):
            _answer(endpoint, f"key={DEMO_KEY}&action=balance&n={n}")
            assert len(endpoint._parsed) <= 5
        long = f"key={DEMO_KEY}&action=balance&pad={'x' * app.MAX_PARSED_BODY}"
        assert _answer(endpoint, long)[0] == 200
        assert all(len(asked[2]) <= app.MAX_PARSED_BODY for asked in endpoint._parsed)
    finally:
        panel.store.close()


def _answer(endpoint: object, body: str) -> tuple[int, bytes]:
    from smmkit.mock_server.web.app import ApiRequest

    reply = endpoint.answer(  # type: ignore[attr-defined]
        ApiRequest("POST", "", "application/x-www-form-urlencoded", body.encode()))
    return reply.status, reply.body


KeptReplies.TestCase.settings = settings(max_examples=25, stateful_step_count=25,
                                         deadline=None)
TestKeptReplies = KeptReplies.TestCase


def test_the_epoch_moves_with_every_commit_elsewhere_checkpoints_included(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "p.db")
    other = sqlite3.connect(tmp_path / "p.db", isolation_level=None)
    try:
        seen = {store.epoch()}
        for n in range(40):
            other.execute("UPDATE meta SET value = ? WHERE name = 'x'", (str(n),))
            other.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('x', ?)", (str(n),))
            if n % 7 == 0:
                other.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL starts over
            epoch = store.epoch()
            assert epoch not in seen, n
            seen.add(epoch)
            assert store.epoch() == epoch  # and stays while nothing is committed
    finally:
        other.close()
        store.close()


# ------------------------------------------------------------------ wire format shortcuts

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                         st.text(st.characters(codec="utf-8"), max_size=12))
bodies = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=300)
@given(bodies)
def test_encode_writes_what_json_writes(body: object) -> None:
    assert encode(body) == json.dumps(body, separators=(",", ":")).encode("ascii")


@pytest.mark.parametrize("body", [{"balance": Decimal("1")}, {1: "x"}])
def test_encode_refuses_or_falls_back_like_json(body: object) -> None:
    try:
        expected = json.dumps(body, separators=(",", ":")).encode("ascii")
    except TypeError:
        with pytest.raises(TypeError):
            encode(body)
        return
    assert encode(body) == expected


# Form text with escapes among the characters: valid, truncated and non-UTF-8 %-escapes, `+`.
form_text = st.lists(st.characters(codec="utf-8") | st.sampled_from(
    ["%3A", "%2f", "%e2%82%ac", "%FF", "%", "%4", "%G1", "+", "%2B", "%26", "%3D", "%00"]),
    max_size=20).map("".join)


@settings(max_examples=500)
@given(st.lists(st.tuples(form_text, form_text), max_size=6).map(
    lambda pairs: "&".join(f"{a}={b}" if b else a for a, b in pairs)) | form_text)
def test_the_form_split_is_parse_qsl(text: str) -> None:
    raw = text.encode("utf-8", "surrogateescape")
    expected = dict(parse_qsl(text, keep_blank_values=True, errors="surrogateescape"))
    assert _from_form(raw) == expected


@given(st.binary(max_size=80) | st.lists(st.sampled_from(
    [b"a", b"=", b"&", b"%", b"+", b"%e2", b"%82", b"\xe2\x82", b"\xff", b"%zz"]),
    max_size=20).map(b"".join))
def test_the_form_split_is_parse_qsl_for_any_bytes(raw: bytes) -> None:
    text = raw.decode("utf-8", "surrogateescape")
    expected = dict(parse_qsl(text, keep_blank_values=True, errors="surrogateescape"))
    assert _from_form(raw) == expected


def test_past_a_thousand_fields_the_form_is_parse_qsls_and_past_its_limit_empty() -> None:
    many = "&".join(f"f{i}=%41{i}" for i in range(2000)).encode()
    assert _from_form(many) == {f"f{i}": f"A{i}" for i in range(2000)}
    assert _from_form(b"&".join([b"a=1"] * 10_001)) == {}


def _ids_or_error(parse, raw: str) -> list[int] | str:
    try:
        return parse(raw)
    except IncorrectRequest:
        return "refused"


@given(st.one_of(
    st.lists(st.integers(0, 10**31), max_size=102).map(lambda ids: ",".join(map(str, ids))),
    st.text(st.sampled_from("0123456789, \t٠١+-x"), max_size=40)))
def test_the_plain_id_list_shortcut_reads_what_the_general_parser_reads(raw: str) -> None:
    assert _ids_or_error(parse_ids, raw) == _ids_or_error(parse_any_ids, raw)


# ------------------------------------------------------------------ status templates


def _dialects() -> list[Dialect]:
    """Every built-in, and each with the other spelling of every status type and of money."""
    out = []
    for name in BUILTIN:
        out.append(Dialect(name))
        spec = load_dialect(name)
        flipped = {f: "integer" if kind == "string" else "string" for f, kind in spec.types.items()}
        money = {**spec.money, "as": "number" if spec.money["as"] == "string" else "string"}
        currency = {**spec.currency, "status": not spec.currency["status"]}
        out.append(Dialect(dataclasses.replace(spec, types=flipped, money=money,
                                               currency=currency)))
    return out


DIALECTS = _dialects()
views = st.builds(
    OrderView, order=st.integers(1, 2**53), charge=st.decimals(
        0, 10**12, places=5, allow_nan=False, allow_infinity=False),
    start_count=st.integers(0, 10**16), status=st.sampled_from(
        ["Pending", "Processing", "In progress", "Completed", "Partial", "Canceled"]),
    remains=st.integers(-10**6, 10**16), currency=st.sampled_from(["USD", "EUR", "VND"]))


@settings(max_examples=400)
@given(st.sampled_from(range(len(DIALECTS))), views, st.lists(st.integers(-10**6, 10**16),
                                                               max_size=4))
def test_a_status_template_writes_what_shaping_and_encoding_write(
        which: int, view: OrderView, later: list[int]) -> None:
    """The first answer makes the template, the next ones (the same order polled on, only
    `remains` moving) come from it; a marker-like start count or charge has none."""
    dialect = DIALECTS[which]
    for remains in [view.remains, *later]:
        moved = view._replace(remains=remains)
        assert dialect.status_bytes(moved) == encode(dialect.status(moved))


def test_a_field_that_shows_the_markers_digits_gets_no_template() -> None:
    dialect = Dialect("perfectpanel")
    view = OrderView(7, Decimal("1.5"), dialects._MARK_REMAINS, "In progress", 10, "USD")
    assert dialect.status_bytes(view) == encode(dialect.status(view))
    assert dialect._templates[(7, Decimal("1.5"), dialects._MARK_REMAINS, "In progress",
                               "USD")] is None
