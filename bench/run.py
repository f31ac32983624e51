"""smmkit benchmarks: `python bench/run.py` (full, ~10 min) or `python bench/run.py --quick`.

1. Scenarios against `smmkit serve --port 0 --db FILE --workers 2` (production settings) with
   `wrk -t2 -c32 --latency -s bench/smm.lua`: balance, services, status (of final orders and,
   `moving`, of orders still being delivered), status of 100 ids, add, and the mix; each also
   as a ratio to the raw-WSGI baseline (bench/baseline.py) served by the same server settings.
2. Scale: balance / status / add with 1 000, 100 000 and 1 000 000 orders already in the store
   (bench/populate.py), with start-up time and the server's peak RSS.
3. `--profile`: py-spy samples both workers during a balance and an add load.
4. `--peer wiremock`: a JIT-warmed WireMock serving static stubs of each scenario's answer
   (bench/peer_wiremock.py) runs beside the fake; every scenario is measured on smmkit, then on
   WireMock, in turn, with the same wrk settings, and reported as smmkit ÷ WireMock next to
   smmkit ÷ baseline.

Every run reports the server's CPU per request (µs, from /proc: bench/cpu.py) for each scenario.
Tables, targets and RESULTS.md: bench/report.py; installing with consent: bench/tools.py.

Missing tools (wrk; py-spy for --profile; Java and the npm package `wiremock` for --peer
wiremock, the latter into bench/.peers/) are installed only with consent: `--install` installs
them, an interactive run asks first, and otherwise the commands are printed and the run stops.

Results: a table on stdout, bench/results/<date>[-granian][-wiremock][-quick].json, and (full
runs) bench/RESULTS.md (builtin, the default server) or bench/RESULTS-<server>.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import cpu  # noqa: E402
import harness as h  # noqa: E402
import peer_wiremock  # noqa: E402
import report  # noqa: E402
import requests  # noqa: E402
import tools  # noqa: E402
from populate import populate, sample_ids  # noqa: E402

KEYS = [f"bench-key-{i}" for i in range(1, 5)]
FUNDS = "1000000000"
SEED_ORDERS_PER_KEY = 150  # service 3 × 20: final and booked before the first poll
# `moving` polls orders still being delivered: service 16 × 200,000 starts 10 s after it is
# placed and is delivered over 10 minutes (a Partial one ends after 4 at the earliest), so
# every answer is worked out at its instant. They are placed just before the scenario.
MOVING_ORDERS_PER_KEY = 40
MOVING_ORDER = {"service": "16", "quantity": "200000"}
MOVING_START_S = 11  # their start delay, and a second
SCENARIOS, SCALE_SCENARIOS = report.SCENARIOS, report.SCALE_SCENARIOS


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def accounts_file(work: Path) -> Path:
    path = work / "accounts.json"
    path.write_text(json.dumps([{"key": k, "balance": FUNDS, "currency": "USD"} for k in KEYS]))
    return path


SERVER = "builtin"  # `--server`: which of smmkit serve's servers to measure


def smmkit(db: Path, accounts: Path, work: Path, workers: int) -> h.Server:
    argv = [*h.serve_command(), "--port", "0", "--db", str(db), "--workers", str(workers),
            "--accounts", str(accounts), "--server", SERVER]
    return h.Server(argv, work / "server.log")


def seed_orders(url: str, per_key: int, order: dict[str, str] | None = None
                ) -> dict[str, list[int]]:
    """Orders placed through the API (service 3 × 20 unless `order` says otherwise), for the
    status scenarios to poll."""
    ids: dict[str, list[int]] = {}
    with requests.Session() as session:
        for key in KEYS:
            ids[key] = []
            for n in range(per_key):
                reply = session.post(url, data={
                    "key": key, "action": "add", **(order or {"service": "3", "quantity": "20"}),
                    "link": f"https://seed.example/{key}/{n}/{time.time_ns()}"}, timeout=10).json()
                if "order" not in reply:
                    raise RuntimeError(f"seeding an order failed: {reply}")
                ids[key].append(reply["order"])
    return ids


def measure(url: str, scenario: str, seconds: float, warm: float, data: Path, server_pid: int,
            label: str = "") -> dict:
    """One scenario: a warm-up run, then the measured run with the server's CPU read around it."""
    nonce = f"{time.time_ns():x}"
    if warm:
        h.run_wrk(url, scenario, warm, data, nonce + "w")
    meter = cpu.CpuMeter(server_pid)
    meter.start()
    result = h.run_wrk(url, scenario, seconds, data, nonce)
    result["cpu_s"] = round(meter.stop(), 3)
    result["cpu_us_per_req"] = cpu.per_request_us(meter.seconds, result["requests"])
    result["p50_ms"] = round(result["p50_us"] / 1000, 2)
    result["p99_ms"] = round(result["p99_us"] / 1000, 2)
    log(f"  {label}{scenario:<9} {result['rps']:>9.0f} req/s  p50 {result['p50_ms']:>6.2f} ms  "
        f"p99 {result['p99_ms']:>7.2f} ms  CPU {result['cpu_us_per_req']} µs/req  errors: "
        f"status {result['err_status']}, socket {result['socket_errors']}, "
        f"bodies {result['error_bodies']}")
    return result


