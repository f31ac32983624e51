"""When have we got a whole HTTP/1.1 request? Bytes in, a verdict out; no sockets here.

The gunicorn worker (`workers.py`) reads every connection without blocking in its event loop
and hands it to a thread only once `verdict(buffer)` says the request is all there (or can be
refused without more bytes). A slow or idle client then holds a buffer, never a thread — the
point of issue 16's connection limits.
"""

from __future__ import annotations

from enum import Enum

HEAD_LIMIT = 64 * 1024  # far above gunicorn's own line/header limits, which answer the client


class Verdict(Enum):
    WAIT = "wait"  # more bytes are needed
    READY = "ready"  # a whole request (or one the parser will refuse at once) is buffered


def verdict(buffer: bytes | bytearray, max_body: int) -> Verdict:
    """READY when `buffer` holds a whole request, or enough to answer it without its body:
    an over-limit Content-Length (413), an unknown transfer coding or unreadable framing (the
    parser's 400), a head that will never end within HEAD_LIMIT (431/414)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return Verdict.READY if len(buffer) > HEAD_LIMIT else Verdict.WAIT
    body_start = end + 4
    length, coding = _framing(bytes(buffer[:end]))
    if coding is not None:
        if coding != b"chunked":
            return Verdict.READY  # the parser refuses it
        return _chunked(buffer, body_start, max_body)
    if length is None:
        return Verdict.READY
    if length < 0 or length > max_body:
        return Verdict.READY
    return Verdict.READY if len(buffer) - body_start >= length else Verdict.WAIT


def _framing(head: bytes) -> tuple[int | None, bytes | None]:
    """(Content-Length, Transfer-Encoding) of a request head; -1 for a length that is not a
    number (the parser answers it)."""
    length: int | None = None
    coding: bytes | None = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            text = value.strip()
            length = int(text) if text.isdigit() and len(text) < 20 else -1
        elif name == b"transfer-encoding":
            coding = value.strip().lower()
    return length, coding


def _chunked(buffer: bytes | bytearray, pos: int, max_body: int) -> Verdict:
    """Walk the chunks: READY at the last chunk's end, at junk, or past `max_body`."""
    total = 0
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return Verdict.READY if len(buffer) - pos > 1024 else Verdict.WAIT
        size_text = bytes(buffer[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return Verdict.READY
        if size < 0:
            return Verdict.READY
        if size == 0:  # trailers, then an empty line
            rest = buffer[line_end + 2:]
            done = rest.startswith(b"\r\n") or rest.find(b"\r\n\r\n") >= 0
            return Verdict.READY if done else Verdict.WAIT
        total += size
        if total > max_body:
            return Verdict.READY
        pos = line_end + 2 + size + 2
        if pos > len(buffer):
            return Verdict.WAIT
