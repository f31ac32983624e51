"""`smmkit proxy --upstream URL`: stand between a client and its panel, judge every exchange.

The client talks to the proxy as to the panel. Each request is forwarded unchanged (method,
query string, body, content type) to the upstream API URL and its answer relayed unchanged;
the exchange is judged (`judge.Judge`), logged, kept in a journal served at
`/_proxy/exchanges` and shown live on the page `/_proxy/` (`page.py`), and written to the
recording when there is one. Spending actions are
refused unless orders are allowed, and an `add` that would pass the budget is refused before
it leaves. When the upstream times out the client gets what a panel behind a CDN sends then
(a 524 HTML page); when it drops the connection, the client's connection is dropped too.

The key is in memory only: exchanges hold it redacted, and every text the proxy writes
(recording, journal, console) is scrubbed of every key it has seen.
"""

from __future__ import annotations

import collections
import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from smmkit.contract_tests.bridge import page
from smmkit.contract_tests.bridge.budget import Budget, PriceList, Refusal
from smmkit.contract_tests.bridge.judge import (
    REFUSED,
    UPSTREAM_DROPPED,
    UPSTREAM_TIMEOUT,
    Judge,
    Verdict,
)
from smmkit.contract_tests.bridge.recorder import Recorder, Scrubber
from smmkit.contract_tests.exchange import Exchange

SPENDING = frozenset({"add", "refill", "cancel"})
DEFAULT_PORT = 8081
JOURNAL_SIZE = 1000  # newest exchanges kept for /_proxy/exchanges
MAX_BODY_BYTES = 8 * 1024 * 1024  # as the fake: room for a 1 MB comment list
# Headers that belong to one hop, not to the answer (requests has already decoded the body).
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length",
        "proxy-authenticate", "proxy-authorization", "te", "trailer", "upgrade"}
_FORWARDED = ("Content-Type", "User-Agent", "Accept", "Accept-Language")
TIMEOUT_PAGE = ("<!DOCTYPE html><html><head><title>A timeout occurred | 524</title></head>"
                "<body><h1>A timeout occurred</h1><p>Error code 524: the origin web server "
                "timed out responding to this request.</p></body></html>")


@dataclass
class ProxyConfig:
    upstream: str
    dialect: str | None = None  # None: detected from the traffic
    allow_orders: bool = False
    budget: Decimal | None = None
    record: str | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.upstream.startswith(("http://", "https://")):
            raise ValueError(f"upstream must be an http(s) URL, got {self.upstream!r}")
        if self.allow_orders and (self.budget is None or self.budget <= 0):
            raise ValueError("--allow-orders needs a positive --budget")


@dataclass
class Entry:
    """One journal line: what the dashboard and `/_proxy/exchanges` show."""

    seq: int
    at: float
    exchange: Exchange
    verdict: Verdict
    upstream: str  # "answered" | "timeout" | "dropped" | "refused"

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "action": self.exchange.action,
                "params": dict(self.exchange.params), "status": self.exchange.status,
                "elapsed": round(self.exchange.elapsed, 6), "upstream": self.upstream,
                "body": self.exchange.text(600), **self.verdict.to_json()}