def in_progress(url: str, ids: dict[str, list[int]]) -> dict[str, list[int]]:
    """The orders among `ids` that are "In progress" now (a few of any seeded batch end at once,
    Canceled by their drawn outcome); a run left with under half of them stops."""
    moving: dict[str, list[int]] = {}
    with requests.Session() as session:
        for key, owned in ids.items():
            reply = session.post(url, data={"key": key, "action": "status",
                                            "orders": ",".join(map(str, owned))}, timeout=10)
            moving[key] = [int(i) for i, a in reply.json().items()
                           if a.get("status") == "In progress"]
    if sum(map(len, moving.values())) * 2 < sum(map(len, ids.values())):
        raise RuntimeError(f"too few of the moving orders are in progress: {moving}")
    return moving


def run_baseline(work: Path, seconds: float, warm: float, data: Path, workers: int) -> dict:
    log(f"baseline: raw WSGI constant body, same {SERVER} settings")
    server = h.Server([sys.executable, str(h.BENCH / "baseline.py"), "--workers", str(workers),
                       "--server", SERVER],
                      work / "baseline.log")
    with server:
        server.wait_ready("k")
        return measure(server.url, "const", seconds, warm, data, server.proc.pid)


def start_peer(stack: contextlib.ExitStack, jar: Path, server_url: str, ids: dict[str, list[int]],
               work: Path, data: Path, jit_warm: float) -> peer_wiremock.WireMock:
    """WireMock with stubs sampled from the fake under test, JIT-warmed by every scenario's load
    in turn (a mix-only warm-up left the first scenarios measured while C2 was still compiling:
    balance then cost the JVM 1,088 µs of CPU per request against 178 for the mix after it)."""
    answers = peer_wiremock.sample_answers(server_url, KEYS[0], ids[KEYS[0]],
                                           f"https://bench.example/sample/{time.time_ns()}")
    peer = stack.enter_context(peer_wiremock.WireMock(jar, answers, work))
    log(f"peer: {' '.join(peer.argv)}")
    log(f"  JIT warm-up: {jit_warm:.0f} s of each scenario ({jit_warm * len(SCENARIOS):.0f} s)")
    for scenario in SCENARIOS:  # every stub and body size hot before the first measurement
        h.run_wrk(peer.url, scenario, jit_warm, data, f"jit{time.time_ns():x}")
    peer.jit_settle_us = settle_jit(peer, data)
    return peer


def settle_jit(peer: peer_wiremock.WireMock, data: Path, rounds: int = 12) -> list[float | None]:
    """More 2 s rounds of `mix` until the JVM's CPU per request stops falling: the last two
    rounds within 10% of the lowest so far, at most `rounds`. On a busy machine the JIT's
    compiler threads get little CPU, and one round near the one before was not enough: a run
    that stopped at [292, 332] µs/req measured WireMock's mix at 91 µs/req by its end, so its
    first scenarios were measured cold. Returns the µs/req series."""
    series: list[float | None] = []
    for _ in range(rounds):
        meter = cpu.CpuMeter(peer.pid)
        meter.start()
        done = h.run_wrk(peer.url, "mix", 2, data, f"jit{time.time_ns():x}")
        series.append(cpu.per_request_us(meter.stop(), done["requests"]))
        if len(series) >= 3 and None not in series[-2:]:
            lowest = min(v for v in series if v is not None)
            if all(v is not None and v <= 1.1 * lowest for v in series[-2:]):
                break
    log(f"  JIT settled: JVM CPU µs/req per 2 s round of mix {series}")
    return series


