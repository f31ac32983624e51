"""The HTTP edge: a Flask app whose /api/v2 path is a lean WSGI function over `api.Api`.

`create_app(panel=None, *, config=None)` receives its state. Requests to /api/v2 skip Flask's
per-request machinery (most of the cost of a tiny JSON answer) and go straight to
`ApiEndpoint`; everything else — the control plane, and JSON 404/405 for other paths — is
ordinary Flask.

What the edge promises whatever arrives (issue 16): a body announced larger than `max_body` is
refused with a JSON 413 before a byte of it is read; a body that ends before its Content-Length
(a client that half-closes or disconnects) gets a JSON 400 "Incorrect request" and changes
nothing; only GET and POST reach the panel (HEAD and every other method: JSON 405, nothing
done); a request whose action committed always gets its answer, even when the journal fails.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NamedTuple, overload

from flask import Flask, jsonify
from smmkit.mock_server.core import faults
from smmkit.mock_server.core.config import Config, build_panel
from smmkit.mock_server.core.errors import HTTP_TEXTS, IncorrectRequest
from smmkit.mock_server.core.faults import Fault, FaultBook
from smmkit.mock_server.core.panel import Moment, Panel
from smmkit.mock_server.storage.engines import AnyJournal, open_journal
from smmkit.mock_server.storage.errors import StoreUnavailable
from smmkit.mock_server.web.api import Api, Params, Pending, Reply, http_error, read_params
from smmkit.mock_server.web.console_log import ConsoleLog
from smmkit.mock_server.web.dialects import Awkward, Dialect, encode
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES, parse_options_header
from werkzeug.wsgi import LimitedStream, get_content_length

API_PATHS = frozenset({"/api/v2", "/api/v2/"})
# Reads whose answer may be kept until the store changes, when the panel says it is timeless.
TIMELESS_ACTIONS = frozenset({"balance", "status"})
MAX_KEPT_REPLIES = 20_000  # per thread, dropped wholesale beyond (memory at 1M orders)
MAX_PARSED = 20_000  # requests whose parameters are kept as read, dropped wholesale beyond
MAX_PARSED_BODY = 2048  # bytes: a longer request is read anew each time
# HEAD is not here: a HEAD answer has no body, so an `add` it carried out would be charged to a
# client that never sees the order id.
API_METHODS = ("GET", "POST")
INCOMPLETE = object()  # marker: the body ended before its Content-Length
TOO_LARGE = object()  # marker: the body is announced (or chunked) over max_body


class ApiRequest(NamedTuple):
    """One /api/v2 request as any server hands it over: `body` is the whole body, TOO_LARGE
    (announced over `max_body`, never read) or INCOMPLETE (it ended before its length).
    A named tuple: one is built per request, where a frozen dataclass's __init__ cost more."""

    method: str
    query: str
    content_type: str
    body: bytes | object
    host: str = "panel.example"


@dataclass(frozen=True)
class Later:
    """An answer that comes `seconds` from now (a `latency` fault): `resume()` carries the
    request out then and gives its reply. A threaded server sleeps; an event loop sets a timer."""

    seconds: float
    resume: Callable[[], Reply]


