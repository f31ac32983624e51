"""`GET /openapi.json` and `GET /_control/openapi.json`: the running fake describes itself.

The documents are generated from the contract's schemas for this server's dialect (the
tolerant profile under --robust, whose awkward answers only it accepts), with `servers` set to
the address the request came in on, so Swagger UI's "Try it out" and Schemathesis call this
fake. /_control/openapi.json sits behind the admin token like everything under /_control/.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, current_app, request
from smmkit.mock_server.web.dialects import encode


@functools.lru_cache(maxsize=16)
def _document(part: str, dialect: str, profile: str, server_url: str) -> bytes:
    from smmkit import schemas  # only when asked: serving never needs jsonschema otherwise

    return encode(schemas.openapi_document(dialect=dialect, profile=profile,
                                           server_url=server_url, part=part))


def openapi_blueprint() -> Blueprint:
    bp = Blueprint("openapi", __name__)

    def answer(part: str) -> Response:
        config: Any = current_app.config["SMMKIT"]
        dialect = "seed" if config.dialect == "seed" else "perfectpanel"
        profile = "tolerant" if config.robust else "strict"
        body = _document(part, dialect, profile, request.host_url.rstrip("/"))
        return Response(body, mimetype="application/json")

    @bp.get("/openapi.json")
    def api_document() -> Response:
        return answer("api")

    @bp.get("/_control/openapi.json")
    def control_document() -> Response:
        return answer("control")

    return bp
