"""/api/v2 fuzzed: any bytes in any field over any transport (form, query, both, JSON with
any values, multipart), and any framing over a raw socket (pipelined requests, chunked
bodies cut at odd sizes, bad Content-Length, bytes sent in fragments, a client that
half-closes, closes or resets early). After every example: no 5xx, JSON from the app, no
traceback in the server's log, the conservation law in the store, the new orders in the
store exactly the ones acknowledged (at most the adds sent, when the client left early),
and every endpoint answering.

Fields are drawn so that real orders do get placed (a valid key, action and service most of
the time), so the conservation law and the order accounting are exercised, not vacuous."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote_from_bytes

import pytest
from fuzzing import Watch, converse, fuzz_settings
from hardening_support import DEMO_KEY, SERVERS, Serve
from hypothesis import given
from hypothesis import strategies as st

NAMES = ["key", "action", "service", "link", "quantity", "order", "orders", "refill",
         "refills", "runs", "interval", "comments", "usernames", "username", "min", "max",
         "delay", "expiry", "answer_number", "country", "device", "type_of_traffic"]
ACTIONS = [b"add", b"status", b"balance", b"services", b"refill", b"refill_status", b"cancel"]
SMALL = st.integers(0, 30).map(lambda n: str(n).encode())
Pairs = list[tuple[bytes, bytes]]


def byte_values() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=40),
        st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
        SMALL, st.sampled_from([b"https://x.com/f", b"\xff", b"\xc3\x28", b"\xed\xa0\x80",
                                b"100", b"23501", b"1,2,3", b"", b" ", b"\x00", b"%",
                                b"%ff", b"%ed%a0%80", b"1e3", b"-1", b"99999999999999999999",
                                b"0x10", b"\xd9\xa3", b"23501,23502,x"]))


@st.composite
def fields(draw: st.DrawFn) -> Pairs:
    """Name/value pairs; a name may repeat (which value counts is the server's choice)."""
    out: Pairs = [(b"key", draw(st.one_of(st.just(DEMO_KEY.encode()), byte_values()))),
                  (b"action", draw(st.one_of(st.sampled_from(ACTIONS), byte_values())))]
    if draw(st.booleans()):  # a plausible add: the law then has orders to count
        out += [(b"service", draw(st.sampled_from([b"1", b"3"]))),
                (b"link", b"https://x.com/" + draw(st.binary(max_size=8)).hex().encode()),
                (b"quantity", draw(st.sampled_from([b"20", b"100", b"1000"])))]
    for name in draw(st.lists(st.one_of(st.sampled_from(NAMES).map(str.encode),
                                        st.binary(min_size=1, max_size=8)), max_size=5)):
        out.append((name, draw(byte_values())))
    return draw(st.permutations(out)) if draw(st.booleans()) else out


def _form(items: Pairs, raw: bool) -> bytes:
    if raw:
        return b"&".join(k + b"=" + v for k, v in items)
    return "&".join(f"{quote_from_bytes(k)}={quote_from_bytes(v)}" for k, v in items).encode()


def _json_string(b: bytes) -> bytes:
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _json_raw(items: Pairs) -> bytes:
    """Raw bytes between the quotes (control bytes, invalid UTF-8), names may repeat."""
    return b"{" + b",".join(_json_string(k) + b":" + _json_string(v) for k, v in items) + b"}"


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**25), 10**25),
              st.floats(), st.text(max_size=20), st.sampled_from([1, 3, 100, 23501])),
    lambda kids: st.one_of(st.lists(kids, max_size=3),
                           st.dictionaries(st.text(max_size=5), kids, max_size=2)),
    max_leaves=5)


def _json_typed(items: Pairs, draw: st.DrawFn) -> bytes:
    """Valid JSON whose values may be numbers, lists, objects, null or booleans: what a real
    client's serializer sends (`"quantity": 100`, `"orders": [1, 2]`)."""
    data: dict[str, object] = {}
    for k, v in items:
        text = v.decode("utf-8", "surrogateescape")
        data[k.decode("utf-8", "surrogateescape")] = draw(st.one_of(
            st.just(text), st.just(int(text)) if text.isascii() and text.isdigit() else
            st.just(text), json_values))
    return json.dumps(data).encode()  # lone surrogates escaped as \udcxx