class ApiEndpoint:
    """/api/v2: `answer(ApiRequest)` for any server, and the WSGI callable over it."""

    def __init__(self, api: Api, max_body: int, *, faults: FaultBook | None = None,
                 journal: AnyJournal | None = None, request_log: ConsoleLog | None = None,
                 keep_replies: bool = True) -> None:
        self.api = api
        self.max_body = max_body
        self.faults = faults
        self.journal = journal
        self.request_log = request_log
        # Timeless answers (`Panel.timeless`) are kept by request bytes until the store
        # changes; never in robustness mode, whose answers are drawn anew each time.
        self.keep_replies = keep_replies and api.awkward is None
        # Parameters as read from the request bytes (the same bytes always read the same):
        # pollers send the same few requests again and again. Never changed once read.
        self._parsed: dict[tuple[str, str, bytes], Params] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = ApiRequest(environ.get("REQUEST_METHOD", "GET"),
                             environ.get("QUERY_STRING", ""), environ.get("CONTENT_TYPE", ""),
                             self._body(environ), environ.get("HTTP_HOST", "panel.example"))
        outcome = self.answer(request)
        reply = outcome if isinstance(outcome, Reply) else _wait(outcome)
        if reply is DROPPED:
            _drop_connection(environ)
            start_response("500 DROPPED", [("Content-Length", "0")])
            return []
        headers = [("Content-Type", reply.content_type),
                   ("Content-Length", str(len(reply.body))), *reply.headers]
        start_response(status_line(reply.status), headers)
        return [b""] if request.method == "HEAD" else [reply.body]

    @overload
    def answer(self, request: ApiRequest, *, later: Literal[False] = False) -> Reply | Later: ...

    @overload
    def answer(self, request: ApiRequest, *, later: bool) -> Reply | Later | Pending: ...

    def answer(self, request: ApiRequest, *, later: bool = False) -> Reply | Later | Pending:
        """The reply to one request (DROPPED: close the connection without a byte), or a
        `Later` when a fault delays it. Never raises for anything a client sends. `later`: an
        order that passes its checks comes back `Pending`, for `carry_out` with others."""
        started = time.perf_counter()
        try:
            with self.api.panel.request() as moment:
                outcome, params, fault = self.respond(request, moment, later=later)
                if isinstance(outcome, Later):
                    return Later(outcome.seconds,
                                 partial(self._resume, outcome.resume, params, fault, started))
                if isinstance(outcome, Pending):
                    return Pending(outcome.place,
                                   partial(self._finish, outcome.finish, params, started, moment))
                self._log(params, outcome, started, fault, moment)
                return outcome
        except StoreUnavailable as exc:  # the database is away: the panel's failure answer
            return store_unavailable(exc)

    def carry_out(self, pending: Sequence[Pending]) -> list[Reply]:
        """Place the orders of `answer(later=True)` together (one transaction); each one's
        answer, logged. When the transaction fails as a whole, no order is placed and each
        gets the answer of that failure."""
        try:
            outcomes = self.api.panel.place_orders([p.place for p in pending])
        except Exception as exc:  # noqa: BLE001 - answered to each of them
            outcomes = [exc] * len(pending)
        return [p.finish(outcome) for p, outcome in zip(pending, outcomes, strict=True)]

    def _finish(self, finish: Callable[[int | Exception], Reply], params: Params | None,
                started: float, moment: Moment, outcome: int | Exception) -> Reply:
        try:
            reply = finish(outcome)
        except StoreUnavailable as exc:
            reply = store_unavailable(exc)
        self._log(params, reply, started, None, moment)
        return reply

    def _resume(self, then: Callable[[], Reply], params: Params | None, fault: Fault | None,
                started: float) -> Reply:
        try:
            with self.api.panel.request() as moment:
                reply = then()
                self._log(params, reply, started, fault, moment)
                return reply
        except StoreUnavailable as exc:
            return store_unavailable(exc)

    def _log(self, params: Params | None, reply: Reply, started: float, fault: Fault | None,
             moment: Moment) -> None:
        if params is None or (self.journal is None and self.request_log is None):
            return
        try:
            self._record(params, reply, started, fault, moment)
        except Exception as exc:  # noqa: BLE001 - the action is done: its answer must not be
            # lost to the log; one line, not a traceback (a database outage lands here on
            # every request)
            print(f"smmkit: a request could not be logged: {type(exc).__name__}: "
                  f"{str(exc)[:300]}", file=sys.stderr, flush=True)

    def respond(self, request: ApiRequest, moment: Moment, *,
                later: bool = False) -> tuple[Reply | Later | Pending, Params | None,
                                              Fault | None]:
        if request.method not in API_METHODS:
            return http_error(405, (("Allow", ", ".join(API_METHODS)),)), None, None
        body = request.body
        if body is TOO_LARGE:
            return http_error(413, (("Connection", "close"),)), None, None
        if body is INCOMPLETE:
            text = IncorrectRequest().text(self.api.dialect.name)
            return Reply(400, encode({"error": text}), headers=(("Connection", "close"),)), \
                None, None
        assert isinstance(body, bytes)
        content_type = request.content_type
        kept = self._kept_replies(moment)
        asked = (request.query, content_type, body)
        if kept is not None:
            hit = kept.get(asked)
            if hit is not None:
                return hit[0], hit[1], None
        params = self._parsed.get(asked)
        if params is None:
            params = read_params(request.query, content_type, body,
                                 multipart=lambda: _multipart(content_type, body))
            if self.journal is not None:  # the journal's part of the line, the same each time
                params.journal_fields = self.journal.fields(params.values)
            if len(body) <= MAX_PARSED_BODY:
                if len(self._parsed) >= MAX_PARSED:
                    self._parsed.clear()
                self._parsed[asked] = params
        fault = None
        if self.faults is not None and moment.faults:
            fault = self.faults.pick(params.values.get("action", ""), params.values.get("key"))
        if fault is not None:
            return self._faulty(fault, params, request.host), params, fault
        reply = self.api.handle_later(params) if later else self.api.handle(params)
        if isinstance(reply, Pending):
            return reply, params, None
        if (kept is not None and reply.status == 200 and self.api.panel.timeless()
                and params.values.get("action") in TIMELESS_ACTIONS):
            if len(kept) >= MAX_KEPT_REPLIES:
                kept.clear()
            kept[asked] = (reply, params)
        return reply, params, None

    def _kept_replies(self, moment: Moment) -> dict[Any, tuple[Reply, Params]] | None:
        """The answers kept for this state of the store, or None when none may be used now:
        a refund due but unbooked, or a fault armed, changes answers without a commit."""
        if not self.keep_replies or moment.due or moment.faults:
            return None
        memo = self.api.panel.reads.memo()
        if memo is None:
            return None
        kept = memo.get(self)
        if kept is None:
            kept = memo[self] = {}
        return kept  # type: ignore[no-any-return]

    def _faulty(self, fault: Fault, params: Params, host: str) -> Reply | Later:
        """What a panel failing in `fault.kind` sends (docs/PROTOCOL.md §7)."""
        kind, style = fault.kind, self.api.dialect.name
        html = "text/html; charset=UTF-8"
        if kind == "drop":
            return DROPPED
        if kind == "http_5xx":
            ray = f"{fault.id:08x}{fault.remaining or 0:08x}"
            return Reply(fault.params["status"], faults.cloudflare_page(fault.params["status"],
                                                                         host, ray), html)
        if kind == "maintenance":
            return Reply(200, faults.MAINTENANCE_PAGE.encode(), html)
        if kind == "rate_limit":
            return Reply(429, encode({"error": "Too many requests"}),
                         headers=(("Retry-After", str(fault.params["retry_after"])),))
        if kind == "error_4xx" and "error" in fault.params:
            return Reply(fault.params["status"], faults.error_body(fault.params["error"], style))
        if kind == "latency":  # carried out when the delay is over, not before
            seconds = self.faults.latency_seconds(fault) if self.faults else 0.0
            return Later(seconds, partial(self.api.handle, params))
        reply = self.api.handle(params)  # the request is carried out from here on
        if kind == "lost_after_commit":
            return DROPPED
        if kind == "html_content_type":
            return Reply(reply.status, reply.body, html, reply.headers)
        if kind == "error_4xx" and reply.body.startswith(b'{"error"'):
            return Reply(fault.params["status"], reply.body)
        if kind == "truncated_json":
            return Reply(reply.status, faults.truncate(reply.body), reply.content_type)
        if kind == "malformed_json":
            return Reply(reply.status, faults.malform(reply.body), reply.content_type)
        return reply

    def _body(self, environ: dict[str, Any]) -> bytes | object:
        """The whole body; TOO_LARGE when it is over `max_body` (unread), INCOMPLETE when the
        client stopped sending before its Content-Length."""
        stream = environ["wsgi.input"]
        length = get_content_length(environ)
        try:
            if length is not None:
                if length > self.max_body:
                    return TOO_LARGE
                data = stream.read(length) if length > 0 else b""
                return data if len(data) == length else INCOMPLETE
            if environ.get("wsgi.input_terminated"):  # chunked: the server marks the end for us
                data = stream.read(self.max_body + 1)
                return TOO_LARGE if len(data) > self.max_body else data
        except Exception:  # the client went away mid-body; each server says so differently
            return INCOMPLETE
        return b""

    def _record(self, params: Params, reply: Reply, started: float, fault: Fault | None,
                moment: Moment) -> None:
        status, body = (0, b"") if reply is DROPPED else (reply.status, reply.body)
        if self.request_log is not None:
            self.request_log(params=params.values, status=status, body=body,
                             latency=time.perf_counter() - started,
                             fault=fault.kind if fault else None)
        if self.journal is None:
            return
        service_type = None
        if params.values.get("action") == "add":
            service = self.api.panel.catalog().get(_int(params.values.get("service")))
            service_type = service.type if service else None
        self.journal.record(
            at=moment.now, params=params.values, status=status, body=body,
            latency=time.perf_counter() - started, fault=fault.kind if fault else None,
            service_type=service_type, fields=params.journal_fields)

