"""smmkit benchmarks: `python bench/run.py` (full, ~10 min) or `python bench/run.py --quick`.

1. Scenarios against `smmkit serve --port 0 --db FILE --workers 2` (production settings) with
   `wrk -t2 -c32 --latency -s bench/smm.lua`: balance, services, status, status of 100 ids, add,
   and the mix; each also as a ratio to the raw-WSGI baseline (bench/baseline.py) served by the
   same gunicorn settings.
2. Scale: balance / status / add with 1 000, 100 000 and 1 000 000 orders already in the store
   (bench/populate.py), with start-up time and the server's peak RSS.
3. `--profile`: py-spy samples both workers during a balance and an add load.

Missing tools (wrk; py-spy for --profile) are installed only with consent: `--install` installs
them, an interactive run asks first, and otherwise the command is printed and the run stops.

Results: a table on stdout, bench/results/<date>[-granian][-quick].json, and (full runs)
bench/RESULTS.md (gunicorn, the default server) or bench/RESULTS-granian.md (`--server granian`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import harness as h  # noqa: E402
import requests  # noqa: E402
from populate import populate, sample_ids  # noqa: E402

KEYS = [f"bench-key-{i}" for i in range(1, 5)]
FUNDS = "1000000000"
SEED_ORDERS_PER_KEY = 150
SCENARIOS = ["balance", "services", "status", "multi", "add", "mix"]
SCALE_SCENARIOS = ["balance", "status", "add"]
TARGETS = {  # (metric, comparison, value) — issue 6
    "balance": [("rps", ">=", 8000), ("ratio", ">=", 0.3)],
    "status": [("rps", ">=", 8000), ("ratio", ">=", 0.3)],
    "multi": [("p99_ms", "<", 25)],
    "add": [("rps", ">=", 2000)],
}


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


def seed_orders(url: str, per_key: int) -> dict[str, list[int]]:
    """Orders placed through the API, for the status scenarios to poll."""
    ids: dict[str, list[int]] = {}
    with requests.Session() as session:
        for key in KEYS:
            ids[key] = []
            for n in range(per_key):
                reply = session.post(url, data={
                    "key": key, "action": "add", "service": "3", "quantity": "20",
                    "link": f"https://seed.example/{key}/{n}/{time.time_ns()}"}, timeout=10).json()
                if "order" not in reply:
                    raise RuntimeError(f"seeding an order failed: {reply}")
                ids[key].append(reply["order"])
    return ids


def measure(url: str, scenario: str, seconds: float, warm: float, data: Path) -> dict:
    nonce = f"{time.time_ns():x}"
    if warm:
        h.run_wrk(url, scenario, warm, data, nonce + "w")
    result = h.run_wrk(url, scenario, seconds, data, nonce)
    result["p50_ms"] = round(result["p50_us"] / 1000, 2)
    result["p99_ms"] = round(result["p99_us"] / 1000, 2)
    log(f"  {scenario:<9} {result['rps']:>9.0f} req/s  p50 {result['p50_ms']:>6.2f} ms  "
        f"p99 {result['p99_ms']:>7.2f} ms  errors: status {result['err_status']}, "
        f"socket {result['socket_errors']}, bodies {result['error_bodies']}")
    return result


def run_baseline(work: Path, seconds: float, warm: float, data: Path, workers: int) -> dict:
    log(f"baseline: raw WSGI constant body, same {SERVER} settings")
    server = h.Server([sys.executable, str(h.BENCH / "baseline.py"), "--workers", str(workers),
                       "--server", SERVER],
                      work / "baseline.log")
    with server:
        server.wait_ready("k")
        return measure(server.url, "const", seconds, warm, data)


def run_main(work: Path, seconds: float, warm: float, workers: int) -> dict:
    accounts = accounts_file(work)
    db = work / "main.db"
    log(f"fake: {' '.join(smmkit(db, accounts, work, workers).argv)}")
    data = work / "main-ids.txt"
    h.write_data_file(data, {k: [] for k in KEYS})
    results = {"baseline": run_baseline(work, seconds, warm, data, workers)}
    with smmkit(db, accounts, work, workers) as server:
        startup = server.wait_ready(KEYS[0])
        ids = seed_orders(server.url, SEED_ORDERS_PER_KEY)
        h.write_data_file(data, ids)
        h.run_wrk(server.url, "balance", warm or 1, data, "warm")  # warm-up
        for scenario in SCENARIOS:
            results[scenario] = measure(server.url, scenario, seconds, warm, data)
        results["_server"] = {"startup_s": round(startup, 3), **h.memory(server.pids())}
    return results


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
                entry[scenario] = measure(server.url, scenario, seconds, warm, data)
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


def check_targets(main: dict, scale: dict) -> list[dict]:
    base = main["baseline"]["rps"]
    checks = []
    for scenario, rules in TARGETS.items():
        result = main[scenario]
        values = {"rps": result["rps"], "ratio": result["rps"] / base, "p99_ms": result["p99_ms"]}
        for metric, op, bound in rules:
            value = values[metric]
            ok = value >= bound if op == ">=" else value < bound
            checks.append({"what": f"{scenario} {metric} {op} {bound}", "value": round(value, 3),
                           "ok": ok})
    sizes = sorted(scale, key=int)
    if len(sizes) >= 2:
        small, big = scale[sizes[0]], scale[sizes[-1]]
        for scenario in ("status", "add"):
            drop = 1 - big[scenario]["rps"] / small[scenario]["rps"]
            checks.append({"what": f"{scenario} at {int(sizes[-1]):,} within 10% of "
                                   f"{int(sizes[0]):,} orders", "value": f"{-drop:+.1%}",
                           "ok": drop <= 0.10})
        checks.append({"what": f"peak RSS < 300 MB at {int(sizes[-1]):,}",
                       "value": big["peak_rss_mb"], "ok": big["peak_rss_mb"] < 300})
        checks.append({"what": f"start-up < 2 s at {int(sizes[-1]):,}",
                       "value": big["startup_s"], "ok": big["startup_s"] < 2})
    return checks


def table(main: dict, scale: dict, checks: list[dict]) -> str:
    base = main["baseline"]["rps"]
    lines = ["| scenario | req/s | × baseline | p50 ms | p99 ms | non-2xx | socket err | "
             "error bodies |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ["baseline", *SCENARIOS]:
        r = main[name]
        lines.append(f"| {name} | {r['rps']:,.0f} | {r['rps'] / base:.2f} | {r['p50_ms']} | "
                     f"{r['p99_ms']} | {r['err_status']} | {r['socket_errors']} | "
                     f"{r['error_bodies'] if name != 'baseline' else '-'} |")
    if scale:
        lines += ["", "| orders in store | populate s | start-up s | peak RSS MB (Σ VmHWM) | "
                  "PSS MB | balance req/s | status req/s | status p99 ms | add req/s | "
                  "add p99 ms | errors |", "|" + "---:|" * 11]
        for size, e in sorted(scale.items(), key=lambda kv: int(kv[0])):
            errors = sum(e[s]["err_status"] + e[s]["socket_errors"] + e[s]["error_bodies"]
                         for s in SCALE_SCENARIOS)
            lines.append(f"| {int(size):,} | {e['populate_s']} | {e['startup_s']} | "
                         f"{e['peak_rss_mb']} | {e['pss_mb']} | {e['balance']['rps']:,.0f} | "
                         f"{e['status']['rps']:,.0f} | {e['status']['p99_ms']} | "
                         f"{e['add']['rps']:,.0f} | {e['add']['p99_ms']} | {errors} |")
    lines += ["", "| target | measured | met |", "|---|---:|:-:|"]
    lines += [f"| {c['what']} | {c['value']} | {'yes' if c['ok'] else '**no**'} |" for c in checks]
    return "\n".join(lines)


def machine() -> dict:
    def out(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    from importlib.metadata import version

    return {"nproc": int(out("nproc") or 0), "cpu": cpu, "python": platform.python_version(),
            "kernel": platform.release(), "gunicorn": version("gunicorn"),
            "flask": version("flask"), "smmkit": version("smmkit"),
            "sqlite": __import__("sqlite3").sqlite_version,
            "wrk": out("sh", "-c", "wrk -v 2>&1 | head -1")}


def write_results_md(path: Path, info: dict, command: str, text: str, json_name: str) -> None:
    path.write_text(f"""# smmkit benchmark results

