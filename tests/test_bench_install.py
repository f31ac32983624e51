"""`python bench/run.py` installs nothing without consent: without --install (and no terminal to
ask on) it prints the install command and stops; with --install it runs it. The same holds for
the peer of `--peer wiremock` (Java from apt, the npm package `wiremock` into the bench's cache)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
RUN = BENCH / "run.py"
NPM_INSTALL = "install --prefix {cache} --no-audit --no-fund --ignore-scripts wiremock@3.13.2"


def recorder(bin_dir: Path, name: str, marker: Path) -> None:
    """A stand-in for `name` on PATH that only records its arguments in `marker`."""
    tool = bin_dir / name
    tool.write_text(f"#!/bin/sh\necho \"$@\" >> {marker}\nexit 0\n")
    tool.chmod(0o755)


def fake_apt(tmp_path: Path) -> tuple[Path, Path]:
    """A PATH with no wrk and an apt-get that only records that it was called."""
    bin_dir, marker = tmp_path / "bin", tmp_path / "apt-get-called"
    bin_dir.mkdir()
    recorder(bin_dir, "apt-get", marker)
    return bin_dir, marker


def fake_peer_tools(tmp_path: Path, *, java: bool) -> tuple[Path, Path, Path]:
    """A PATH with wrk (so only the peer is missing), java if asked, and recording apt-get and
    npm: (bin dir, apt-get's record, npm's record)."""
    bin_dir, apt_marker = fake_apt(tmp_path)
    npm_marker = tmp_path / "npm-called"
    recorder(bin_dir, "npm", npm_marker)
    recorder(bin_dir, "wrk", tmp_path / "wrk-called")
    if java:
        recorder(bin_dir, "java", tmp_path / "java-called")
    return bin_dir, apt_marker, npm_marker


def bench(bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": str(bin_dir)}
    return subprocess.run([sys.executable, str(RUN), "--quick", *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_without_install_it_prints_the_command_and_stops(tmp_path):
    bin_dir, marker = fake_apt(tmp_path)
    result = bench(bin_dir)
    assert result.returncode == 1  # SystemExit with a message
    assert "bench needs wrk, which is not installed. Install it with:\n" in result.stderr
    assert "apt-get install -y wrk" in result.stderr and "--install" in result.stderr
    assert not marker.exists()  # nothing was installed


def test_with_install_it_runs_the_command(tmp_path):
    bin_dir, marker = fake_apt(tmp_path)
    result = bench(bin_dir, "--install")
    # the fake apt-get installs nothing, so the run stops after trying, and says so
    assert result.returncode == 1 and "could not install wrk" in result.stderr
    assert marker.read_text().splitlines() == ["install -y wrk"]


def test_wiremock_is_not_installed_without_consent(tmp_path):
    bin_dir, apt_marker, npm_marker = fake_peer_tools(tmp_path, java=True)
    cache = tmp_path / "peers"
    result = bench(bin_dir, "--peer", "wiremock", "--peer-cache", str(cache))
    assert result.returncode == 1
    assert ("bench needs wiremock, which is not installed. Install it with:\n"
            f"  npm {NPM_INSTALL.format(cache=cache)}\n"
            "or run again with --install to let bench do it.") in result.stderr
    assert not npm_marker.exists() and not apt_marker.exists()
    assert not cache.exists()  # not even the cache folder was made


def test_java_and_wiremock_are_both_asked_for_when_java_is_missing(tmp_path):
    bin_dir, apt_marker, npm_marker = fake_peer_tools(tmp_path, java=False)
    cache = tmp_path / "peers"
    result = bench(bin_dir, "--peer", "wiremock", "--peer-cache", str(cache))
    assert result.returncode == 1
    assert ("bench needs java and wiremock, which are not installed. Install them with:\n"
            "  apt-get install -y default-jre-headless\n"
            f"  npm {NPM_INSTALL.format(cache=cache)}\n") in result.stderr
    assert not npm_marker.exists() and not apt_marker.exists()


def test_with_install_wiremock_goes_into_the_bench_cache_and_is_checked(tmp_path):
    bin_dir, apt_marker, npm_marker = fake_peer_tools(tmp_path, java=True)
    cache = tmp_path / "peers"
    result = bench(bin_dir, "--peer", "wiremock", "--peer-cache", str(cache), "--install")
    # the fake npm puts no jar into the cache, so the run stops after trying, and says so
    assert result.returncode == 1 and "could not install wiremock" in result.stderr
    assert npm_marker.read_text().splitlines() == [NPM_INSTALL.format(cache=cache)]
    assert not apt_marker.exists()  # java was there: nothing from apt


def test_a_peer_already_in_the_cache_needs_nothing(tmp_path, monkeypatch):
    bin_dir, _, _ = fake_peer_tools(tmp_path, java=True)
    cache = tmp_path / "peers"
    jar = cache / "node_modules" / "wiremock" / "build" / "wiremock-standalone-3.13.2.jar"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_tools", BENCH / "tools.py")
    tools = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tools)
    assert [tool for tool, _, _ in tools.install_commands(False, "wiremock", cache)] == [
        "wiremock"]
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"PK")
    assert tools.install_commands(False, "wiremock", cache) == []
    assert tools.install_commands(False, None, tmp_path / "elsewhere") == []  # no peer asked
