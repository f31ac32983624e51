"""`framing.verdict`, the gunicorn worker's "is the request whole?" (serving/framing.py):
property tests over requests cut at every byte. A request is READY only once whole (so no
thread ever waits on a slow client), and always READY once whole (so none is left unanswered)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from smmkit.mock_server.serving.framing import HEAD_LIMIT, Verdict, verdict

MAX = 1000


def _request(body: bytes, chunked: bool, chunks: list[int]) -> bytes:
    head = b"POST /api/v2 HTTP/1.1\r\nHost: x\r\n"
    if not chunked:
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    out, pos = [head + b"Transfer-Encoding: chunked\r\n\r\n"], 0
    for size in chunks:
        piece = body[pos:pos + size]
        pos += len(piece)
        if piece:
            out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    if pos < len(body):
        out.append(b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:]))
    return b"".join(out) + b"0\r\n\r\n"


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200), chunked=st.booleans(),
       chunks=st.lists(st.integers(1, 50), max_size=6))
def test_ready_exactly_when_whole(body: bytes, chunked: bool, chunks: list[int]) -> None:
    request = _request(body, chunked, chunks)
    assert verdict(request, MAX) is Verdict.READY
    for cut in range(len(request)):
        assert verdict(request[:cut], MAX) is Verdict.WAIT, (cut, request[:cut])


def test_over_limit_length_is_ready_before_any_body() -> None:
    head = b"POST /api/v2 HTTP/1.1\r\nContent-Length: 1099511627776\r\n\r\n"
    assert verdict(head, MAX) is Verdict.READY  # the app answers 413 without the body


def test_unknown_coding_and_junk_are_ready_for_the_parser() -> None:
    assert verdict(b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", MAX) is Verdict.READY
    assert verdict(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", MAX) \
        is Verdict.READY
    assert verdict(b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", MAX) is Verdict.READY
    assert verdict(b"G" * (HEAD_LIMIT + 1), MAX) is Verdict.READY
    assert verdict(b"GET / HTTP/1.1\r\nHost: x\r\n", MAX) is Verdict.WAIT
