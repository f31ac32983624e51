"""Fill a panel store with N realistic orders, straight into SQLite (for the scale benchmarks).

    python bench/populate.py DB --orders 1000000 --accounts bench-accounts.json

The schema, the accounts and the catalogue come from the fake itself (`Store(path)` and
`build_panel(Config(db=path, accounts=...))`, once); then the `orders` table (columns exactly as
in `mock_server/store.py`) and the `ledger` charge/refund rows get bulk-inserted with
`executemany` in big transactions, `synchronous=OFF`, WAL journal. Orders are shared round-robin
between the accounts; ~95% are final (Completed, a few Partial with their refund, a few
Canceled), ~5% are active with their end hours in the future, so no request of a benchmark has to
settle them. Balances are left as configured: a benchmark needs funds, not a history that adds up.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import time
from decimal import Decimal
from pathlib import Path

from smmkit.mock_server.core.config import Config, build_panel
from smmkit.mock_server.core.money import charge_for, refund_for
from smmkit.mock_server.core.panel import FIRST_ORDER_ID
from smmkit.mock_server.storage.sqlite import Store

BATCH = 50_000
ACTIVE_SHARE = 0.05
_ORDER_SQL = (
    "INSERT INTO orders (id, account_id, service_id, link, charge, refunded, total, per_run, "
    "runs, interval, created_at, start_at, unit_seconds, outcome, delivered_final, start_count, "
    "cancel_at, final_status, final_remains, final_start_count, final_at, due_at, params) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_LEDGER_SQL = ("INSERT INTO ledger (account_id, at, kind, amount, order_id) "
               "VALUES (?, ?, ?, ?, ?)")


def _offers(panel: object, rng: random.Random) -> list[tuple[int, int, str, Decimal, float]]:
    """(service id, quantity, charge string, charge, units per second) for Default services."""
    offers = []
    services = [s for s in panel.catalog().values()  # type: ignore[attr-defined]
                if s.enabled and s.type == "Default"]
    for service in services:
        for _ in range(8):
            quantity = rng.randint(service.min, min(service.max, service.min * 20))
            charge = charge_for(service.rate, quantity)
            offers.append((service.service, quantity, str(charge), charge, service.speed / 60.0))
    return offers


def populate(db: str | Path, orders: int, accounts: str | None, *, seed: int = 7,
             quiet: bool = False) -> dict[str, float]:
    """Create the store at `db` and insert `orders` orders; timings in seconds."""
    started = time.perf_counter()
    panel = build_panel(Config(db=str(db), accounts=accounts))
    account_ids = [row[0] for row in panel.store.connection().execute(
        "SELECT id FROM accounts WHERE enabled = 1 ORDER BY id")]
    panel.store.close()
    Store(db).close()  # the schema exists whatever build_panel did
    rng = random.Random(seed)
    offers = _offers(panel, rng)
    now = time.time()

    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-200000")
    first = (conn.execute("SELECT MAX(id) FROM orders").fetchone()[0] or FIRST_ORDER_ID - 1) + 1
    n_accounts = len(account_ids)
    done = 0
    while done < orders:
        count = min(BATCH, orders - done)
        order_rows, ledger_rows = [], []
        for i in range(done, done + count):
            order_id = first + i
            account_id = account_ids[i % n_accounts]
            service_id, quantity, charge_text, charge, per_second = offers[rng.randrange(
                len(offers))]
            link = f"https://www.instagram.com/p/bench{order_id:x}/"
            params = f'{{"quantity": {quantity}, "runs": 1, "interval": 0}}'
            start_count = rng.randint(120, 48_000)
            unit_seconds = 1.0 / per_second
            if rng.random() < ACTIVE_SHARE:
                # Active: placed recently, delivering slowly, ends 1-24 h from now.
                created = now - rng.uniform(0, 600)
                start_at = created + rng.uniform(5, 300)
                end = now + rng.uniform(3600, 86400)
                unit_seconds = (end - start_at) / quantity
                order_rows.append((
                    order_id, account_id, service_id, link, charge_text, "0", quantity, quantity,
                    1, 0.0, created, start_at, unit_seconds, "normal", quantity, start_count,
                    None, None, None, None, None, end, params))
                ledger_rows.append((account_id, created, "charge", f"-{charge_text}", order_id))
                continue
            created = now - rng.uniform(86400, 90 * 86400)
            start_at = created + rng.uniform(5, 600)
            end = start_at + quantity * unit_seconds
            roll = rng.random()
            if roll < 0.85:
                status, outcome, remains, delivered = "Completed", "normal", 0, quantity
            elif roll < 0.93:
                status, outcome = "Completed", "over"
                remains = -rng.randint(1, max(1, quantity // 50))
                delivered = quantity - remains
            elif roll < 0.98:
                status, outcome = "Partial", "partial"
                delivered = rng.randint(1, quantity - 1)
                remains = quantity - delivered
            else:
                status, outcome, remains, delivered = "Canceled", "provider_cancel", quantity, 0
                end = start_at
            refund = refund_for(charge, remains, quantity)
            shown_start = start_count if delivered else 0
            order_rows.append((
                order_id, account_id, service_id, link, charge_text, str(refund), quantity,
                quantity, 1, 0.0, created, start_at, unit_seconds, outcome, delivered,
                start_count, None, status, remains, shown_start, end, None, params))
            ledger_rows.append((account_id, created, "charge", f"-{charge_text}", order_id))
            if refund:
                ledger_rows.append((account_id, end, "refund", str(refund), order_id))
        conn.execute("BEGIN")
        conn.executemany(_ORDER_SQL, order_rows)
        conn.executemany(_LEDGER_SQL, ledger_rows)
        conn.execute("COMMIT")
        done += count
        if not quiet:
            print(f"\r  {done:>9,} / {orders:,} orders", end="", file=sys.stderr, flush=True)
    if not quiet and orders:
        print(file=sys.stderr)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    elapsed = time.perf_counter() - started
    return {"orders": orders, "seconds": round(elapsed, 2)}


def sample_ids(db: str | Path, per_key: int = 500, seed: int = 3) -> dict[str, list[int]]:
    """Up to `per_key` order ids of each account, spread over the whole table."""
    conn = sqlite3.connect(str(db))
    try:
        rng = random.Random(seed)
        out: dict[str, list[int]] = {}
        lo, hi = conn.execute("SELECT MIN(id), MAX(id) FROM orders").fetchone()
        for account_id, key in conn.execute("SELECT id, key FROM accounts ORDER BY id").fetchall():
            ids: list[int] = []
            if lo is not None:
                # Random probes into the id range, then the first order of that account from there.
                for _ in range(per_key):
                    row = conn.execute("SELECT id FROM orders WHERE id >= ? AND account_id = ? "
                                       "ORDER BY id LIMIT 1",
                                       (rng.randint(lo, hi), account_id)).fetchone()
                    if row:
                        ids.append(row[0])
            out[key] = sorted(set(ids))
        return out
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db")
    parser.add_argument("--orders", type=int, required=True)
    parser.add_argument("--accounts", help="accounts JSON file (default: the demo accounts)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if Path(args.db).exists():
        parser.error(f"{args.db} exists; populate a fresh file")
    print(json.dumps(populate(args.db, args.orders, args.accounts, seed=args.seed)))


if __name__ == "__main__":
    main()
