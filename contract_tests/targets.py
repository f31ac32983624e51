"""What the kit talks to: anything with ``send(params) -> Exchange``.

The transports live here and only here (checks read `Exchange` records). `HttpTarget` speaks to a
URL with urllib3 in any of the three transports of docs/PROTOCOL.md §1, defensively; `WsgiTarget`
calls a WSGI app in-process through Werkzeug's test client. Both add their key unless the params
carry one (the bad-key probes do), and may hold `advance` / `reset` / `top_up` hooks when the
target is the fake.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from smmkit.contract_tests.exchange import Exchange, fingerprint
from smmkit.schemas.contract import scrub

DEFAULT_TIMEOUT = 20.0  # seconds, the whole request: connect, wait, read every byte
MAX_BYTES = 4 * 1024 * 1024  # no API v2 answer needs more; a 50 MB catalogue is cut off


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
    """A panel at `url` (the full API URL, e.g. ``https://panel.example/api/v2``).

    Built to survive the panel it talks to: `timeout` is a total deadline per request
    (connecting, waiting and reading every byte), answers above `max_bytes` are cut off,
    connection failures are retried `retries` times with backoff (a spending action only when
    it never reached the panel), 429 is retried after its Retry-After, `rate` caps requests per
    second, redirects are followed only within the same origin, and every secret is scrubbed
    from what is recorded. A request that got no usable answer comes back as an Exchange with
    status 0 and ``extra["transport_error"]``: the run goes on.
    """

    def __init__(self, url: str, key: str, *, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = 2, rate: float | None = None, max_bytes: int = MAX_BYTES,
                 secrets: tuple[str, ...] = (), pool: Any = None, **hooks: Any) -> None:
        super().__init__(**hooks)
        import urllib3

        self.url, self.key, self.timeout = url, key, float(timeout)
        self.retries, self.rate, self.max_bytes = retries, rate, max_bytes
        self.secrets = tuple(dict.fromkeys((key, *secrets)))
        self.pool = pool or urllib3.PoolManager(retries=False, num_pools=4)
        self.account = fingerprint(key)
        self.sleep: Callable[[float], None] = time.sleep
        self._last = [0.0]  # shared with `with_key` copies: one rate for the whole run
        self.requests_sent = 0

    def with_key(self, key: str) -> HttpTarget:
        other = HttpTarget(self.url, key, timeout=self.timeout, retries=self.retries,
                           rate=self.rate, max_bytes=self.max_bytes, secrets=self.secrets,
                           pool=self.pool)
        other._advance, other._reset, other._top_up = self._advance, self._reset, self._top_up
        other._last, other.sleep = self._last, self.sleep
        return other

    def send(self, params: Mapping[str, Any], *, transport: str = "form", note: str = "",
             url: str | None = None) -> Exchange:
        merged = _with_key(params, self.key)
        secrets = tuple(dict.fromkeys((*self.secrets, merged.get("key", ""))))
        spends = merged.get("action") in ("add", "refill", "cancel")
        attempt, target, hops = 0, url or self.url, 0
        while True:
            self._pace()
            answer = _fetch(self.pool, target, merged, transport, self.timeout, self.max_bytes)
            failure = answer.get("error")
            if failure is not None:
                retry = attempt < self.retries and (not spends or answer.get("unsent"))
                if retry:
                    attempt += 1
                    self.sleep(min(0.25 * 2 ** attempt, 4.0))
                    continue
                return _failed(merged, target, transport, note, failure, answer, secrets)
            status, headers = answer["status"], answer["headers"]
            if status == 429 and attempt < self.retries:
                attempt += 1
                self.sleep(_retry_after(headers, self.timeout))
                continue
            location = _header(headers, "Location")
            if status in (301, 302, 303, 307, 308) and location and hops < 3:
                nxt = urljoin(target, location)
                if _origin(nxt) == _origin(target):
                    target, hops = nxt, hops + 1
                    continue
                answer.setdefault("extra", {})["redirect"] = scrub(nxt, secrets)
            return Exchange.build(merged, status=status, headers=headers, body=answer["body"],
                                  elapsed=answer["elapsed"], method=_method(transport),
                                  url=target, transport=transport, note=note,
                                  secrets=secrets, extra=answer.get("extra", {}))

    def _pace(self) -> None:
        self.requests_sent += 1
        if not self.rate:
            return
        wait = self._last[0] + 1.0 / self.rate - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        self._last[0] = time.monotonic()


def _method(transport: str) -> str:
    return "GET" if transport == "query" else "POST"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), port


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def _retry_after(headers: Mapping[str, str], timeout: float) -> float:
    """Seconds to wait after a 429: its Retry-After (capped at the request timeout), else 1."""
    raw = _header(headers, "Retry-After").strip()
    seconds = float(raw) if raw.isdigit() and len(raw) < 6 else 1.0
    return max(0.0, min(seconds, timeout))


def _fetch(pool: Any, url: str, params: Mapping[str, str], transport: str, timeout: float,
           max_bytes: int) -> dict[str, Any]:
    """One HTTP request under a total deadline; a dict, never an exception."""
    import json as jsonlib

    import urllib3
    from urllib3.exceptions import HTTPError, NewConnectionError

    started = time.monotonic()
    deadline = started + timeout
    body: bytes | None = None
    headers: dict[str, str] = {}
    fields = None
    if transport == "json":
        body, headers = jsonlib.dumps(dict(params)).encode(), {"Content-Type": "application/json"}
    elif transport == "query":
        url = urlunsplit(urlsplit(url)._replace(query=urlencode(dict(params))))
    else:
        body = urlencode(dict(params)).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        response = pool.request(_method(transport), url, body=body, fields=fields,
                                headers=headers, redirect=False, preload_content=False,
                                timeout=urllib3.Timeout(connect=timeout, read=timeout))
    except NewConnectionError as exc:
        return {"error": f"connection refused or failed: {exc.__class__.__name__}",
                "unsent": True, "elapsed": time.monotonic() - started}
    except (HTTPError, OSError) as exc:
        return {"error": f"{exc.__class__.__name__}: {str(exc)[:200]}",
                "elapsed": time.monotonic() - started}
    chunks: list[bytes] = []
    size, problem = 0, None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                problem = f"no complete answer within the {timeout:g}s deadline"
                break
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(left)
            chunk = response.read1(65_536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                problem = f"answer larger than {max_bytes} bytes (cut off)"
                break
    except (HTTPError, OSError) as exc:
        problem = f"answer cut off: {exc.__class__.__name__}"
    finally:
        if problem:
            response.close()  # never hand a half-read connection back to the pool
        response.release_conn()
    elapsed = time.monotonic() - started
    raw = b"".join(chunks)
    if problem:
        return {"error": problem, "elapsed": elapsed, "status": response.status, "body": raw}
    return {"status": response.status, "headers": dict(response.headers), "body": raw,
            "elapsed": elapsed}


def _failed(params: Mapping[str, str], url: str, transport: str, note: str, failure: str,
            answer: Mapping[str, Any], secrets: tuple[str, ...]) -> Exchange:
    extra = {"transport_error": scrub(failure, secrets)}
    if answer.get("status"):
        extra["http_status"] = answer["status"]
    return Exchange.build(params, status=0, headers={}, body=b"", elapsed=answer["elapsed"],
                          method=_method(transport), url=url, transport=transport, note=note,
                          secrets=secrets, extra=extra)


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
