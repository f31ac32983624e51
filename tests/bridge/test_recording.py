"""Recordings: the key reaches no artifact of a run, and `check --from-recording` gives back
the verdicts the proxy gave live."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from smmkit.contract_tests.bridge.offline import judge_recording
from smmkit.contract_tests.exchange import load_recorded
from support import read_line

from smmkit.cli import main

SECRET = "sk-live-Zq8pL2wX9vT4"


@pytest.fixture
def secret_panel(live: Any, tmp_path: Path) -> Any:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"key": SECRET, "balance": "50", "currency": "USD"}]))
    return live(accounts=str(accounts))


def start_proxy_cli(*args: str, out: Path, err: Path) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-c", "from smmkit.cli import main; main()", "proxy",
               "--port", "0", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err.open("wb"),
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    first = read_line(proc.stdout, 20)
    assert "listening on " in first, first
    out.write_text(first)
    return proc, first.split("listening on ", 1)[1].split(" ")[0]


def stop(proc: subprocess.Popen, out: Path) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    rest, _ = proc.communicate(timeout=15)
    with out.open("a") as stream:
        stream.write(rest.decode("utf-8", "replace"))


def test_the_key_reaches_no_artifact_and_verdicts_replay(secret_panel: Any,
                                                         tmp_path: Path) -> None:
    record, out, err = tmp_path / "run.jsonl", tmp_path / "stdout", tmp_path / "stderr"
    proc, url = start_proxy_cli("--upstream", secret_panel.api_url, "--record", str(record),
                                "--allow-orders", "--budget", "0.1", out=out, err=err)
    try:
        calls = [
            lambda: requests.post(url, data={"key": SECRET, "action": "services"}),
            lambda: requests.get(url, params={"key": SECRET, "action": "balance"}),
            lambda: requests.post(url, json={"key": SECRET, "action": "status", "order": "77"}),
            lambda: requests.post(url, data={"key": SECRET, "action": "add", "service": "1",
                                             "quantity": "50",
                                             "link": f"https://instagram.com/{SECRET}"}),
            lambda: requests.post(url, data={"key": SECRET, "action": "add", "service": "1",
                                             "quantity": "5000",
                                             "link": "https://instagram.com/big"}),
            lambda: requests.post(url, data={"key": SECRET + "x", "action": "balance"}),
            lambda: requests.post(url, data={"key": SECRET, "action": "status"}),
        ]
        for call in calls:
            call()
        secret_panel.control.faults.next("balance", "drop")
        with pytest.raises(requests.ConnectionError):
            requests.post(url, data={"key": SECRET, "action": "balance"})
        journal = requests.get(url.removesuffix("/api/v2") + "/_proxy/exchanges").text
        (tmp_path / "exchanges.json").write_text(journal)
        base = url.removesuffix("/api/v2")
        (tmp_path / "page.html").write_text(requests.get(f"{base}/_proxy/").text)
        (tmp_path / "region.html").write_text(
            requests.get(f"{base}/_proxy/", headers={"X-Fragment": "1"}).text)
    finally:
        stop(proc, out)
    live = [json.loads(line)["extra"]["verdict"] for line in record.read_text().splitlines()]
    assert [v["verdict"] for v in live] == ["conforms", "conforms", "conforms", "conforms",
                                            "refused", "conforms", "violation",
                                            "upstream-dropped"]

    result = CliRunner().invoke(main, ["check", "--from-recording", str(record), "--dialect",
                                       "auto", "--json", str(tmp_path / "offline.json")])
    (tmp_path / "check-output").write_text(result.output)
    assert result.exit_code == 1, result.output  # the bad `status` request is a violation
    offline = json.loads((tmp_path / "offline.json").read_text())["exchanges"]
    assert [{k: v[k] for k in ("verdict", "dialect", "findings", "request")} for v in offline] \
        == live
    assert not any(v["changed"] for v in offline)

    artifacts = sorted(p for p in tmp_path.iterdir() if p.is_file() and p.suffix != ".json"
                       or p.name in ("run.jsonl", "offline.json", "exchanges.json"))
    assert {p.name for p in artifacts} >= {"run.jsonl", "stdout", "stderr", "exchanges.json",
                                           "offline.json", "check-output", "page.html",
                                           "region.html"}
    for artifact in artifacts:
        assert SECRET not in artifact.read_text("utf-8", "replace"), artifact.name
    assert "https://instagram.com/***" in record.read_text()  # scrubbed out of a link too
    console = err.read_text()
    assert "#7 status" in console and "upstream-dropped" in console  # the verdicts were logged


def test_a_recording_of_a_well_behaved_client_passes(secret_panel: Any, tmp_path: Path) -> None:
    from smmkit.contract_tests.bridge.proxy import ProxyConfig, start_proxy

    record = tmp_path / "good.jsonl"
    with start_proxy(ProxyConfig(upstream=secret_panel.api_url, record=str(record),
                                 dialect="perfectpanel")) as proxy:
        for action in ("services", "balance"):
            requests.post(proxy.api_url, data={"key": SECRET, "action": action}, timeout=10)
    assert [e.action for e in load_recorded(record)] == ["services", "balance"]
    assert [j.verdict.verdict for j in judge_recording(record, "perfectpanel")] == \
        ["conforms", "conforms"]
    result = CliRunner().invoke(main, ["check", "--from-recording", str(record)])
    assert result.exit_code == 0, result.output
    assert "2 conforms" in result.output


def test_a_file_that_is_not_a_recording_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text("{not json\n")
    result = CliRunner().invoke(main, ["check", "--from-recording", str(junk)])
    assert result.exit_code == 2
    assert "is not a recording" in result.output
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 2 and "--from-recording" in result.output
