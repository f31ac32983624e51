"""WireMock as the bench's peer (`python bench/run.py --peer wiremock`).

Users who load-test against a fake panel pick the fastest mock that is good enough; WireMock is
the usual one. Here it serves static stubs, one per scenario, each answering with a fixed body of
the shape smmkit answers (bodies sampled from the smmkit under test, so both send about the same
bytes), while smmkit answers from real state. smmkit ÷ WireMock therefore says what a stateful
answer costs next to a static one on the same machine in the same minute.

WireMock comes from the npm package `wiremock`, which bundles the standalone jar, installed into
bench/.peers/ (never globally); Java from Debian's packages. run.py installs neither without
consent (`--install` or a yes at its prompt).

The flags and why each is there: `results_note` (it goes into bench/RESULTS.md as well).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

BENCH = Path(__file__).resolve().parent
VERSION = "3.13.2"
NPM_PACKAGE = f"wiremock@{VERSION}"
JAVA_PACKAGE = "default-jre-headless"
DEFAULT_CACHE = BENCH / ".peers"
HEAP = ["-Xms256m", "-Xmx256m"]
CONTAINER_THREADS = 40
JIT_WARM_S = {"quick": 2, "full": 6}  # per scenario, all in turn: 12 s / 36 s of load
FLAGS = ["--bind-address", "127.0.0.1", "--port", "0", "--no-request-journal",
         "--disable-request-logging", "--async-response-enabled", "false",
         "--container-threads", str(CONTAINER_THREADS), "--jetty-acceptor-threads", "1",
         "--disable-gzip", "--disable-response-templating", "--disable-http2-plain",
         "--disable-banner"]
BALANCE_BODY = b'{"balance":"100.84292","currency":"USD"}'
Step = tuple[str, list[str], Callable[[], bool]]  # (tool, install command, is it there now?)

# scenario -> (priority, body pattern). Cheap `contains` matchers where the action alone says
# which answer it is; the 100-id multi-status needs a regex to tell it from mix's 20-id one,
# which is the fallback (priority 2) for any other `orders=` list.
MATCHERS: dict[str, tuple[int, dict[str, str]]] = {
    "balance": (1, {"contains": "action=balance"}),
    "services": (1, {"contains": "action=services"}),
    "status": (1, {"contains": "&order="}),
    "multi": (1, {"matches": r".*&orders=(\d+,){99}\d+"}),
    "multi20": (2, {"contains": "&orders="}),
    "add": (1, {"contains": "action=add"}),
}


def jar(cache: Path) -> Path | None:
    """The standalone jar the npm package put under `cache`, if it is there."""
    found = sorted((cache / "node_modules" / "wiremock" / "build").glob(
        "wiremock-standalone-*.jar"))
    return found[-1] if found else None


def install_steps(cache: Path, sudo: list[str]) -> list[Step]:
    """What the peer needs and this machine lacks, in the order the steps must run (npm before
    the package it installs)."""
    steps: list[Step] = []
    if not shutil.which("java"):
        steps.append(("java", [*sudo, "apt-get", "install", "-y", JAVA_PACKAGE],
                      lambda: bool(shutil.which("java"))))
    if jar(cache) is None:
        if not shutil.which("npm"):
            steps.append(("npm", [*sudo, "apt-get", "install", "-y", "npm"],
                          lambda: bool(shutil.which("npm"))))
        steps.append(("wiremock", ["npm", "install", "--prefix", str(cache), "--no-audit",
                                   "--no-fund", "--ignore-scripts", NPM_PACKAGE],
                      lambda: jar(cache) is not None))
    return steps


def java_version() -> str:
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=20)
    except OSError:
        return ""
    lines = (done.stderr or done.stdout).splitlines()
    return lines[0].strip() if lines else ""


def sample_answers(url: str, key: str, ids: list[int], link: str) -> dict[str, bytes]:
    """The bodies smmkit answers for each scenario, to serve as WireMock's static stubs.

    `add` places one real order (with `link`), so its body is a real `{"order": N}`.
    """
    def ask(**form: str) -> bytes:
        reply = session.post(url, data={"key": key, **form}, timeout=10)
        if reply.status_code != 200 or b'"error"' in reply.content:
            raise RuntimeError(f"sampling {form} for the WireMock stubs failed: {reply.text}")
        return reply.content

    if len(ids) < 100:
        raise ValueError(f"need 100 order ids to sample the multi-status answer, got {len(ids)}")
    with requests.Session() as session:
        return {
            "balance": BALANCE_BODY,
            "services": ask(action="services"),
            "status": ask(action="status", order=str(ids[0])),
            "multi": ask(action="status", orders=",".join(map(str, ids[:100]))),
            "multi20": ask(action="status", orders=",".join(map(str, ids[:20]))),
            "add": ask(action="add", service="3", quantity="20", link=link),
        }


def mappings(answers: dict[str, bytes]) -> list[dict]:
    """One WireMock stub mapping per scenario: POST /api/v2, matched on the form body."""
    out = []
    for name, (priority, pattern) in MATCHERS.items():
        body = answers[name]
        out.append({
            "name": name, "priority": priority,
            "request": {"method": "POST", "url": "/api/v2", "bodyPatterns": [pattern]},
            "response": {"status": 200, "body": body.decode(),
                         "headers": {"Content-Type": "application/json",
                                     "Content-Length": str(len(body))}},
        })
    return out


class WireMock:
    """A WireMock standalone JVM on 127.0.0.1 and a free port, serving `answers` as stubs."""

    def __init__(self, jar_path: Path, answers: dict[str, bytes], work: Path) -> None:
        self.root = work / "wiremock"
        self.log = work / "wiremock.log"
        self.argv = ["java", *HEAP, "-jar", str(jar_path), *FLAGS, "--root-dir", str(self.root)]
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.jit_settle_us: list[float | None] = []  # run.py's JIT settling rounds, µs/req
        (self.root / "mappings").mkdir(parents=True, exist_ok=True)
        for mapping in mappings(answers):
            path = self.root / "mappings" / f"{mapping['name']}.json"
            path.write_text(json.dumps(mapping))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> WireMock:
        """Start the JVM and return once the balance stub answers (bounded by `timeout`)."""
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        port = None
        while port is None:
            match = re.search(r"^port:\s+(\d+)", self.log.read_text(errors="replace"), re.M)
            port = int(match.group(1)) if match else None
            if port is None and (self.proc.poll() is not None or time.monotonic() > deadline):
                self.stop()
                raise RuntimeError(f"WireMock did not start; see {self.log}")
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{port}/api/v2"
        self._wait_for_balance(deadline)
        return self

    def _wait_for_balance(self, deadline: float) -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                try:
                    reply = session.post(self.url, data={"key": "k", "action": "balance"},
                                         timeout=2)
                    if reply.status_code == 200 and reply.content == BALANCE_BODY:
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"WireMock's balance stub did not answer; see {self.log}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        harness.stop_group(self.proc)

    def __enter__(self) -> WireMock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def results_note(peer: dict) -> str:
    """The paragraph bench/RESULTS.md gets about the peer: what ran, with which flags, and why."""
    return f"""Peer: WireMock {peer['version']} (npm package `wiremock`, its bundled standalone jar)
