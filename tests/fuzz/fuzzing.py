"""Shared by the fuzz tests: the profile, the checks run after every example, and a reader of
the answers a raw socket got back."""

from __future__ import annotations

import json
import socket
import struct
import time
from dataclasses import dataclass, field
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
    the store, orders in the store exactly the ones acknowledged (when the example says how
    many it saw acknowledged), and every endpoint still answering: the API (services and a
    balance), the dashboard's root, the control clock and the journal (which a wedged flusher
    once kept from answering for 30 s)."""

    def __init__(self, srv: Serve) -> None:
        self.srv = srv
        self.seen = len(srv.log_text())
        self.before = {row[0] for row in srv.db_rows("SELECT id FROM orders")}

    def check(self, what: object, acknowledged: list[int] | None = None,
              at_most: int | None = None) -> None:
        """`acknowledged`: the order ids the client was answered with. Without `at_most` the
        store must hold exactly those new orders (a committed add always gets its answer; a
        refused request places nothing). With it — answers may have been lost with the
        connection, or not all read — every acknowledged order is stored, and at most
        `at_most` new orders are."""
        log = self.srv.log_text()
        new, self.seen = log[self.seen:], len(log)
        assert not traceback_in(new), f"{what!r} left a traceback:\n{new[-3000:]}"
        assert self.srv.conserved(), f"{what!r} broke the conservation law"
        placed = {row[0] for row in self.srv.db_rows("SELECT id FROM orders")} - self.before
        if acknowledged is not None and at_most is None:
            assert placed == set(acknowledged), (what, sorted(placed), acknowledged)
        if at_most is not None:
            assert set(acknowledged or ()) <= placed, (what, sorted(placed), acknowledged)
            assert len(placed) <= at_most, (what, sorted(placed), at_most)
        answer = requests.post(self.srv.api, data={"key": DEMO_KEY, "action": "services"},
                               timeout=10)
        assert answer.status_code == 200 and isinstance(answer.json(), (list, dict)), what
        balance = requests.post(self.srv.api, data={"key": DEMO_KEY, "action": "balance"},
                                timeout=10)
        assert balance.status_code == 200 and isinstance(balance.json(), dict), (what,
                                                                                 balance.text)
        assert requests.get(self.srv.base + "/", timeout=10).status_code == 200, what
        clock = self.srv.control("GET", "/clock")
        assert clock.status_code == 200, (what, clock.text[:200])
        journal = self.srv.control("GET", "/journal", params={"limit": "1"})
        assert journal.status_code == 200, (what, journal.text[:200])


@dataclass
class Answers:
    """The HTTP/1.1 answers read off one connection, in order."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    raw: bytes = b""
    closed: bool = False  # the server closed the connection (not our timeout)
    garbage: bytes = b""  # bytes after the last answer that are not one

    def orders(self) -> list[int]:
        """Ids of the orders the answers acknowledged (`{"order": id}`)."""
        found = []
        for body in self.bodies:
            try:
                data = json.loads(body)
            except ValueError:
                continue
            if isinstance(data, dict) and isinstance(data.get("order"), int):
                found.append(data["order"])
        return found


def split_answers(data: bytes, heads: tuple[bool, ...] = ()) -> tuple[list[tuple[int, bytes]],
                                                                     bytes]:
    """The complete answers at the start of `data` and what is left. `heads[i]`: the i-th
    request was a HEAD (its answer has no body whatever Content-Length says). Interim 1xx
    answers are skipped."""
    found: list[tuple[int, bytes]] = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep or not head.startswith(b"HTTP/1."):
            break
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            break
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            data = rest
            continue
        if (len(found) < len(heads) and heads[len(found)]) or status in (204, 304):
            body, data = b"", rest
        elif b"content-length" in headers:
            length = int(headers[b"content-length"] or 0)
            if len(rest) < length:
                break
            body, data = rest[:length], rest[length:]
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            decoded = _dechunk(rest)
            if decoded is None:
                break
            body, data = decoded
        else:  # read to the close
            body, data = rest, b""
        found.append((status, body))
    return found, data


def _dechunk(data: bytes) -> tuple[bytes, bytes] | None:
    body = b""
    while True:
        line, sep, data = data.partition(b"\r\n")
        if not sep:
            return None
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            _, sep, data = data.partition(b"\r\n")  # no trailers from our servers
            return (body, data) if sep else None
        if len(data) < size + 2:
            return None
        body, data = body + data[:size], data[size + 2:]


def converse(address: tuple[str, int], pieces: list[bytes], *, ending: str = "keep",
             heads: tuple[bool, ...] = (), expect: int = 0, timeout: float = 3.0,
             pause: float = 0.0, linger: float = 0.0) -> Answers:
    """Send `pieces` one write each (`pause` seconds apart), then end the way `ending` says:
    `keep` (wait for the answers), `half-close` (shut our write side, then read), `close`
    (close without reading) or `reset` (an abortive close, RST). Reads until the server
    closes, `expect` answers are in (then `linger` seconds more while bytes keep coming), or
    `timeout` passes without a byte."""
    answers = Answers()
    sock = socket.create_connection(address, timeout=timeout)
    try:
        for piece in pieces:
            sock.sendall(piece)
            if pause:
                time.sleep(pause)
        if ending == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return answers
        if ending == "close":
            return answers
        if ending == "half-close":
            sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(65536):
            answers.raw += chunk
            if expect and len(split_answers(answers.raw, heads)[0]) >= expect:
                if not linger:
                    break
                sock.settimeout(linger)
        else:
            answers.closed = True
    except (TimeoutError, OSError):
        pass
    finally:
        sock.close()
    found, answers.garbage = split_answers(answers.raw, heads)
    answers.statuses = [status for status, _ in found]
    answers.bodies = [body for _, body in found]
    return answers