Measured by `{command}` ({info['date']}); raw numbers in `bench/results/{json_name}`.
Profile hot spots: `bench/PROFILE.md`.

Machine: {info['machine']['nproc']} cores, {info['machine']['cpu']},
Linux {info['machine']['kernel']},
Python {info['machine']['python']}, SQLite {info['machine']['sqlite']}, gunicorn
{info['machine']['gunicorn']}, Flask {info['machine']['flask']}, smmkit {info['machine']['smmkit']},
{info['machine']['wrk']}.

How: the fake runs as `smmkit serve --port 0 --db FILE --workers 2 --accounts FILE --server
{info['server']}` (2 workers × 16 threads, one SQLite store); load is
`wrk -t2 -c{32} -d{info['seconds']}s --latency -s bench/smm.lua URL -- SCENARIO IDS NONCE` on
loopback after a {info['warm']} s warm-up,
with wrk on the same {info['machine']['nproc']}-core machine (it takes CPU from the server, as it
does for the baseline). The baseline is bench/baseline.py: a constant-body WSGI callable under
the same server and settings. `status` polls random orders of 4 keys; `multi` asks 100 ids at once;
`add` orders service 3 × 20 with a unique link each; `mix` is 40% status, 40% status of 20 ids,
10% add, 5% balance, 5% services. "error bodies" counts 200 answers whose JSON is an error.
Scale runs use stores filled by bench/populate.py (95% final, 5% active orders) and poll ids
spread over the whole table; start-up is spawn → first successful `balance`; peak RSS is Σ VmHWM
of master and workers (shared pages counted in each process — PSS is the fairer sum).

