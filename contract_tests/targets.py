"""What the kit talks to: anything with ``send(params) -> Exchange``.

The transports live here and only here (checks read `Exchange` records). `HttpTarget` speaks to a
URL with requests in any of the three transports of docs/PROTOCOL.md §1; `WsgiTarget` runs an app
in-process through Werkzeug's test client. Both add their key unless the params carry one (the
bad-key probes do), and may hold `advance` / `reset` / `top_up` hooks when the target is the fake.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from smmkit.contract_tests.exchange import Exchange, fingerprint

DEFAULT_TIMEOUT = 30.0


class Target(Protocol):
    key: str

    def send(self, params: Mapping[str, Any], *, transport: str = "form",
             note: str = "") -> Exchange: ...


class TargetError(Exception):
    """The target could not be reached at all (no HTTP answer)."""


def _with_key(params: Mapping[str, Any], key: str) -> dict[str, str]:
    merged = {k: str(v) for k, v in params.items()}
    merged.setdefault("key", key)
    return merged


class _Hooks:
    """Optional control of a fake: clock, reset and top-ups (None on a live panel)."""

    def __init__(self, advance: Callable[[float], Any] | None = None,
                 reset: Callable[[], Any] | None = None,
                 top_up: Callable[[str, Decimal], Any] | None = None) -> None:
        self._advance, self._reset, self._top_up = advance, reset, top_up

    @property
    def can_advance(self) -> bool:
        return self._advance is not None

    def advance(self, seconds: float) -> None:
        if self._advance is None:
            raise TypeError("this target has no clock to advance")
        self._advance(seconds)

    def reset(self) -> None:
        if self._reset is not None:
            self._reset()

    @property
    def can_top_up(self) -> bool:
        return self._top_up is not None

    def top_up(self, key: str, amount: Decimal) -> None:
        if self._top_up is None:
            raise TypeError("this target cannot be topped up")
        self._top_up(key, amount)


class HttpTarget(_Hooks):
    """A panel at `url` (the full API URL, e.g. ``https://panel.example/api/v2``)."""

    def __init__(self, url: str, key: str, *, timeout: float = DEFAULT_TIMEOUT,
                 session: Any = None, **hooks: Any) -> None:
        super().__init__(**hooks)
        import requests

        self.url, self.key, self.timeout = url, key, timeout
        self.session = session or requests.Session()
        self.account = fingerprint(key)

    def with_key(self, key: str) -> HttpTarget:
        other = HttpTarget(self.url, key, timeout=self.timeout, session=self.session)
        other._advance, other._reset, other._top_up = self._advance, self._reset, self._top_up
        return other

    def send(self, params: Mapping[str, Any], *, transport: str = "form", note: str = "",
             url: str | None = None) -> Exchange:
        import requests

        merged = _with_key(params, self.key)
        target = url or self.url
        try:
            if transport == "json":
                response = self.session.post(target, json=merged, timeout=self.timeout)
            elif transport == "query":
                response = self.session.get(target, params=merged, timeout=self.timeout)
            else:
                response = self.session.post(target, data=merged, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TargetError(f"{target}: {type(exc).__name__}: {exc}") from exc
        return Exchange.from_requests(response, merged, transport=transport, note=note)


class WsgiTarget(_Hooks):
    """A WSGI app (e.g. ``mock_server.app.create_app(panel)``) called in-process."""

    def __init__(self, app: Any, key: str, *, path: str = "/api/v2", **hooks: Any) -> None:
        super().__init__(**hooks)
        from werkzeug.test import Client

        self.client, self.key, self.path = Client(app), key, path
        self.account = fingerprint(key)

    def send(self, params: Mapping[str, Any], *, transport: str = "form", note: str = "",
             url: str | None = None) -> Exchange:
        merged = _with_key(params, self.key)
        path = url or self.path
        started = time.perf_counter()
        if transport == "json":
            response = self.client.post(path, json=merged)
        elif transport == "query":
            response = self.client.get(path, query_string=merged)
        else:
            response = self.client.post(path, data=merged)
        elapsed = time.perf_counter() - started
        method = "GET" if transport == "query" else "POST"
        return Exchange.from_werkzeug(response, merged, elapsed, method=method, url=path,
                                      transport=transport, note=note)