@dataclass
class Proxy:
    """The proxy as a WSGI app. `log` receives one line per exchange (the console)."""

    config: ProxyConfig
    log: Callable[[str], None] = lambda line: None
    session: Any = None
    journal: collections.deque[Entry] = field(default_factory=lambda: collections.deque(
        maxlen=JOURNAL_SIZE))

    def __post_init__(self) -> None:
        import requests

        self.session = self.session or requests.Session()
        self.judge = Judge(self.config.dialect)
        self.scrub = Scrubber()
        self.budget = (Budget(self.config.budget)
                       if self.config.allow_orders and self.config.budget is not None else None)
        self.prices = PriceList(self._services_of)
        self.recorder = Recorder(self.config.record, self.scrub) if self.config.record else None
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES  # chunked bodies are bounded too
        if request.path == "/_proxy" or request.path.startswith("/_proxy/"):
            response = self._own(request)
        else:
            response = self._forward(request)
        if response is None:  # the upstream dropped us: drop the client
            _drop(environ)
            start_response("500 DROPPED", [("Content-Length", "0")])
            return []
        assert isinstance(response, Response)
        return response(environ, start_response)

    def _own(self, request: Any) -> Any:
        from werkzeug.wrappers import Response

        path = request.path.rstrip("/")
        if path == "/_proxy":
            return page.respond(self, request)
        if path.startswith("/_proxy/static/"):
            found = page.static_file(path.removeprefix("/_proxy/static/"))
            if found is not None:
                return Response(found[0], 200, content_type=found[1])
        if path != "/_proxy/exchanges":
            return _json({"error": "Not found"}, 404)
        try:
            since = int(request.args.get("since", "0"))
        except ValueError:
            return _json({"error": "since must be an integer"}, 400)
        try:
            filters = page.Filters.from_args(request.args)
        except page.FilterError as exc:
            return _json({"error": str(exc)}, 400)
        entries = [e for e in self.entries() if e["seq"] > since]
        body = self.scrub.text(json.dumps({"dialect": self.judge.current,
                                           "spent": str(self.budget.spent) if self.budget else None,
                                           "exchanges": [e for e in entries
                                                         if filters.keeps(e)]}))
        return Response(body, 200, content_type="application/json")

    def entries(self) -> list[dict[str, Any]]:
        """The journal as data, oldest first (key redacted; scrub texts before they leave)."""
        with self._lock:
            return [e.to_json() for e in self.journal]

    def summary(self) -> str:
        """One closing line: how many exchanges got which verdict, and what was spent."""
        with self._lock:
            counts = collections.Counter(e.verdict.verdict for e in self.journal)
        told = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
        spent = f"; spent {self.budget.spent} of {self.budget.limit}" if self.budget else ""
        return f"smmkit proxy stopped: {told or 'no exchanges'}{spent}"

    # ------------------------------------------------------------------ forwarding
    def _forward(self, request: Any) -> Any:
        from werkzeug.exceptions import RequestEntityTooLarge
        from werkzeug.wrappers import Response

        try:
            if (request.content_length or 0) > MAX_BODY_BYTES:
                raise RequestEntityTooLarge()
            body = request.get_data(cache=True)
            params = _params(request, body)
        except RequestEntityTooLarge:
            return _json({"error": "Request too large"}, 413)
        transport = ("json" if "json" in (request.content_type or "") else
                     "query" if request.method == "GET" else "form")
        key = params.get("key")
        if key:
            self.scrub.add(str(key))
        action = params.get("action", "")
        price: Decimal | None = None
        try:
            if action in SPENDING:
                price = self._admit(action, params)
        except Refusal as refusal:
            answer = json.dumps({"error": str(refusal)}).encode()
            exchange = Exchange.build(params, status=200, body=answer, url=self.config.upstream,
                                      headers={"Content-Type": "application/json"},
                                      method=request.method, transport=transport)
            self._keep(exchange, self.judge.note(exchange, REFUSED), "refused")
            return Response(answer, 200, content_type="application/json")

        url = self.config.upstream + (f"?{request.query_string.decode('latin-1')}"
                                      if request.query_string else "")
        headers = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
        started = time.perf_counter()
        import requests

        try:
            upstream = self.session.request(request.method, url, data=body, headers=headers,
                                            timeout=self.config.timeout, allow_redirects=False)
            content = upstream.content
        except requests.Timeout:
            self._lost(params, request, transport, started, price, UPSTREAM_TIMEOUT)
            return Response(TIMEOUT_PAGE, 524, content_type="text/html; charset=UTF-8")
        except requests.RequestException:
            self._lost(params, request, transport, started, price, UPSTREAM_DROPPED)
            return None
        elapsed = time.perf_counter() - started
        relayed = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
        exchange = Exchange.build(params, status=upstream.status_code, headers=relayed,
                                  body=content, elapsed=elapsed, method=request.method,
                                  url=self.config.upstream, transport=transport)
        if price is not None and self.budget is not None:
            self.budget.settle(price, spent=exchange.error_text is None)
        self._keep(exchange, self.judge.judge(exchange), "answered")
        return Response(content, upstream.status_code, headers=list(relayed.items()))

    def _admit(self, action: str, params: dict[str, str]) -> Decimal | None:
        if self.budget is None:
            raise Refusal(f"smmkit proxy: {action} spends money; start the proxy with "
                          f"--allow-orders --budget AMOUNT to let it through")
        if action != "add":
            return None
        import requests
        from smmkit.contract_tests.exchange import fingerprint

        key = str(params.get("key", ""))
        try:
            price = self.prices.price(key, fingerprint(key), params)
        except requests.RequestException:
            raise Refusal("smmkit proxy: the panel's services could not be fetched to price "
                          "this add") from None
        self.budget.reserve(price)
        return price

    def _lost(self, params: dict[str, str], request: Any, transport: str, started: float,
              price: Decimal | None, verdict: str) -> None:
        if price is not None and self.budget is not None:
            self.budget.settle(price, spent=True)  # the order may exist: count it
        exchange = Exchange.build(params, status=0, headers={}, body=b"",
                                  elapsed=time.perf_counter() - started, method=request.method,
                                  url=self.config.upstream, transport=transport)
        self._keep(exchange, self.judge.note(exchange, verdict),
                   verdict.removeprefix("upstream-"))

    def _services_of(self, key: str) -> Any:
        response = self.session.post(self.config.upstream, data={"key": key,
                                                                  "action": "services"},
                                     timeout=self.config.timeout)
        try:  # numbers as Decimal: a panel sending rates as JSON numbers is priced exactly
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            return []

    # ------------------------------------------------------------------ keeping
    def _keep(self, exchange: Exchange, verdict: Verdict, upstream: str) -> None:
        with self._lock:
            entry = Entry(next(self._seq), time.time(), exchange, verdict, upstream)
            self.journal.append(entry)
        if self.recorder is not None:
            self.recorder.write(exchange, verdict, upstream)
        self.log(self.scrub.text(_line(entry)))


