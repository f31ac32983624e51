"""Running the Flask app (control API, dashboard, OpenAPI) for the event-loop server.

The loop hands a whole, already-read request to a pool thread; `call_wsgi` runs the app there
per PEP 3333 and gives back one `Reply` (the loop writes it). The app's answers are small and
finite (the dashboard polls; nothing streams), so the body is collected whole.
"""

from __future__ import annotations

import io
import sys
from typing import Any
from urllib.parse import unquote_to_bytes

from smmkit.mock_server.web.api import Reply


def environ_for(request: Any, path: str, query: str, peer: tuple[str, int],
                server: tuple[str, int]) -> dict[str, Any]:
    """The WSGI environ of one parsed request (`http1.Request`)."""
    body = request.body if isinstance(request.body, bytes) else b""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{request.version}",
        "REMOTE_ADDR": peer[0],
        "REMOTE_PORT": str(peer[1]),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        key = name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = text
        elif key != "CONTENT_LENGTH":  # the body is whole: its real length is above
            field = f"HTTP_{key}"
            environ[field] = f"{environ[field]}, {text}" if field in environ else text
    return environ


def call_wsgi(app: Any, environ: dict[str, Any]) -> Reply:
    """Run `app` on `environ`; its answer as a Reply (status, body, type, other headers)."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: chunks.append(data)

    chunks: list[bytes] = []
    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    content_type = "text/plain"
    kept = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-type":
            content_type = value
        elif lowered not in ("content-length", "transfer-encoding"):
            kept.append((name, value))
    return Reply(int(status.split(" ", 1)[0]), b"".join(chunks), content_type, tuple(kept))