DROPPED = Reply(0, b"")  # marker: close the connection instead of answering
UNAVAILABLE = {"error": "Service unavailable"}


def _wait(later: Later) -> Reply:
    time.sleep(later.seconds)
    return later.resume()


def store_unavailable(exc: StoreUnavailable) -> Reply:
    """503 with a JSON error and Retry-After, no traceback: the database cannot be reached."""
    print(f"smmkit: {exc}", file=sys.stderr, flush=True)
    return Reply(503, encode(UNAVAILABLE), headers=(("Retry-After", "1"),))


def _drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's socket without a byte of response (gunicorn and werkzeug expose it)."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _int(value: object) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return -1


def _multipart(content_type: str, body: bytes) -> dict[str, str]:
    """Fields of a multipart body, bytes decoded here: Werkzeug's form parser would turn bytes
    that are not UTF-8 into U+FFFD, indistinguishable from a client that sent U+FFFD. A part
    uploaded as a file counts as a field (the client still means its text)."""
    from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

    boundary = parse_options_header(content_type)[1].get("boundary", "")
    if not boundary:
        return {}
    decoder = MultipartDecoder(boundary.encode("latin-1", "replace"), max_parts=10_000)
    values: dict[str, str] = {}
    name, chunks = None, bytearray()
    try:
        decoder.receive_data(body)
        decoder.receive_data(None)
        while True:
            event = decoder.next_event()
            if isinstance(event, (Field, File)):
                name, chunks = event.name, bytearray()
            elif isinstance(event, Data):
                chunks += event.data
                if not event.more_data and name is not None:
                    values[name] = bytes(chunks).decode("utf-8", "surrogateescape")
            elif isinstance(event, (Epilogue, NeedData)):
                return values
    except ValueError:  # a body that is not multipart after all: what parsed so far
        return values