def run_main(work: Path, seconds: float, warm: float, workers: int,
             peer_jar: Path | None = None, jit_warm: float = 0) -> dict:
    """The scenarios on the fake (and, with a peer, on the peer in turn, scenario by scenario,
    both servers up throughout, so both see the same machine state). `jit_warm`: seconds of the
    peer's JIT warm-up per scenario."""
    accounts = accounts_file(work)
    db = work / "main.db"
    log(f"fake: {' '.join(smmkit(db, accounts, work, workers).argv)}")
    data = work / "main-ids.txt"
    h.write_data_file(data, {k: [] for k in KEYS})
    results = {"baseline": run_baseline(work, seconds, warm, data, workers)}
    with smmkit(db, accounts, work, workers) as server, contextlib.ExitStack() as stack:
        startup = server.wait_ready(KEYS[0])
        ids = seed_orders(server.url, SEED_ORDERS_PER_KEY)
        h.write_data_file(data, ids)
        moving = work / "moving-ids.txt"
        data_of = {"moving": moving}
        peer = start_peer(stack, peer_jar, server.url, ids, work, data, jit_warm) \
            if peer_jar else None
        h.run_wrk(server.url, "balance", warm or 1, data, "warm")  # warm-up
        peer_results: dict[str, dict] = {}
        for scenario in SCENARIOS:
            ids_file = data_of.get(scenario, data)
            if scenario == "moving":  # placed now; past their start, those being delivered
                placed = seed_orders(server.url, MOVING_ORDERS_PER_KEY, MOVING_ORDER)
                time.sleep(MOVING_START_S)
                h.write_data_file(moving, in_progress(server.url, placed))
            results[scenario] = measure(server.url, scenario, seconds, warm, ids_file,
                                        server.proc.pid, "smmkit   ")
            if peer:
                peer_results[scenario] = measure(peer.url, scenario, seconds, warm, ids_file,
                                                 peer.pid, "wiremock ")
        results["_server"] = {"startup_s": round(startup, 3), **h.memory(server.pids())}
        if peer:
            results["_peer"] = {"name": "wiremock", "version": peer_wiremock.VERSION,
                                "java": peer_wiremock.java_version(), "argv": peer.argv,
                                "jit_warm_s": jit_warm * len(SCENARIOS),
                                "jit_settle_cpu_us": peer.jit_settle_us, "scenarios": peer_results,
                                **h.memory([peer.pid])}
    add_ratios(results)
    return results


def add_ratios(results: dict) -> None:
    """x_baseline (and x_peer with a peer) on every scenario: req/s ÷ the other's req/s."""
    base = results["baseline"]["rps"]
    peer = results.get("_peer", {}).get("scenarios", {})
    for scenario in SCENARIOS:
        result = results[scenario]
        result["x_baseline"] = round(result["rps"] / base, 3)
        if scenario in peer:
            result["x_peer"] = round(result["rps"] / peer[scenario]["rps"], 3)


def run_scale(work: Path, sizes: list[int], seconds: float, warm: float, workers: int) -> dict:
    accounts = accounts_file(work)
    out = {}
    for size in sizes:
        db = work / f"scale-{size}.db"
        log(f"scale: {size:,} orders")
        generated = populate(db, size, str(accounts), quiet=True)
        log(f"  populated in {generated['seconds']} s ({db.stat().st_size / 2**20:.0f} MB)")
        data = h.write_data_file(work / f"scale-{size}-ids.txt", sample_ids(db, 500))
        entry: dict = {"populate_s": generated["seconds"],
                       "db_mb": round(db.stat().st_size / 2**20, 1)}
        with smmkit(db, accounts, work, workers) as server:
            entry["startup_s"] = round(server.wait_ready(KEYS[0]), 3)
            entry["announce_s"] = round(server.first_line_at - server.spawned_at, 3)
            log(f"  start-up {entry['startup_s']} s")
            for scenario in SCALE_SCENARIOS:
                entry[scenario] = measure(server.url, scenario, seconds, warm, data,
                                          server.proc.pid)
            entry.update(h.memory(server.pids()))
            log(f"  peak RSS Σ(master+workers) {entry['peak_rss_mb']} MB, PSS {entry['pss_mb']} MB")
        out[str(size)] = entry
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    return out