on {peer['java']}, run as `{' '.join(peer['argv'])}`, up for the whole run next to the fake;
each scenario is measured on smmkit, then on WireMock, with the same wrk settings, so both see the
same machine state. WireMock serves a static stub per scenario: `balance` answers
`{BALANCE_BODY.decode()}`; the others answer a fixed body of the scenario's shape, sampled once
from the fake under test (`services`, the status of one order, of 100 and of 20 orders, and one
`add` answer), so both send about the same bytes; stubs match POST /api/v2 on the form body. The
JVM is JIT-warmed by {peer['jit_warm_s']:.0f} s of load, every scenario in turn, then by 2 s
rounds of `mix` until its CPU per request stops falling (µs/req per round:
{peer.get('jit_settle_cpu_us')}), before anything is measured.
"× WireMock" is smmkit's req/s ÷ WireMock's: what a stateful answer costs against a
static one. Flags, and why:
- `--no-request-journal`: the journal keeps every request in the heap for later verification,
  which a load test does not use; without it WireMock is at its fastest and its heap stays flat.
- `--disable-request-logging`: no notifier output per request (WireMock's docs: "useful when
  performance testing").
- `--async-response-enabled false`: the Jetty thread that matched the request writes the answer;
  the async pool only pays off for delayed responses, and these stubs have none.
- `--container-threads {CONTAINER_THREADS}`: Jetty's pool needs a thread for each of wrk's 32
  connections with a request in flight, plus the acceptor and selector threads that come out of
  the same pool.
- `--jetty-acceptor-threads 1`: wrk opens its 32 keep-alive connections once per run; one acceptor
  is plenty on 2 cores.
- `--disable-gzip`, `--disable-response-templating`, `--disable-http2-plain`: nothing in this load
  is compressed, templated or HTTP/2, so each removes a per-request check.
- `{' '.join(HEAP)}`: a modest, fixed heap (never resized mid-run); the JVM's default collector."""
