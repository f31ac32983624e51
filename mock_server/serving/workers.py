"""gunicorn worker for the fake: threaded keep-alive workers whose own error pages are JSON.

gunicorn answers requests it cannot parse (a 5 kB request line, a bad header, garbage) itself,
with an HTML page, before the app sees them. A panel client must get JSON whatever it sends,
so in our worker processes gunicorn's error writer is swapped for one that writes
`{"error": "<reason>"}` with the same status.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"error": reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class JsonErrorThreadWorker(ThreadWorker):  # type: ignore[misc]
    def init_process(self) -> Any:
        # Patched in this worker process only; gunicorn calls util.write_error for every
        # request it rejects before the app runs.
        util.write_error = write_json_error
        return super().init_process()