def _line(entry: Entry) -> str:
    v = entry.verdict
    head = (f"#{entry.seq} {entry.exchange.action or '-':<13} {entry.exchange.status:>3} "
            f"{entry.exchange.elapsed:7.3f}s  {v.verdict} [{v.dialect}]")
    details = [f"{f['severity']} {f['check']}: {f['message']}" for f in v.findings]
    details += [f"request: {problem}" for problem in v.request]
    return "\n".join([head, *(f"    {d[:300]}" for d in details)])


def _params(request: Any, body: bytes) -> dict[str, str]:
    """What the panel will read: the query, then the body over it (docs/PROTOCOL.md §1)."""
    values = {k: request.args[k] for k in request.args}
    if "json" in (request.content_type or ""):
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        if isinstance(data, dict):
            values.update({str(k): "" if v is None else str(v) for k, v in data.items()})
    else:
        values.update({k: request.form[k] for k in request.form})
    return values


def _json(data: Any, status: int) -> Any:
    from werkzeug.wrappers import Response

    return Response(json.dumps(data), status, content_type="application/json")


def _drop(environ: dict[str, Any]) -> None:
    """Close the client's socket without a byte of answer, as the upstream did to us."""
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


@dataclass
class RunningProxy:
    url: str
    proxy: Proxy
    _server: Any
    _thread: threading.Thread

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v2"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self.proxy.recorder is not None:
            self.proxy.recorder.close()

    def __enter__(self) -> RunningProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_proxy(config: ProxyConfig, *, host: str = "127.0.0.1", port: int = 0,
                log: Callable[[str], None] = lambda line: None) -> RunningProxy:
    """Serve the proxy on a thread of this process (threaded; port 0 = ephemeral)."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # an access log line would carry a GET request's key

    proxy = Proxy(config, log=log)
    server = make_server(host, port, proxy, threaded=True, request_handler=QuietHandler)
    # threaded=True gives werkzeug's ThreadedWSGIServer: daemon threads, and the bound port;
    # stop() waits for serve_forever's next look at shutdown(), every poll_interval
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="smmkit-proxy", daemon=True)
    thread.start()
    return RunningProxy(f"http://{server.host}:{server.port}", proxy, server, thread)