def _multipart(items: Pairs, draw: st.DrawFn) -> tuple[bytes, str]:
    boundary = draw(st.sampled_from([b"fuzz-boundary-7", b"b", b"x" * 70, b"a'b()+_,-./:=?"]))
    parts = []
    for k, v in items:
        disposition = b'form-data; name="' + k.replace(b'"', b"") + b'"'
        extra = draw(st.sampled_from([b"", b'; filename="f.txt"', b"; filename*=UTF-8''%ff"]))
        kind = draw(st.sampled_from([b"", b"\r\nContent-Type: text/plain; charset=latin-1",
                                     b"\r\nContent-Type: application/octet-stream"]))
        parts.append(b"--" + boundary + b"\r\nContent-Disposition: " + disposition + extra
                     + kind + b"\r\n\r\n" + v + b"\r\n")
    end = draw(st.sampled_from([b"--" + boundary + b"--\r\n", b"", b"--" + boundary + b"\r\n"]))
    label = f'multipart/form-data; boundary="{boundary.decode()}"' if draw(st.booleans()) \
        else f"multipart/form-data; boundary={boundary.decode()}"
    return b"".join(parts) + end, label


FORM_TYPES = ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; "
              "charset=utf-8", "application/x-www-form-urlencoded; charset=latin-1",
              "APPLICATION/X-WWW-FORM-URLENCODED", "", "text/plain", "application/json"]
JSON_TYPES = ["application/json", "application/json; charset=utf-8", "text/json",
              "application/vnd.api+json", "application/x-www-form-urlencoded", ""]


