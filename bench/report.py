"""The bench's report: targets checked, the tables, the machine, and bench/RESULTS.md.

run.py measures; this turns its results dict into what a person reads.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import peer_wiremock

SCENARIOS = ["balance", "services", "status", "moving", "multi", "add", "mix"]
SCALE_SCENARIOS = ["balance", "status", "add"]
TARGETS = {  # (metric, comparison, value): issue 6, then issue 12 (x_peer: smmkit ÷ WireMock)
    "balance": [("rps", ">=", 8000), ("ratio", ">=", 0.3), ("x_peer", ">=", 1.0)],
    "status": [("rps", ">=", 8000), ("ratio", ">=", 0.3), ("x_peer", ">=", 1.0)],
    "moving": [("x_peer", ">=", 1.0)],  # issue 12's single status: orders that keep moving
    "services": [("x_peer", ">=", 0.8)],
    "multi": [("p99_ms", "<", 25)],
    "add": [("rps", ">=", 2000), ("x_peer", ">=", 0.25), ("p99_ms", "<", 50)],
}


def check_targets(main: dict, scale: dict) -> list[dict]:
    """Every target this run measured (the x_peer ones only with --peer)."""
    checks = []
    for scenario, rules in TARGETS.items():
        result = main[scenario]
        values = {"rps": result["rps"], "ratio": result["x_baseline"],
                  "p99_ms": result["p99_ms"], "x_peer": result.get("x_peer")}
        for metric, op, bound in rules:
            value = values[metric]
            if value is None:
                continue
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


def _cpu(result: dict) -> str:
    value = result.get("cpu_us_per_req")
    return "-" if value is None else f"{value:,.0f}"


def scenario_table(main: dict) -> list[str]:
    """The fake's scenarios; with a peer, WireMock's numbers and smmkit ÷ WireMock beside them."""
    base = main["baseline"]["rps"]
    peer = main.get("_peer", {}).get("scenarios", {})
    head = "| scenario | req/s | × baseline | p50 ms | p99 ms | CPU µs/req |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if peer:
        head += (" WireMock req/s | WireMock p50 ms | WireMock p99 ms | WireMock CPU µs/req | "
                 "× WireMock | WireMock errors |")
        rule += "---:|---:|---:|---:|---:|---:|"
    lines = [head + " non-2xx | socket err | error bodies |", rule + "---:|---:|---:|"]
    for name in ["baseline", *SCENARIOS]:
        r = main[name]
        row = (f"| {name} | {r['rps']:,.0f} | {r['rps'] / base:.2f} | {r['p50_ms']} | "
               f"{r['p99_ms']} | {_cpu(r)} |")
        if peer:
            w = peer.get(name)
            row += (" - | - | - | - | - | - |" if w is None else
                    f" {w['rps']:,.0f} | {w['p50_ms']} | {w['p99_ms']} | {_cpu(w)} | "
                    f"{r['rps'] / w['rps']:.2f} | "
                    f"{w['err_status'] + w['socket_errors'] + w['error_bodies']} |")
        lines.append(row + f" {r['err_status']} | {r['socket_errors']} | "
                           f"{r['error_bodies'] if name != 'baseline' else '-'} |")
    return lines


def table(main: dict, scale: dict, checks: list[dict]) -> str:
    lines = scenario_table(main)
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


def write_results_md(path: Path, info: dict, command: str, text: str, json_name: str,
                     peer: dict | None = None) -> None:
    peer_note = f"\n{peer_wiremock.results_note(peer)}\n" if peer else ""
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
the same server and settings. `status` polls random orders of 4 keys, final by then; `moving` polls
orders still being delivered (service 16 × 200,000, 40 per key, placed just before), whose every
answer is worked out at its instant (WireMock answers both with its status stub); `multi` asks 100
ids at once;
`add` orders service 3 × 20 with a unique link each; `mix` is 40% status, 40% status of 20 ids,
10% add, 5% balance, 5% services. "error bodies" counts 200 answers whose JSON is an error.
Scale runs use stores filled by bench/populate.py (95% final, 5% active orders) and poll ids
spread over the whole table; start-up is spawn → first successful `balance`; peak RSS is Σ VmHWM
of master and workers (shared pages counted in each process — PSS is the fairer sum).
"CPU µs/req" is the server's CPU time (utime + stime from /proc of the server process and all its
children, read before and after the measured wrk run) ÷ the requests wrk counted (bench/cpu.py).
{peer_note}
{text}
""")
