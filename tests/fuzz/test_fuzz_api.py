"""/api/v2 fuzzed: any bytes in any field over any transport (form, query, JSON, multipart),
and any framing over a raw socket. After every example: no 5xx, JSON from the app, no
traceback in the server's log, the conservation law in the store, every endpoint answering.

Fields are drawn so that real orders do get placed (a valid key, action and service most of
the time), so the conservation law is exercised, not vacuous."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import quote_from_bytes

import pytest
from fuzzing import Watch, fuzz_settings
from hardening_support import DEMO_KEY, SERVERS, Serve, parse, request_bytes
from hypothesis import given
from hypothesis import strategies as st

NAMES = ["key", "action", "service", "link", "quantity", "order", "orders", "refill",
         "refills", "runs", "interval", "comments", "usernames", "username", "min", "max",
         "delay", "expiry", "answer_number", "country", "device", "type_of_traffic"]
ACTIONS = [b"add", b"status", b"balance", b"services", b"refill", b"refill_status", b"cancel"]
SMALL = st.integers(0, 30).map(lambda n: str(n).encode())


def byte_values() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=40),
        st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
        SMALL, st.sampled_from([b"https://x.com/f", b"\xff", b"\xc3\x28", b"\xed\xa0\x80",
                                b"100", b"23501", b"1,2,3", b"", b" ", b"\x00", b"%"]))


@st.composite
def fields(draw: st.DrawFn) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    out[b"key"] = draw(st.one_of(st.just(DEMO_KEY.encode()), byte_values()))
    out[b"action"] = draw(st.one_of(st.sampled_from(ACTIONS), byte_values()))
    if draw(st.booleans()):  # a plausible add: the law then has orders to count
        out.update({b"service": draw(st.sampled_from([b"1", b"3"])),
                    b"link": b"https://x.com/" + draw(st.binary(max_size=8)).hex().encode(),
                    b"quantity": draw(st.sampled_from([b"20", b"100", b"1000"]))})
    for name in draw(st.lists(st.one_of(st.sampled_from(NAMES).map(str.encode),
                                        st.binary(min_size=1, max_size=8)), max_size=5)):
        out[name] = draw(byte_values())
    return out


def _form(items: dict[bytes, bytes], raw: bool) -> bytes:
    if raw:
        return b"&".join(k + b"=" + v for k, v in items.items())
    return "&".join(f"{quote_from_bytes(k)}={quote_from_bytes(v)}"
                    for k, v in items.items()).encode()


def _json(items: dict[bytes, bytes]) -> bytes:
    def string(b: bytes) -> bytes:
        return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{" + b",".join(string(k) + b":" + string(v) for k, v in items.items()) + b"}"


def _multipart(items: dict[bytes, bytes]) -> tuple[bytes, str]:
    boundary = b"fuzz-boundary-7"
    body = b"".join(b"--" + boundary + b'\r\nContent-Disposition: form-data; name="'
                    + k.replace(b'"', b"") + b'"\r\n\r\n' + v + b"\r\n" for k, v in items.items())
    return body + b"--" + boundary + b"--\r\n", f"multipart/form-data; boundary={boundary.decode()}"


@st.composite
def api_requests(draw: st.DrawFn) -> bytes:
    items = draw(fields())
    transport = draw(st.sampled_from(["form", "form-raw", "query", "json", "json-dumps",
                                      "multipart"]))
    method = draw(st.sampled_from(["POST", "POST", "GET", "HEAD", "PUT"]))
    target, body, kind = "/api/v2", b"", "application/x-www-form-urlencoded"
    if transport in ("form", "form-raw"):
        body = _form(items, raw=transport == "form-raw")
    elif transport == "query":
        target += "?" + _form(items, raw=False).decode()
        kind = ""
    elif transport == "json":
        body, kind = _json(items), "application/json"
    elif transport == "json-dumps":
        text = {k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
                for k, v in items.items()}
        body, kind = json.dumps(text).encode(), "application/json"  # lone surrogates escaped
    else:
        body, kind = _multipart(items)
    return request_bytes(method, target, body, content_type=kind)


@pytest.fixture(scope="module", params=SERVERS)
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp(f"fuzz-api-{request.param}"), request.param)
    yield server
    server.stop()


def _send(srv: Serve, payload: bytes, half_close: bool = False, timeout: float = 10) -> bytes:
    with socket.create_connection(srv.address, timeout=timeout) as sock:
        data = b""
        try:  # the server may answer and close before the whole payload is in
            sock.sendall(payload)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                data += chunk
                head, sep, rest = data.partition(b"\r\n\r\n")
                if sep and b"content-length:" in head.lower():
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    if len(rest) >= length or payload.startswith(b"HEAD"):
                        break
        except (TimeoutError, OSError):
            pass
    return data


@fuzz_settings()
@given(payload=api_requests())
def test_any_bytes_in_any_field_over_any_transport(srv: Serve, payload: bytes) -> None:
    watch = Watch(srv)
    data = _send(srv, payload)
    status, _, headers, body = parse(data)
    assert status < 500, data[:300]
    if not payload.startswith(b"HEAD"):
        assert headers.get("content-type", "").startswith("application/json"), data[:300]
        assert isinstance(json.loads(body), (dict, list))
    watch.check(payload[:200])


HEAD_LINES = st.one_of(
    st.sampled_from([b"Content-Length: 5", b"Content-Length: 0", b"Content-Length: -1",
                     b"Content-Length: 99999999999999999999", b"Content-Length: 1, 2",
                     b"Transfer-Encoding: chunked", b"Transfer-Encoding: xchunked",
                     b"Transfer-Encoding: chunked, gzip", b"Content-Type: application/json",
                     b"Content-Type: multipart/form-data; boundary=", b"Expect: 100-continue",
                     b"Connection: close", b"Host: x", b"Content-Length: 5\r\nContent-Length: 6",
                     b"X: \xff\xfe", b" folded", b"Bad Header", b""]),
    st.binary(max_size=30).filter(lambda b: b"\r\n\r\n" not in b))


@st.composite
def framings(draw: st.DrawFn) -> tuple[bytes, bool]:
    method = draw(st.sampled_from([b"POST", b"GET", b"HEAD", b"PUT", b"OPTIONS", b"P\xffST",
                                   b""]))
    target = draw(st.sampled_from([b"/api/v2", b"/api/v2?key=" + DEMO_KEY.encode()
                                   + b"&action=balance", b"/api/v2/", b"*", b"/%ff", b"",
                                   b"/api/v2?\xff"]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"", b"HTTP/1.1x"]))
    head = [method + b" " + target + b" " + version] + draw(st.lists(HEAD_LINES, max_size=5))
    body = draw(st.one_of(st.binary(max_size=60), st.sampled_from([
        b"key=" + DEMO_KEY.encode() + b"&action=balance", b"5\r\nhello\r\n0\r\n\r\n",
        b"zz\r\n", b"0\r\n\r\n"])))
    return b"\r\n".join(head) + b"\r\n\r\n" + body, draw(st.booleans())


@fuzz_settings()
@given(case=framings())
def test_any_framing_over_a_raw_socket(srv: Serve, case: tuple[bytes, bool]) -> None:
    payload, half_close = case
    watch = Watch(srv)
    data = _send(srv, payload, half_close, timeout=3)  # an incomplete request waits its limit
    if data:
        assert data.startswith(b"HTTP/1."), data[:200]
        status = int(data.split(b" ", 2)[1])
        assert status < 500, data[:300]
    watch.check(payload[:200])
