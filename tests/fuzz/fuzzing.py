"""Shared by the fuzz tests: the profile and the checks run after every example."""

from __future__ import annotations

from typing import Any

import requests
from hardening_support import DEMO_KEY, Serve, traceback_in
from hypothesis import HealthCheck, settings

EXAMPLES = 25  # the short profile; conftest raises it for `-m fuzz`


def fuzz_settings(share: float = 1.0) -> Any:
    """Settings for one fuzz test: `share` of the profile's examples."""
    return settings(max_examples=max(5, int(EXAMPLES * share)), deadline=None,
                    suppress_health_check=list(HealthCheck), derandomize=False,
                    database=None)


class Watch:
    """After each example: no traceback logged since the last check, the conservation law in
    the store, and every endpoint still answering."""

    def __init__(self, srv: Serve) -> None:
        self.srv = srv
        self.seen = len(srv.log_text())

    def check(self, what: object) -> None:
        log = self.srv.log_text()
        new, self.seen = log[self.seen:], len(log)
        assert not traceback_in(new), f"{what!r} left a traceback:\n{new[-3000:]}"
        assert self.srv.conserved(), f"{what!r} broke the conservation law"
        answer = requests.post(self.srv.api, data={"key": DEMO_KEY, "action": "services"},
                               timeout=10)
        assert answer.status_code == 200 and isinstance(answer.json(), (list, dict)), what
        assert requests.get(self.srv.base + "/", timeout=10).status_code == 200, what
        clock = self.srv.control("GET", "/clock")
        assert clock.status_code == 200, (what, clock.text[:200])
