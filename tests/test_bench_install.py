"""`python bench/run.py` installs nothing without consent: without --install (and no terminal to
ask on) it prints the install command and stops; with --install it runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def fake_apt(tmp_path: Path) -> tuple[Path, Path]:
    """A PATH with no wrk and an apt-get that only records that it was called."""
    bin_dir, marker = tmp_path / "bin", tmp_path / "apt-get-called"
    bin_dir.mkdir()
    apt = bin_dir / "apt-get"
    apt.write_text(f"#!/bin/sh\necho \"$@\" >> {marker}\nexit 0\n")
    apt.chmod(0o755)
    return bin_dir, marker


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
