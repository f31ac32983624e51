"""The HTTP edge: a Flask app whose /api/v2 path is a lean WSGI function over `api.Api`.

`create_app(panel=None, *, config=None)` receives its state. Requests to /api/v2 skip Flask's
per-request machinery (most of the cost of a tiny JSON answer) and go straight to
`ApiEndpoint`; everything else — the control plane, and JSON 404/405 for other paths — is
ordinary Flask.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from .api import Api, Reply, http_error, read_params
from .config import Config, build_panel
from .dialects import Dialect
from .errors import HTTP_TEXTS
from .panel import Panel

API_PATHS = frozenset({"/api/v2", "/api/v2/"})
API_METHODS = ("GET", "HEAD", "POST")


class ApiEndpoint:
    """WSGI callable for /api/v2: read the request, hand it to `Api`, write the reply."""

    def __init__(self, api: Api, max_body: int) -> None:
        self.api = api
        self.max_body = max_body

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        reply = self.respond(environ)
        headers = [("Content-Type", reply.content_type),
                   ("Content-Length", str(len(reply.body))), *reply.headers]
        start_response(f"{reply.status} {_REASONS.get(reply.status, 'OK')}", headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [reply.body]

    def respond(self, environ: dict[str, Any]) -> Reply:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in API_METHODS:
            return http_error(405, (("Allow", ", ".join(API_METHODS)),))
        body = self._body(environ)
        if body is None:
            return http_error(413)
        content_type = environ.get("CONTENT_TYPE", "")
        params = read_params(environ.get("QUERY_STRING", ""), content_type, body,
                             multipart=lambda: _multipart(environ, body))
        return self.api.handle(params)

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        stream = environ["wsgi.input"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.max_body:
            return None
        if length > 0:
            return stream.read(length)
        if environ.get("wsgi.input_terminated"):  # chunked: the server marks the end for us
            data = stream.read(self.max_body + 1)
            return None if len(data) > self.max_body else data
        return b""


def _multipart(environ: dict[str, Any], body: bytes) -> dict[str, str]:
    from werkzeug.formparser import parse_form_data

    copy = dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
    _, form, files = parse_form_data(copy, silent=True)
    values = {name: form[name] for name in form}
    for name in files:  # a client that uploads a field as a file still means its text
        values[name] = files[name].read().decode("utf-8", "replace")
    return values


_REASONS = {200: "OK", 404: "NOT FOUND", 405: "METHOD NOT ALLOWED", 413: "REQUEST ENTITY TOO LARGE",
            500: "INTERNAL SERVER ERROR"}


class Dispatcher:
    """Route /api/v2 to the lean endpoint, everything else to Flask."""

    def __init__(self, endpoint: ApiEndpoint, fallback: Any) -> None:
        self.endpoint = endpoint
        self.fallback = fallback

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in API_PATHS:
            return self.endpoint(environ, start_response)
        return self.fallback(environ, start_response)


def create_app(panel: Panel | None = None, *, config: Config | None = None) -> Flask:
    """The fake panel as a WSGI app. Tests pass the panel they built; `serve` passes its own."""
    config = config or Config()
    panel = panel or build_panel(config)
    app = Flask("mock_server")
    app.config["SMMKIT"] = config
    app.extensions["smmkit.panel"] = panel
    api = Api(panel, Dialect(config.dialect))
    app.extensions["smmkit.api"] = api

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

    app.wsgi_app = Dispatcher(ApiEndpoint(api, config.max_body), app.wsgi_app)  # type: ignore[method-assign]
    return app
