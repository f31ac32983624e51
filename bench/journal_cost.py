"""What the journal costs per /api/v2 request: a plain timing loop, not a timed test.

    python bench/journal_cost.py                                 # the hot-path call only
    python bench/journal_cost.py http://127.0.0.1:8080/api/v2    # and requests to a server
Micro: `Journal.record()` in one thread (what every request pays). End to end: mean and median
of sequential `balance` requests over one keep-alive connection to a running `smmkit serve`.
"""

from __future__ import annotations

import statistics
import sys
import time

from smmkit.mock_server.storage.journal import Journal
from smmkit.mock_server.storage.sqlite import Store


def micro(n: int = 20_000) -> float:
    store = Store(":memory:")
    journal = Journal(store)
    params = {"key": "smmkit-demo-key", "action": "add", "service": "1", "link": "https://x.test/p",
              "quantity": "100"}
    body = b'{"order":23501}'
    started = time.perf_counter()
    for i in range(n):
        journal.record(at=float(i), params=params, status=200, body=body, latency=0.0004,
                       fault=None, service_type="Default")
    elapsed = time.perf_counter() - started
    journal.entries(limit=1)  # everything is readable afterwards
    store.close()
    return elapsed / n * 1e6


def end_to_end(url: str, n: int = 2000) -> tuple[float, float]:
    import requests

    session = requests.Session()
    data = {"key": "smmkit-demo-key", "action": "balance"}
    for _ in range(100):
        session.post(url, data=data)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        session.post(url, data=data)
        times.append(time.perf_counter() - started)
    return statistics.mean(times) * 1e6, statistics.median(times) * 1e6


if __name__ == "__main__":
    print(f"Journal.record: {micro():.1f} µs per call")
    if len(sys.argv) > 1:
        mean, median = end_to_end(sys.argv[1])
        print(f"balance over HTTP ({sys.argv[1]}): mean {mean:.0f} µs, median {median:.0f} µs")