def _request(method: str, target: str, body: bytes, kind: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    if kind:
        lines.append(f"Content-Type: {kind}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@st.composite
def api_requests(draw: st.DrawFn) -> bytes:
    items = draw(fields())
    transport = draw(st.sampled_from(["form", "form-raw", "query", "both", "json",
                                      "json-dumps", "json-typed", "multipart"]))
    method = draw(st.sampled_from(["POST", "POST", "GET", "HEAD", "PUT", "DELETE", "OPTIONS"]))
    target, body = "/api/v2", b""
    kind = draw(st.sampled_from(FORM_TYPES)) if draw(st.integers(0, 4)) == 0 \
        else "application/x-www-form-urlencoded"
    if transport in ("form", "form-raw"):
        body = _form(items, raw=transport == "form-raw")
    elif transport == "query":
        target += "?" + _form(items, raw=False).decode()
        kind = ""
    elif transport == "both":  # some fields in the URL, the rest in the body
        cut = draw(st.integers(0, len(items)))
        target += "?" + _form(items[:cut], raw=False).decode()
        body = _form(items[cut:], raw=False)
    elif transport in ("json", "json-dumps", "json-typed"):
        kind = draw(st.sampled_from(JSON_TYPES)) if draw(st.integers(0, 3)) == 0 \
            else "application/json"
        if transport == "json":
            body = _json_raw(items)
        elif transport == "json-dumps":
            body = json.dumps({k.decode("utf-8", "surrogateescape"):
                               v.decode("utf-8", "surrogateescape") for k, v in items}).encode()
        else:
            body = _json_typed(items, draw)
    else:
        body, kind = _multipart(items, draw)
    return _request(method, target, body, kind)


@pytest.fixture(scope="module", params=SERVERS)
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp(f"fuzz-api-{request.param}"), request.param)
    yield server
    server.stop()


@fuzz_settings()
@given(payload=api_requests())
def test_any_bytes_in_any_field_over_any_transport(srv: Serve, payload: bytes) -> None:
    watch = Watch(srv)
    head = payload.startswith(b"HEAD")
    answers = converse(srv.address, [payload], heads=(head,), expect=1, timeout=10)
    assert len(answers.statuses) == 1, answers.raw[:300]
    assert answers.statuses[0] < 500, answers.raw[:300]
    if not head:
        content_type = answers.raw.partition(b"\r\n\r\n")[0].lower()
        assert b"content-type: application/json" in content_type, answers.raw[:300]
        assert isinstance(json.loads(answers.bodies[0]), (dict, list))
    watch.check(payload[:200], acknowledged=answers.orders())  # HEAD: none


# ------------------------------------------------------------------ framing


HEAD_LINES = st.one_of(
    st.sampled_from([b"Content-Length: 5", b"Content-Length: 0", b"Content-Length: -1",
                     b"Content-Length: 99999999999999999999", b"Content-Length: 1, 2",
                     b"Content-Length: +5", b"Content-Length: 0x5", b"Content-Length:  5 ",
                     b"Content-Length: 1099511627776", b"Transfer-Encoding: chunked",
                     b"Transfer-Encoding: xchunked", b"Transfer-Encoding: chunked, gzip",
                     b"Transfer-Encoding: gzip, chunked", b"Transfer-Encoding: identity",
                     b"Transfer-Encoding: CHUNKED", b"Content-Encoding: gzip",
                     b"Content-Type: application/json",
                     b"Content-Type: multipart/form-data; boundary=", b"Expect: 100-continue",
                     b"Expect: 200-ok", b"Connection: close", b"Connection: keep-alive",
                     b"Connection: upgrade\r\nUpgrade: h2c", b"Host: x", b"Host: x\r\nHost: y",
                     b"Content-Length: 5\r\nContent-Length: 6",
                     b"Content-Length: 5\r\nTransfer-Encoding: chunked", b"X: \xff\xfe",
                     b" folded", b"\tfolded", b"Bad Header", b"X:", b": empty name", b""]),
    st.binary(max_size=30).filter(lambda b: b"\r\n\r\n" not in b))
BALANCE = b"key=" + DEMO_KEY.encode() + b"&action=balance"


@st.composite
def framings(draw: st.DrawFn) -> bytes:
    """One request with any request line, any head lines and any body."""
    method = draw(st.sampled_from([b"POST", b"GET", b"HEAD", b"PUT", b"OPTIONS", b"P\xffST",
                                   b"", b"CONNECT", b"TRACE", b"get", b"PRI"]))
    target = draw(st.sampled_from([b"/api/v2", b"/api/v2?" + BALANCE, b"/api/v2/", b"*",
                                   b"/%ff", b"", b"/api/v2?\xff", b"http://127.0.0.1/api/v2",
                                   b"//api/v2", b"/api/v2#f", b"/api/../api/v2", b"x" * 300]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"", b"HTTP/1.1x",
                                    b"HTTP/0.9", b"http/1.1"]))
    head = [method + b" " + target + b" " + version] + draw(st.lists(HEAD_LINES, max_size=5))
    body = draw(st.one_of(st.binary(max_size=60), st.sampled_from([
        BALANCE, b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\n", b"0\r\n\r\n", b"ffffffffffffffff\r\n",
        b"-1\r\n\r\n", b"5;ext=1\r\nhello\r\n0\r\n\r\n"])))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> tuple[bytes, bool]:
    """`body` as chunks of odd sizes, hex written any legal way, maybe extensions and
    trailers, or a broken ending. (bytes, whether the ending is a proper one)."""
    out, rest = b"", body
    while rest:
        size = draw(st.integers(1, max(1, len(rest))))
        digits = draw(st.sampled_from(["{:x}", "{:X}", "00{:x}"])).format(size).encode()
        ext = draw(st.sampled_from([b"", b"", b";a=b", b";x", b' ;q="v"']))
        out += digits + ext + b"\r\n" + rest[:size] + b"\r\n"
        rest = rest[size:]
    end = draw(st.sampled_from([b"0\r\n\r\n", b"0\r\n\r\n", b"0\r\nX-T: 1\r\n\r\n", b"0\r\n",
                                b"", b"1\r\n", b"0\r\n\r\nGARBAGE"]))
    return out + end, end in (b"0\r\n\r\n", b"0\r\nX-T: 1\r\n\r\n")