{text}
""")


def install_commands(profile: bool) -> list[tuple[str, list[str]]]:
    """(tool, command) for every tool this run needs and this machine lacks."""
    sudo = [] if os.geteuid() == 0 or not shutil.which("sudo") else ["sudo"]
    missing = []
    if not shutil.which("wrk"):
        missing.append(("wrk", [*sudo, "apt-get", "install", "-y", "wrk"]))
    if profile and not shutil.which("py-spy"):
        missing.append(("py-spy", [sys.executable, "-m", "pip", "install", "py-spy"]))
    return missing


def require_tools(profile: bool, install: bool) -> None:
    """Install what is missing only with consent: --install, or a yes at the prompt; else print
    the commands and stop (exit 2) before anything is measured or installed."""
    missing = install_commands(profile)
    if not missing:
        return
    commands = "\n".join(f"  {' '.join(command)}" for _, command in missing)
    names = " and ".join(tool for tool, _ in missing)
    if not install:
        if not sys.stdin.isatty():
            raise SystemExit(f"bench needs {names}, which is not installed. Install it with:\n"
                             f"{commands}\nor run again with --install to let bench do it.")
        answer = input(f"bench needs {names}. Run these now?\n{commands}\n[y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise SystemExit(f"not installing; install {names} yourself:\n{commands}")
    for tool, command in missing:
        log(f"installing {tool}: {' '.join(command)}")
        done = subprocess.run(command).returncode == 0
        if not done and tool == "wrk":  # stale package lists: update once and retry
            subprocess.run([*command[:-3], "update"], check=False)
            done = subprocess.run(command).returncode == 0
        if not done or not shutil.which(tool):
            raise SystemExit(f"could not install {tool} ({' '.join(command)})")


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
    parser.add_argument("--install", action="store_true",
                        help="install missing tools (wrk, py-spy) without asking")
    args = parser.parse_args(argv)
    global SERVER
    SERVER = args.server
    require_tools(args.profile, args.install)
    seconds = args.seconds or (3 if args.quick else 20)
    warm = 1 if args.quick else 3
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [1000, 100_000] if args.quick else [1000, 100_000, 1_000_000])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smmkit-bench-") as tmp:
        work = Path(tmp)
        main_results = run_main(work, seconds, warm, args.workers)
        scale = {} if args.no_scale else run_scale(work, sizes, seconds, warm, args.workers)
        profile = run_profile(work, 8 if args.quick else 15, args.workers) if args.profile else {}
    checks = check_targets(main_results, scale)
    text = table(main_results, scale, checks)
    print(text)
    date = dt.date.today().isoformat()
    info = {"date": date, "quick": args.quick, "seconds": seconds, "warm": warm,
            "workers": args.workers, "server": SERVER, "machine": machine(),
            "command": " ".join(["python", "bench/run.py", *(argv or sys.argv[1:])]),
            "wall_s": round(time.perf_counter() - started, 1)}
    results_dir = h.BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    suffix = "" if SERVER == "builtin" else f"-{SERVER}"
    name = f"{date}{suffix}{'-quick' if args.quick else ''}.json"
    (results_dir / name).write_text(json.dumps(
        {**info, "scenarios": main_results, "scale": scale, "targets": checks,
         "profile": profile}, indent=1))
    if not args.quick:
        write_results_md(h.BENCH / f"RESULTS{suffix}.md", info, info["command"], text, name)
    log(f"wrote bench/results/{name} in {info['wall_s']} s")


if __name__ == "__main__":
    main()
