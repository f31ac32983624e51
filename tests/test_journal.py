"""The request journal: storable whatever a client sends, a flusher that cannot wedge, and
read-your-writes across worker processes (against a real `smmkit serve` with its defaults)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time

import pytest
import requests
from engines import engine_store, sqlite_only
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from smmkit.mock_server.core.config import DEMO_KEY
from smmkit.mock_server.storage import journal as journal_module
from smmkit.mock_server.storage.journal import Journal, clean, key_print
from smmkit.mock_server.storage.sqlite import Store
from smmkit.schemas import contract
from support import start_serve, wait_ready

TOKEN = "journal-test-token"
# The unit tests below are of journal.py, the files beside an SQLite store; the PostgreSQL
# journal (a table) has its own in tests/pg. The real `smmkit serve` tests run on both engines.
SQLITE_JOURNAL = sqlite_only("a unit test of the SQLite journal's files (PostgreSQL's: tests/pg)")


@pytest.fixture
def journal():
    store = Store(":memory:")
    j = Journal(store, limit=50)
    yield j
    store.close()


def record(j: Journal, **params: str) -> None:
    j.record(at=1.0, params=params, status=200, body=b'{"ok":1}', latency=0.001, fault=None,
             service_type=None)


# Any Python string a client can produce: JSON escapes give lone surrogates, form bodies give
# surrogateescape'd bytes; `st.text()` covers every code point including U+D800-DFFF.
client_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)


@SQLITE_JOURNAL
@settings(max_examples=60, deadline=None)
@given(action=client_text, name=client_text, value=client_text)
@example(action="", name="", value="000\ud800")  # its URL-encoded forms once raised
def test_any_client_string_is_recorded_and_read_back(action, name, value):
    store = Store(":memory:")
    try:
        j = Journal(store)
        record(j, action=action, key=value, **{f"p{name}": value})
        [entry] = j.entries()
        assert entry["action"] == clean(action)
        assert entry["params"]["key"] == "***"
        # the key's text is scrubbed wherever else it appears; a key-like name is a secret too
        shown = "***" if contract.is_secret(f"p{name}") else \
            clean(contract.scrub(value, [value]) if len(value) >= 4 else value)
        assert entry["params"][clean(f"p{name}")] == shown
        assert entry["key_fingerprint"] == key_print(value)
    finally:
        store.close()


# Parameters as clients send them, the key pasted into another value now and then.
_names = st.sampled_from(["action", "order", "orders", "link", "service", "Key", "api_token",
                          "comments", "x" * 201, "é"])
_values = st.one_of(st.text(st.characters(max_codepoint=127), max_size=12),
                    st.text(max_size=6), st.just("y" * 4097))


@given(key=st.one_of(st.none(), _values), rest=st.dictionaries(_names, _values, max_size=5),
       paste=st.sampled_from(["", "{}", "https://x.test/?key={}", "%{}"]), upper=st.booleans(),
       into=_names)
def test_the_plain_redaction_is_the_general_one(key, rest, paste, upper, into):
    """The shortcut for plain requests answers exactly what the general walk does."""
    params = dict(rest)
    if key is not None:
        params["key"] = key
        if paste:
            params[into] = paste.format(key.upper() if upper else key)
    assert journal_module.redact(params) == journal_module.redact_any(params)
    assert journal_module._plain_redacted({"key": "abcd", "action": "status", "order": "1"}) \
        == {"key": "***", "action": "status", "order": "1"}  # the shortcut is taken


@SQLITE_JOURNAL
def test_a_lone_surrogate_is_shown_escaped_not_lost(journal):
    record(journal, action="\ud800", link="https://x.test/\udcff")
    [entry] = journal.entries()
    assert entry["action"] == "\\ud800" and entry["params"]["link"] == "https://x.test/\\udcff"
    assert journal.entries(action="\ud800")[0]["id"] == entry["id"]


@SQLITE_JOURNAL
def test_a_failing_copy_is_rolled_back_and_releases_the_lock(journal, monkeypatch):
    """A failure inside the reader's copy transaction rolls back, and the next read works."""
    record(journal, action="balance")

    def broken(db):
        db.execute("INSERT INTO journal_sources VALUES ('half-done', 1)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(journal, "_ingest", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        journal.entries()
    monkeypatch.undo()
    other = sqlite3.connect(journal.path, timeout=0.1)  # no lock is left behind
    other.execute("BEGIN IMMEDIATE")
    assert other.execute("SELECT COUNT(*) FROM journal_sources WHERE name = 'half-done'"
                         ).fetchone()[0] == 0
    other.execute("ROLLBACK")
    other.close()
    assert [e["action"] for e in journal.entries()] == ["balance"]


@SQLITE_JOURNAL
def test_the_flusher_thread_keeps_running_after_failures(journal, monkeypatch, capsys):
    failures = []
    real = Journal._rotate_own_log

    def sometimes(self):
        if len(failures) < 3:
            failures.append(1)
            raise OSError("disk on fire")
        return real(self)

    monkeypatch.setattr(journal_module, "FLUSH_SECONDS", 0.02)
    monkeypatch.setattr(journal_module, "ROTATE_BYTES", 10)  # every round retires the log
    monkeypatch.setattr(Journal, "_rotate_own_log", sometimes)
    record(journal, action="balance")  # starts the flusher
    first = journal._log_path
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and journal._fd is not None:
        time.sleep(0.02)
    assert len(failures) == 3 and "disk on fire" in capsys.readouterr().err
    assert journal._fd is None and first.exists()  # it failed three times, then retired the log
    assert [e["action"] for e in journal.entries()] == ["balance"]


@SQLITE_JOURNAL
def test_bounded_to_the_newest_entries(journal):
    for i in range(120):
        record(journal, action="balance", n=str(i))
        if i % 7 == 0:
            journal.flush()
    entries = journal.entries(limit=1000)
    assert len(entries) == 50 and entries[-1]["params"]["n"] == "119"
    assert [int(e["params"]["n"]) for e in entries] == list(range(70, 120))


@SQLITE_JOURNAL
def test_filters_and_cursor(journal):
    record(journal, action="balance", key="k1")
    record(journal, action="add", key="k2")
    record(journal, action="balance", key="k2")
    assert [e["action"] for e in journal.entries(key="k2")] == ["add", "balance"]
    assert len(journal.entries(key_fingerprint=key_print("k1"))) == 1
    # the journal labels a key exactly as the kit does (contract.fingerprint), so a fingerprint
    # read in a check report filters the dashboard's journal
    assert journal.entries(key="k1")[0]["key_fingerprint"] == contract.fingerprint("k1")
    assert len(contract.fingerprint("k1")) == 10
    first = journal.entries()[0]["id"]
    assert [e["action"] for e in journal.entries(after=first)] == ["add", "balance"]
    journal.clear()
    record(journal, action="status")
    assert [e["action"] for e in journal.entries()] == ["status"]


@SQLITE_JOURNAL
def test_a_retired_log_waits_for_a_reader_who_copies_and_removes_it(journal, monkeypatch):
    monkeypatch.setattr(journal_module, "ROTATE_BYTES", 2000)
    for i in range(40):
        record(journal, action="balance", n=str(i))
    old = journal._log_path
    journal.flush_in_background()  # retired, not copied: the writer touches no SQLite
    assert old.exists() and list(journal.logs.glob("*.done"))
    assert sqlite3.connect(journal.path).execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0
    record(journal, action="status")
    assert journal._log_path != old
    assert len(journal.entries(limit=1000)) == 41
    assert not old.exists() and not list(journal.logs.glob("*.done"))  # copied, then removed


@SQLITE_JOURNAL
def test_retired_logs_nobody_reads_go_once_newer_ones_hold_the_limit(journal, monkeypatch):
    """Unread, the disk holds about `limit` lines per worker, and a late reader still gets
    exactly the newest `limit` entries."""
    monkeypatch.setattr(journal_module, "ROTATE_BYTES", 2000)  # about 20 lines per log
    most = 0
    for i in range(400):
        record(journal, action="balance", n=str(i))
        journal.flush_in_background()
        most = max(most, len(list(journal.logs.glob("*.log"))))
    assert most <= 5  # 50 lines: the current log, the 2-3 that hold the rest, one retiring
    assert [int(e["params"]["n"]) for e in journal.entries(limit=1000)] == list(range(350, 400))


LONG = [bytes(f'{{"n":{n},"text":"{"é" * 700}"}}', "utf-8") for n in range(3)]  # >= 1 KB


def record_body(j: Journal, n: int, body: bytes) -> None:
    j.record(at=1.0, params={"action": "services", "n": str(n)}, status=200, body=body,
             latency=0.001, fault=None, service_type=None)


@SQLITE_JOURNAL
def test_a_repeated_long_answer_is_written_once_per_log_and_read_back_whole(journal):
    for n in range(30):
        record_body(journal, n, LONG[0])
    size = journal._log_path.stat().st_size
    assert size < 2 * len(LONG[0]) + 30 * 400  # twice in full (seen, then shared), then by sha
    assert [e["body"] for e in journal.entries(limit=1000)] == [LONG[0].decode()] * 30


@SQLITE_JOURNAL
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # same patch for all
@given(steps=st.lists(st.one_of(
    st.tuples(st.just("record"), st.sampled_from([*LONG, b'{"balance":"1"}'])),
    st.tuples(st.sampled_from(["flush", "rotate", "background", "read"]), st.none())),
    max_size=80))
# copied and trimmed out of the entries, then referred to again by the same log
@example(steps=[("record", LONG[0]), ("record", LONG[0]), ("flush", None),
                *[("record", b'{"balance":"1"}')] * 5, ("flush", None), ("record", LONG[0]),
                ("read", None)])
# the log that wrote the text is copied and removed: its entries still refer to the text
@example(steps=[*[("record", LONG[0])] * 3, ("background", None), ("read", None)])
@example(steps=[*[("record", b'{"balance":"1"}')] * 4, *[("record", LONG[0])] * 3,
                ("background", None), ("read", None)])  # the newest entry keeps its text
def test_every_answer_reads_back_whole_however_logs_are_copied_rotated_and_trimmed(
        steps, monkeypatch):
    # A shared text must outlive the entries that first held it while a log may still refer to
    # it: a limit of 5, flushes and rotations in any order, every body still read back whole.
    monkeypatch.setattr(journal_module, "ROTATE_BYTES", 3000)
    monkeypatch.setattr(journal_module, "MAX_BODIES", 0)  # trim at every copy
    store = Store(":memory:")
    try:
        j = Journal(store, limit=5)
        sent: list[bytes] = []
        for step, body in steps:
            if step == "record":
                record_body(j, len(sent), body)
                sent.append(body)
            elif step == "flush":
                j.flush()
            elif step == "rotate":
                j._rotate_own_log()
            elif step == "background":
                j.flush_in_background()
            entries = j.entries(limit=5) if step == "read" else None
            if entries is not None:
                assert [e["body"] for e in entries] == [b.decode() for b in sent[-5:]]
        assert [e["body"] for e in j.entries(limit=5)] == [b.decode() for b in sent[-5:]]
    finally:
        store.close()


@SQLITE_JOURNAL
def test_concurrent_threads_never_lose_or_split_entries(journal):
    journal.limit = 10_000

    def burst(t: int) -> None:
        for i in range(200):
            record(journal, action="add", n=f"{t}-{i}", link="x" * 3000)

    threads = [threading.Thread(target=burst, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = {e["params"]["n"] for e in journal.entries(limit=10_000)}
    assert len(seen) == 800


@SQLITE_JOURNAL
def test_an_unreadable_line_is_skipped_and_logged(journal, capsys):
    record(journal, action="balance")
    os.write(journal._fd, b"not json\n")
    record(journal, action="status")
    assert [e["action"] for e in journal.entries()] == ["balance", "status"]
    assert "unreadable line" in capsys.readouterr().err


# ------------------------------------------------------------------ a real `smmkit serve`


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = engine_store(tmp_path_factory.mktemp("journal") / "panel.db")
    proc = start_serve("--port", "0", "--db", str(db), "--admin-token", TOKEN, "--quiet")
    base = proc.url.rsplit("/api/v2", 1)[0]
    wait_ready(proc.url)
    yield base
    proc.stop()


def _journal(base: str, **params: str) -> list[dict]:
    response = requests.get(f"{base}/_control/journal", params=params, timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_read_your_writes_with_the_default_workers(served):
    """Each request is in the journal as soon as it was answered, whichever worker served it
    and whichever worker answers the read (new connections spread over both workers)."""
    for i in range(150):
        response = requests.post(f"{served}/api/v2", timeout=10,
                                 data={"key": DEMO_KEY, "action": "balance", "n": str(i)})
        assert response.status_code == 200
        newest = _journal(served, limit="3")
        assert newest[-1]["params"].get("n") == str(i), (i, newest[-1])


def test_a_lone_surrogate_request_does_not_wedge_the_server(served):
    """The finding of issue 16: `{"action":"\\ud800"}` killed the flusher inside its transaction."""
    hostile = requests.post(f"{served}/api/v2", data=b'{"action":"\\ud800"}',
                            headers={"Content-Type": "application/json"}, timeout=10)
    assert hostile.status_code < 500
    time.sleep(1)  # give every flusher a round with the hostile entry
    started = time.monotonic()
    for i in range(300):
        response = requests.post(f"{served}/api/v2", timeout=10,
                                 data={"key": DEMO_KEY, "action": "balance", "m": str(i)})
        assert response.status_code == 200
    entries = _journal(served, limit="400")
    assert time.monotonic() - started < 25  # a wedged flusher made 1 in 64 wait 30 s
    # the hostile request is journalled, its lone surrogate shown as text the journal can hold
    # (the edge reads it as the undecodable bytes it is: three U+FFFD)
    assert any(e["action"] in ("\\ud800", "\ufffd" * 3) for e in entries)
    assert {e["params"].get("m") for e in entries} >= {str(i) for i in range(300)}
    assert json.dumps(entries)  # every entry is plain, encodable JSON


@SQLITE_JOURNAL
def test_a_collected_journal_closes_its_log_and_its_store_removes_them():
    import gc

    store = Store(":memory:")
    j = Journal(store)
    record(j, action="balance")
    fd, logs = j._fd, j.logs
    assert logs.is_dir()
    del j
    gc.collect()
    link = f"/proc/self/fd/{fd}"  # closed, or reused for something else
    assert not os.path.exists(link) or str(logs) not in os.readlink(link)
    store.close()
    del store
    gc.collect()
    assert not logs.exists()


@SQLITE_JOURNAL
def test_two_journals_on_one_store_keep_each_others_logs():
    """An app built twice on one panel: collecting one journal leaves the other working."""
    import gc

    store = Store(":memory:")
    first, second = Journal(store), Journal(store)
    record(first, action="balance")
    record(second, action="status")
    del first
    gc.collect()
    record(second, action="services")
    assert [e["action"] for e in second.entries()] == ["balance", "status", "services"]
    logs = second.logs
    del second
    store.close()
    del store
    gc.collect()
    assert not logs.exists()


@SQLITE_JOURNAL
def test_a_dead_workers_log_is_copied_then_removed(journal):
    """A persistent store keeps the logs of workers from earlier runs until they are copied."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    line = json.dumps([1.0, 2.0, "balance", None, "{}", 200, "{}", 0.1, None, None])
    (journal.logs / f"{dead}-cafe.log").write_text(line + "\n")
    assert [e["action"] for e in journal.entries()] == ["balance"]
    journal.flush()  # fully copied and its writer gone: the file goes
    assert not (journal.logs / f"{dead}-cafe.log").exists()
    assert len(journal.entries()) == 1  # and nothing is copied twice