@st.composite
def good_requests(draw: st.DrawFn, last: bool) -> tuple[bytes, bool, bool]:
    """A request a client means (an add or a balance) framed by Content-Length or chunked,
    maybe with a Content-Length that is off. (bytes, is it an add, is it framed right)."""
    add = draw(st.booleans())
    body = (b"key=" + DEMO_KEY.encode() + b"&action=add&service=1&quantity=100&link=https://"
            b"x.com/p" + draw(st.binary(min_size=4, max_size=4)).hex().encode()) if add \
        else BALANCE
    framing = draw(st.sampled_from(["length", "length", "chunked", "short", "long"]))
    head = [b"POST /api/v2 HTTP/1.1", b"Host: 127.0.0.1",
            b"Content-Type: application/x-www-form-urlencoded"]
    if last and draw(st.booleans()):
        head.append(b"Connection: close")
    regular = framing == "length"
    if framing == "chunked":
        head.append(b"Transfer-Encoding: chunked")
        body, regular = draw(chunked(body))
    else:
        length = len(body) + {"length": 0, "short": -draw(st.integers(1, 5)),
                              "long": draw(st.integers(1, 5))}[framing]
        head.append(b"Content-Length: %d" % length)
    return b"\r\n".join(head) + b"\r\n\r\n" + body, add, regular


@dataclass
class Conversation:
    pieces: list[bytes]  # one write each
    ending: str  # keep | half-close | close | reset
    pause: float  # seconds between writes
    adds: int  # add requests sent
    heads: tuple[bool, ...]  # which requests were HEAD
    regular: bool  # every request well framed: one answer each, in order


@st.composite
def conversations(draw: st.DrawFn) -> Conversation:
    """One connection: 1-3 pipelined requests (well framed, oddly framed or any bytes), sent
    whole or in fragments, ended by waiting, half-closing, closing or resetting."""
    count = draw(st.integers(1, 3))
    parts, adds, heads, regular = [], 0, [], True
    for index in range(count):
        if draw(st.integers(0, 2)) == 0:
            raw, well = draw(framings()), False
            adds += b"add" in raw
        else:
            raw, add, well = draw(good_requests(last=index == count - 1))
            adds += add
        parts.append(raw)
        heads.append(raw.startswith(b"HEAD"))
        regular = regular and well
    stream = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=4,
                                unique=True))) if draw(st.booleans()) else []
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True) if stream[a:b]]
    ending = draw(st.sampled_from(["keep", "keep", "keep", "half-close", "close", "reset"]))
    if ending in ("close", "reset") and draw(st.booleans()):  # leave in the middle
        pieces = pieces[:-1] + [pieces[-1][:draw(st.integers(0, len(pieces[-1])))]]
    pause = draw(st.sampled_from([0.0, 0.0, 0.005]))
    return Conversation(pieces, ending, pause, adds, tuple(heads), regular)


@fuzz_settings()
@given(talk=conversations())
def test_any_framing_over_a_raw_socket(srv: Serve, talk: Conversation) -> None:
    """Well framed requests get one answer each and every add is answered; any other bytes
    get 4xx answers or none, and place at most the adds they held, each acknowledged one
    stored."""
    watch = Watch(srv)
    # An incomplete request waits out our timeout; odd framings may get more answers than
    # requests (a body cut short leaves bytes that read as the next request), so linger.
    answers = converse(srv.address, talk.pieces, ending=talk.ending, heads=talk.heads,
                       expect=len(talk.heads), timeout=3 if talk.regular else 1,
                       linger=0 if talk.regular else 0.2, pause=talk.pause)
    if answers.raw:
        assert answers.raw.startswith(b"HTTP/1."), answers.raw[:200]
    assert all(status < 500 for status in answers.statuses), answers.raw[:400]
    stream = b"".join(talk.pieces)[:300]
    answered = talk.ending == "keep" or (talk.ending == "half-close"
                                         and srv.server == "gunicorn")
    if talk.regular and answered:
        assert len(answers.statuses) == len(talk.heads), answers.raw[:400]
        watch.check(stream, acknowledged=answers.orders())
    else:  # the client left (granian does not answer a half-closed connection): whole or not
        watch.check(stream, acknowledged=answers.orders(), at_most=talk.adds)
