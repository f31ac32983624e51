"""Explicit beats stored, with real `smmkit serve` processes on one real store file: an explicit
--accounts / --catalog applies to an existing store (accounts upserted by key, catalogue replaced,
orders kept), omitted ones keep the store's, and the banner says where each came from.
`--fresh` and `smmkit reset --db` remove every file; a second server on a served store is
refused, naming the first one's pid."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import requests
from engines import sqlite_only
from smmkit.mock_server.core.catalog import load_catalog
from smmkit.mock_server.core.config import DEMO_KEY
from smmkit.mock_server.serving.store_files import store_files
from support import read_line, start_serve, wait_ready

SHIPPED = [s.to_json() for s in load_catalog()]


def banner(server, timeout: float = 10) -> str:
    lines = [server.first_line]
    deadline = time.monotonic() + timeout
    while "Press Ctrl-C" not in lines[-1] and time.monotonic() < deadline:
        line = read_line(server.proc.stdout, deadline - time.monotonic())
        if not line:
            break
        lines.append(line)
    return "".join(lines)


def serve(db, *args: str):
    server = start_serve("--port", "0", "--db", str(db), "--workers", "1", *args)
    text = banner(server)
    wait_ready(server.url)
    return server, text


def api(server, **params):
    return requests.post(server.url, data=params, timeout=10).json()


def smmkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from smmkit.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=60)


def write(path, data) -> str:
    path.write_text(json.dumps(data), "utf-8")
    return str(path)


def test_explicit_files_apply_to_an_existing_store_and_omitted_ones_keep_it(tmp_path, store_db):
    db = store_db
    accounts = write(tmp_path / "accounts.json", [{"key": "k1", "balance": "10.00"},
                                                  {"key": "k2", "balance": "5", "currency": "EUR"}])
    catalog = write(tmp_path / "catalog.json", SHIPPED[:3])

    server, text = serve(db, "--accounts", accounts, "--catalog", catalog)
    try:
        assert f"catalogue: 3 services, from command line ({catalog})" in text
        assert f"accounts:  from command line ({accounts})" in text
        order = api(server, key="k1", action="add", service=1, link="https://x.test/p/1",
                    quantity=100)["order"]
        assert api(server, key="k1", action="balance") == {"balance": "9.91", "currency": "USD"}
    finally:
        assert server.stop() == 0

    server, text = serve(db)  # nothing explicit: the store keeps what it has
    try:
        assert "catalogue: 3 services, from store" in text and "accounts:  from store" in text
        assert "k1  balance 9.91 USD\n" in text  # as the wire says it, not 9.91000
        assert len(api(server, key="k1", action="services")) == 3
    finally:
        assert server.stop() == 0

    write(tmp_path / "accounts.json", [{"key": "k1", "balance": "25.50", "currency": "EUR"},
                                       {"key": "k3", "balance": "1"}])
    write(tmp_path / "catalog.json", SHIPPED[:5])
    server, text = serve(db, "--accounts", accounts, "--catalog", catalog)
    try:
        assert "catalogue: 5 services, from command line" in text
        assert api(server, key="k1", action="balance") == {"balance": "25.5", "currency": "EUR"}
        assert api(server, key="k3", action="balance") == {"balance": "1", "currency": "USD"}
        assert api(server, key="k2", action="balance") == {"balance": "5", "currency": "EUR"}
        assert len(api(server, key="k1", action="services")) == 5
        assert api(server, key="k1", action="status", order=order)["charge"] == "0.09"
    finally:
        assert server.stop() == 0


def test_a_bad_file_changes_nothing_in_the_store(tmp_path, store_db):
    db = store_db
    server, _ = serve(db)
    assert server.stop() == 0
    bad = write(tmp_path / "c.json", [{**SHIPPED[0], "spede": 5}])
    out = smmkit("serve", "--port", "0", "--db", str(db), "--catalog", bad)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr == (f"Error: {bad}: entry 0 (service 1): field 'spede': unknown field; "
                          "did you mean 'speed'?\n")
    server, text = serve(db)
    try:
        assert f"catalogue: {len(SHIPPED)} services, from store" in text
    finally:
        assert server.stop() == 0


@sqlite_only("--fresh deletes a store's files; on PostgreSQL it is refused (tests/pg)")
def test_fresh_starts_over_from_the_defaults(tmp_path):
    db = tmp_path / "panel.db"
    accounts = write(tmp_path / "a.json", [{"key": "key-of-the-old-store", "balance": "10"}])
    server, _ = serve(db, "--accounts", accounts)
    api(server, key=DEMO_KEY, action="add", service=1, link="https://x.test/p", quantity=100)
    assert server.stop() == 0
    server, text = serve(db, "--fresh")
    try:  # (a short key such as "k1" turns up inside the printed random admin token)
        assert "accounts:  from defaults" in text and "key-of-the-old-store" not in text
        assert f"{DEMO_KEY}  balance 1000 USD" in text
        assert api(server, key=DEMO_KEY, action="status", order=23501) == {
            "error": "Incorrect order ID"}
    finally:
        assert server.stop() == 0


@sqlite_only("`smmkit reset --db` removes a store's files; PostgreSQL has none")
def test_reset_removes_every_file_of_the_store(tmp_path):
    db = tmp_path / "panel.db"
    server, _ = serve(db)
    api(server, key=DEMO_KEY, action="balance")  # the journal gets a file too
    time.sleep(0.5)  # the journal flushes within 0.2 s
    assert server.stop() == 0
    assert {p.name for p in store_files(db)} >= {"panel.db", "panel.db.journal"}
    out = smmkit("reset", "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"removed {len(out.stdout.split(', '))} files of the store {db}")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert smmkit("reset", "--db", str(db)).stdout == f"nothing to remove: no store at {db}\n"


@sqlite_only("a lock file guards an SQLite store; many servers on one PostgreSQL is the point")
def test_a_second_server_on_a_served_store_is_refused_naming_the_first(tmp_path):
    db = tmp_path / "panel.db"
    first, _ = serve(db)
    try:
        three = write(tmp_path / "c.json", SHIPPED[:3])
        for args in (["serve", "--port", "0", "--catalog", three], ["reset"]):
            out = smmkit(*args, "--db", str(db))
            assert out.returncode == 1 and "Traceback" not in out.stderr
            verb = args[0]
            assert out.stderr.startswith(
                f"Error: cannot {verb} {db}: another smmkit serve (pid {first.proc.pid}) is "
                "serving it. Stop that one first, or use another --db."), out.stderr
        # the refused one changed nothing: the first still serves its whole catalogue
        assert len(api(first, key=DEMO_KEY, action="services")) == len(SHIPPED)
    finally:
        assert first.stop() == 0
    second, _ = serve(db)  # once the first has stopped, the store is free again
    assert second.stop() == 0


def test_one_servers_workers_share_the_store(tmp_path, store_db):
    db = store_db
    server = start_serve("--port", "0", "--db", str(db), "--workers", "3")
    try:
        wait_ready(server.url)
        orders = {api(server, key=DEMO_KEY, action="add", service=1,
                      link=f"https://x.test/p/{n}", quantity=100)["order"] for n in range(12)}
        assert len(orders) == 12
    finally:
        assert server.stop() == 0
