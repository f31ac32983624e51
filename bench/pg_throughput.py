"""Throughput of one and of two `smmkit serve` processes on one PostgreSQL database.

    python bench/pg_throughput.py [--db postgresql://...] [--seconds 8] [--workers 1]

Without --db a throw-away PostgreSQL is started from the installed binaries (tests/pg/cluster.py).
Each scenario (balance: a read; status: polling one order; add: a write under the one write
lock; mix: smm.lua's realistic mix) runs with wrk against one server, then against two servers
at once (one wrk per server, half the connections each, the request rates added). The machine
is shared and loaded: read the ratio two/one measured in the same run, not the absolute numbers.
Everything binds and talks to 127.0.0.1 only; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "tests")]

from harness import run_wrk, write_data_file  # noqa: E402

KEY = "bench-key"
SCENARIOS = ("balance", "status", "add", "mix")


def start(db: str, workers: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from smmkit.cli import main; main()", "serve", "--db", db,
         "--port", "0", "--workers", str(workers), "--admin-token", "bench"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline().decode()
    if "listening on " not in line:
        raise SystemExit(f"serve printed {line!r}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, line.split("listening on ", 1)[1].strip()


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def prepare(db: str) -> list[int]:
    """A rich bench account, a frozen clock (no settling mid-run) and 100 orders to poll."""
    from smmkit.mock_server.core.config import Config, build_panel

    panel = build_panel(Config(db=db, clock="manual"))
    panel.create_account(KEY, Decimal("100000000"))
    ids = [panel.add_order(KEY, {"service": "3", "quantity": "20",
                                 "link": f"https://bench.example/seed/{n}"}) for n in range(100)]
    panel.store.close()
    return ids


def measure(urls: list[str], scenario: str, seconds: float, data: Path,
            connections: int) -> float:
    results: list[dict[str, float]] = []

    def one(url: str) -> None:
        results.append(run_wrk(url, scenario, seconds, data, f"{scenario}{time.time_ns()}",
                               threads=1, connections=connections // len(urls)))

    runners = [threading.Thread(target=one, args=(url,)) for url in urls]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    errors = sum(r["error_bodies"] + r["non_json"] + r["err_status"] + r["socket_errors"]
                 for r in results)
    if errors:
        print(f"  ({scenario}: {errors} error answers or socket errors)", file=sys.stderr)
    return sum(r["rps"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="postgresql:// URL (default: a throw-away server)")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--workers", type=int, default=1, help="workers per server")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    cluster = None
    if args.db is None:
        from pg.cluster import Cluster

        cluster = Cluster()
        args.db = cluster.url
    try:
        data = write_data_file(Path(tempfile.mkdtemp()) / "keys.tsv", {KEY: prepare(args.db)})
        servers = [start(args.db, args.workers) for _ in range(2)]
        try:
            rows = {}
            for scenario in SCENARIOS:
                one = measure([servers[0][1]], scenario, args.seconds, data, args.connections)
                two = measure([s[1] for s in servers], scenario, args.seconds, data,
                              args.connections)
                rows[scenario] = {"one_server_rps": round(one, 1), "two_servers_rps": round(two, 1),
                                  "ratio": round(two / one, 2) if one else None}
                print(f"{scenario:8s} one server {one:8.1f} req/s   two servers {two:8.1f} "
                      f"req/s   ratio {rows[scenario]['ratio']}")
            print("BENCHJSON " + json.dumps({"workers_per_server": args.workers,
                                             "seconds": args.seconds, "results": rows}))
        finally:
            for proc, _ in servers:
                stop(proc)
    finally:
        if cluster is not None:
            cluster.destroy()


if __name__ == "__main__":
    main()
