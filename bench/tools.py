"""Tools the bench needs, installed only with consent.

`--install` installs what is missing; an interactive run asks first; otherwise the commands are
printed and the run stops before anything is measured or installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import peer_wiremock


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def install_commands(profile: bool, peer: str | None = None,
                     peer_cache: Path = peer_wiremock.DEFAULT_CACHE) -> list[peer_wiremock.Step]:
    """(tool, command, is-it-there-now check) for every tool this run needs and this machine
    lacks, in the order the commands must run."""
    sudo = [] if os.geteuid() == 0 or not shutil.which("sudo") else ["sudo"]
    missing: list[peer_wiremock.Step] = []
    if not shutil.which("wrk"):
        missing.append(("wrk", [*sudo, "apt-get", "install", "-y", "wrk"],
                        lambda: bool(shutil.which("wrk"))))
    if profile and not shutil.which("py-spy"):
        missing.append(("py-spy", [sys.executable, "-m", "pip", "install", "py-spy"],
                        lambda: bool(shutil.which("py-spy"))))
    if peer == "wiremock":
        missing += peer_wiremock.install_steps(peer_cache, sudo)
    return missing


def require_tools(profile: bool, install: bool, peer: str | None = None,
                  peer_cache: Path = peer_wiremock.DEFAULT_CACHE) -> None:
    """Install what is missing only with consent: --install, or a yes at the prompt; else print
    the commands and stop (exit 1) before anything is measured or installed."""
    missing = install_commands(profile, peer, peer_cache)
    if not missing:
        return
    commands = "\n".join(f"  {' '.join(command)}" for _, command, _ in missing)
    tools = [tool for tool, _, _ in missing]
    names = " and ".join(filter(None, [", ".join(tools[:-1]), tools[-1]]))
    is_are, it_them = ("is", "it") if len(missing) == 1 else ("are", "them")
    if not install:
        if not sys.stdin.isatty():
            raise SystemExit(f"bench needs {names}, which {is_are} not installed. Install "
                             f"{it_them} with:\n{commands}\n"
                             "or run again with --install to let bench do it.")
        answer = input(f"bench needs {names}. Run these now?\n{commands}\n[y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise SystemExit(f"not installing; install {names} yourself:\n{commands}")
    for tool, command, present in missing:
        log(f"installing {tool}: {' '.join(command)}")
        done = subprocess.run(command).returncode == 0
        if not done and "apt-get" in command:  # stale package lists: update once and retry
            subprocess.run([*command[:-3], "update"], check=False)
            done = subprocess.run(command).returncode == 0
        if not done or not present():
            raise SystemExit(f"could not install {tool} ({' '.join(command)})")