# Cloudflare's own codes, which a `http_5xx` fault can send (Werkzeug does not know them).
_CLOUDFLARE_REASONS = {520: "Unknown Error", 521: "Web Server Is Down",
                       522: "Connection Timed Out", 523: "Origin Is Unreachable",
                       524: "A Timeout Occurred", 525: "SSL Handshake Failed",
                       526: "Invalid SSL Certificate", 527: "Railgun Error",
                       530: "Origin DNS Error"}
_STATUS_LINES: dict[int, str] = {}


def status_line(status: int) -> str:
    """`429 Too Many Requests`: Werkzeug's reason phrases, cached (this runs per request)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        reason = (HTTP_STATUS_CODES.get(status) or _CLOUDFLARE_REASONS.get(status)
                  or ("Client Error" if status < 500 else "Server Error"))
        line = _STATUS_LINES[status] = f"{status} {reason}"
    return line


class Dispatcher:
    """Route /api/v2 to the lean endpoint, everything else to Flask.

    A body announced over `max_body` is refused with a JSON 413 here, before anything reads
    it, and the connection is closed. Otherwise, whatever the answer, the request body is read
    to its end before replying: a body left unread on a keep-alive connection (a 404, a 405)
    would be parsed as the next request."""

    def __init__(self, endpoint: ApiEndpoint, fallback: Any) -> None:
        self.endpoint = endpoint
        self.fallback = fallback
        self.too_large = http_error(413, (("Connection", "close"),))

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = get_content_length(environ)
        if length is not None and length > self.endpoint.max_body:
            reply = self.too_large
            start_response(status_line(413), [("Content-Type", reply.content_type),
                                              ("Content-Length", str(len(reply.body))),
                                              *reply.headers])
            return [reply.body]
        app = self.endpoint if environ.get("PATH_INFO", "") in API_PATHS else self.fallback
        _bound_input(environ, length)

        def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            if any(name.lower() == "connection" for name, _ in headers):
                pass  # the app already closes this connection: nothing left worth reading
            elif not _drain(environ, length):
                headers = [*headers, ("Connection", "close")]
            return start_response(status, headers, *exc)

        return app(environ, start)


def _bound_input(environ: dict[str, Any], length: int | None) -> None:
    """Make wsgi.input end at Content-Length (a raw socket file would block past it)."""
    stream = environ.get("wsgi.input")
    if stream is not None and length and not isinstance(stream, LimitedStream):
        environ["wsgi.input"] = LimitedStream(stream, length)


def _drain(environ: dict[str, Any], length: int | None) -> bool:
    """Read what is left of the request body (in chunks, never held); False when it cannot be
    read, so the connection should not be reused."""
    stream = environ.get("wsgi.input")
    if stream is None or not length or getattr(stream, "is_exhausted", False):
        return True  # nothing left (the endpoint read the whole body): no extra read
    try:
        while stream.read(65536):
            pass
    except Exception:  # a client gone mid-body: do not reuse the connection
        return False
    return True


def create_app(panel: Panel | None = None, *, config: Config | None = None) -> Flask:
    """The fake panel as a WSGI app. Tests pass the panel they built; `serve` passes its own."""
    config = config or Config()
    panel = panel or build_panel(config)
    app = Flask("smmkit.mock_server")
    # No implicit OPTIONS routes: they would answer an empty HTML body; 405 JSON instead.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config["SMMKIT"] = config
    app.extensions["smmkit.panel"] = panel
    api = Api(panel, Dialect(config.dialect),
              awkward=Awkward(config.seed) if config.robust else None)
    fault_book = FaultBook(panel.store, seed=config.seed, can_drop=config.server != "granian")
    journal = open_journal(panel.store, config.journal_limit) if config.journal_limit else None
    app.extensions.update({"smmkit.api": api, "smmkit.faults": fault_book,
                           "smmkit.journal": journal})
    from smmkit.mock_server.web.control import control_blueprint

    app.register_blueprint(control_blueprint(config.admin_token))
    from smmkit.mock_server.web.openapi_routes import openapi_blueprint  # /openapi.json

    app.register_blueprint(openapi_blueprint())

    @app.get("/")
    def index() -> Any:
        return jsonify({"name": "smmkit fake SMM panel", "api": "/api/v2"})

    @app.errorhandler(HTTPException)
    def http_exception(exc: HTTPException) -> Any:
        code = exc.code or 500
        response = jsonify({"error": HTTP_TEXTS.get(code, exc.name)})
        response.status_code = code
        if code == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(StoreUnavailable)
    def database_away(exc: StoreUnavailable) -> Any:
        response = jsonify(UNAVAILABLE)
        response.status_code, response.headers["Retry-After"] = 503, "1"
        print(f"smmkit: {exc}", file=sys.stderr, flush=True)
        return response

    # The live request log and the dashboard (issue 13).
    request_log = None if config.request_log == "off" else ConsoleLog(config.request_log)
    from smmkit.mock_server.web.dashboard import dashboard_blueprint

    app.register_blueprint(dashboard_blueprint(config.admin_token))
    endpoint = ApiEndpoint(api, config.max_body, faults=fault_book, journal=journal,
                           request_log=request_log)
    app.wsgi_app = Dispatcher(endpoint, app.wsgi_app)  # type: ignore[method-assign]
    return app