def run_profile(work: Path, seconds: float, workers: int) -> dict:
    """py-spy on every worker during a balance and an add load; collapsed stacks in results/."""
    import profile_tools

    spy = profile_tools.ensure_py_spy()
    accounts = accounts_file(work)
    out: dict = {}
    with smmkit(work / "profile.db", accounts, work, workers) as server:
        server.wait_ready(KEYS[0])
        data = h.write_data_file(work / "profile-ids.txt", seed_orders(server.url, 120))
        for scenario in ("balance", "add", "status"):
            stacks = profile_tools.record(spy, server.workers(), server.url, scenario, seconds,
                                          data, h.BENCH / "results" / f"profile-{scenario}")
            out[scenario] = profile_tools.summarise(stacks)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few seconds per scenario")
    parser.add_argument("--seconds", type=float, help="wrk duration per scenario")
    parser.add_argument("--sizes", help="comma list of store sizes for the scale runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="also run py-spy (PROFILE data)")
    parser.add_argument("--no-scale", action="store_true")
    parser.add_argument("--server", choices=["builtin", "gunicorn", "granian"], default="builtin",
                        help="smmkit serve --server (the baseline runs on the same server)")
    parser.add_argument("--peer", choices=["wiremock"],
                        help="also measure this mock, scenario by scenario, in the same run")
    parser.add_argument("--peer-cache", type=Path, default=peer_wiremock.DEFAULT_CACHE,
                        help="where the peer is installed (default: bench/.peers)")
    parser.add_argument("--install", action="store_true",
                        help="install missing tools (wrk, py-spy, Java, WireMock) without asking")
    args = parser.parse_args(argv)
    global SERVER
    SERVER = args.server
    tools.require_tools(args.profile, args.install, args.peer, args.peer_cache)
    peer_jar = peer_wiremock.jar(args.peer_cache) if args.peer else None
    jit_warm = peer_wiremock.JIT_WARM_S["quick" if args.quick else "full"]
    seconds = args.seconds or (3 if args.quick else 20)
    warm = 1 if args.quick else 3
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [1000, 100_000] if args.quick else [1000, 100_000, 1_000_000])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smmkit-bench-") as tmp:
        work = Path(tmp)
        main_results = run_main(work, seconds, warm, args.workers, peer_jar, jit_warm)
        scale = {} if args.no_scale else run_scale(work, sizes, seconds, warm, args.workers)
        profile = run_profile(work, 8 if args.quick else 15, args.workers) if args.profile else {}
    checks = report.check_targets(main_results, scale)
    text = report.table(main_results, scale, checks)
    print(text)
    date = dt.date.today().isoformat()
    info = {"date": date, "quick": args.quick, "seconds": seconds, "warm": warm,
            "workers": args.workers, "server": SERVER, "peer": args.peer,
            "machine": report.machine(),
            "command": " ".join(["python", "bench/run.py", *(argv or sys.argv[1:])]),
            "wall_s": round(time.perf_counter() - started, 1)}
    results_dir = h.BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    suffix = "" if SERVER == "builtin" else f"-{SERVER}"
    tags = [suffix, f"-{args.peer}" if args.peer else "", "-quick" if args.quick else ""]
    name = f"{date}{''.join(tags)}.json"
    (results_dir / name).write_text(json.dumps(
        {**info, "scenarios": main_results, "scale": scale, "targets": checks,
         "profile": profile}, indent=1))
    if not args.quick:
        report.write_results_md(h.BENCH / f"RESULTS{suffix}.md", info, info["command"], text, name,
                         main_results.get("_peer"))
    log(f"wrote bench/results/{name} in {info['wall_s']} s")


if __name__ == "__main__":
    main()
