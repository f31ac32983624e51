"""One request and its answer, whatever carried them: the record every check reads.

Transports are normalised here, once, so that checks never import one (requests, Werkzeug, a
recorded file). The API key never enters an Exchange: it is replaced by ``"***"`` and only a short
fingerprint of it is kept, so checks can still tell two accounts apart (another key's ids must be
invisible) and reports can be shared.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlencode, urlsplit, urlunsplit

from smmkit.schemas import contract

MAX_DEPTH = 64  # nesting no answer of the API needs
MAX_DIGITS = 30  # an integer longer than this is no id, count or quantity
REDACTED = contract.REDACTED
fingerprint = contract.fingerprint  # a short, non-reversible label for an API key
redact = contract.redact  # params as strings, the key replaced by the placeholder
TRANSPORTS = ("form", "json", "query")


class _NoJson:
    """The `Exchange.json()` answer for a body that is not JSON (falsy, a singleton)."""

    _instance: _NoJson | None = None

    def __new__(cls) -> _NoJson:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NO_JSON"


NO_JSON: Any = _NoJson()


@dataclass(frozen=True)
class Exchange:
    """A request (action + redacted params) and the answer (status, headers, body bytes)."""

    action: str
    params: Mapping[str, str]
    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float = 0.0
    method: str = "POST"
    url: str = ""
    transport: str = "form"
    account: str = ""  # fingerprint of the key used, see `fingerprint`
    note: str = ""  # what the sender meant to probe, for reports
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    # ------------------------------------------------------------------ reading
    def json(self) -> Any:
        """The parsed body, or `NO_JSON` when the body is not JSON (or is JSON no client should
        have to parse: nested deeper than MAX_DEPTH, integers longer than MAX_DIGITS)."""
        return self._parsed[0]

    @property
    def json_problem(self) -> str:
        """Why `json()` is NO_JSON for a body that is JSON text ("" otherwise)."""
        return self._parsed[1]

    @functools.cached_property
    def _parsed(self) -> tuple[Any, str]:
        return parse_bounded(self.body)

    def header(self, name: str, default: str = "") -> str:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default

    @property
    def content_type(self) -> str:
        return self.header("Content-Type")

    @property
    def error_text(self) -> str | None:
        """The text of a top-level ``{"error": ...}`` answer, else None."""
        data = self.json()
        if isinstance(data, dict) and set(data) == {"error"} and isinstance(data["error"], str):
            return data["error"]
        return None

    def text(self, limit: int = 2000) -> str:
        return self.body[:limit].decode("utf-8", errors="replace")

    def curl(self) -> str:
        """The request as a `curl` command line, key redacted, in its original transport."""
        url = self.url or "$SMM_URL"
        params = dict(self.params)
        if self.transport == "query":
            parts = urlsplit(url)
            query = urlencode(params, safe="*")
            return "curl " + shlex.quote(urlunsplit(parts._replace(query=query)))
        if self.transport == "json":
            return (
                f"curl -X {self.method} -H 'Content-Type: application/json' "
                f"--data {shlex.quote(json.dumps(params))} {shlex.quote(url)}"
            )
        fields = " ".join(f"--data-urlencode {shlex.quote(f'{k}={v}')}" for k, v in params.items())
        return f"curl -X {self.method} {fields} {shlex.quote(url)}".replace("  ", " ")

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        params: Mapping[str, Any],
        *,
        status: int,
        headers: Mapping[str, str],
        body: bytes | str,
        elapsed: float = 0.0,
        method: str = "POST",
        url: str = "",
        transport: str = "form",
        note: str = "",
        secrets: Iterable[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> Exchange:
        """An Exchange from raw parts; `params` may hold the real key (it is redacted here, and
        scrubbed, with every other of `secrets`, from the body and headers a panel echoes)."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        key = params.get("key")
        hidden = [s for s in (*secrets, str(key or "")) if s]
        return cls(
            action=str(params.get("action", "")),
            params=redact(params),
            status=int(status),
            headers={k: contract.scrub(str(v), hidden) for k, v in dict(headers).items()},
            body=scrub_bytes(bytes(body), hidden),
            extra=dict(extra or {}),
            elapsed=float(elapsed),
            method=method.upper(),
            url=_strip_query(url),
            transport=transport,
            account=fingerprint(None if key is None else str(key)),
            note=note,
        )

    @classmethod
    def from_requests(
        cls, response: Any, params: Mapping[str, Any], *, transport: str | None = None,
        note: str = "",
    ) -> Exchange:
        """From a `requests.Response` and the params that were sent."""
        request = response.request
        if transport is None:
            content_type = str(request.headers.get("Content-Type", "")) if request else ""
            if "json" in content_type:
                transport = "json"
            elif request is not None and request.method == "GET":
                transport = "query"
            else:
                transport = "form"
        return cls.build(
            params,
            status=response.status_code,
            headers=dict(response.headers),
            body=response.content,
            elapsed=response.elapsed.total_seconds(),
            method=request.method if request is not None else "POST",
            url=str(request.url if request is not None else response.url),
            transport=transport,
            note=note,
        )

    @classmethod
    def from_werkzeug(
        cls, response: Any, params: Mapping[str, Any], elapsed: float = 0.0, *,
        method: str = "POST", url: str = "/api/v2", transport: str = "form", note: str = "",
    ) -> Exchange:
        """From a Werkzeug/Flask test-client response and the params that were sent."""
        return cls.build(
            params,
            status=response.status_code,
            headers=dict(response.headers),
            body=response.get_data(),
            elapsed=elapsed,
            method=method,
            url=url,
            transport=transport,
            note=note,
        )

    # ------------------------------------------------------------------ recording
    def to_record(self) -> dict[str, Any]:
        data = asdict(self)
        data["params"] = dict(self.params)
        data["headers"] = dict(self.headers)
        data["extra"] = dict(self.extra)
        try:
            data["body"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            data["body"] = None
            data["body_b64"] = base64.b64encode(self.body).decode("ascii")
        return data

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Exchange:
        if data.get("body") is None and "body_b64" in data:
            body = base64.b64decode(data["body_b64"])
        else:
            body = str(data.get("body", "")).encode("utf-8")
        params = dict(data.get("params", {}))
        if "key" in params:
            params["key"] = REDACTED
        return cls(
            action=str(data.get("action", params.get("action", ""))),
            params=params,
            status=int(data["status"]),
            headers=dict(data.get("headers", {})),
            body=body,
            elapsed=float(data.get("elapsed", 0.0)),
            method=str(data.get("method", "POST")),
            url=str(data.get("url", "")),
            transport=str(data.get("transport", "form")),
            account=str(data.get("account", "")),
            note=str(data.get("note", "")),
            extra=dict(data.get("extra", {})),
        )


def scrub_bytes(body: bytes, secrets: Iterable[str]) -> bytes:
    """`body` with every secret (plain or URL-encoded, any case) replaced by the placeholder."""
    for secret in secrets:
        if len(secret) < 3:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            pattern = re.compile(re.escape(form.encode("utf-8")), re.IGNORECASE)
            body = pattern.sub(REDACTED.encode(), body)
    return body


class _TooBig(ValueError):
    pass


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _TooBig(f"an integer of {len(text)} digits")
    return int(text)


def _depth_ok(data: Any) -> bool:
    todo = [(data, 1)]
    while todo:
        node, depth = todo.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(node, dict):
            todo.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            todo.extend((v, depth + 1) for v in node)
    return True


def parse_bounded(body: bytes) -> tuple[Any, str]:
    """(parsed JSON, "") or (NO_JSON, why) — never an exception, whatever the body."""
    try:
        data = json.loads(body.decode("utf-8"), parse_int=_bounded_int)
    except _TooBig as exc:
        return NO_JSON, f"answer holds {exc} (more than {MAX_DIGITS})"
    except RecursionError:
        return NO_JSON, f"answer nested deeper than {MAX_DEPTH} levels"
    except (UnicodeDecodeError, ValueError):
        return NO_JSON, ""
    if not _depth_ok(data):
        return NO_JSON, f"answer nested deeper than {MAX_DEPTH} levels"
    return data, ""


def _strip_query(url: str) -> str:
    """The URL without its query: a GET request's query carries the key."""
    if "?" not in url:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=""))


def dump(exchanges: Iterable[Exchange], path: str | Path) -> Path:
    """Write exchanges as JSON lines (one record per line); returns the path."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as stream:
        for exchange in exchanges:
            stream.write(json.dumps(exchange.to_record(), ensure_ascii=False) + "\n")
    return path


def load_recorded(path: str | Path) -> list[Exchange]:
    """Read exchanges written by `dump` (blank lines ignored)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [Exchange.from_record(json.loads(line)) for line in lines if line.strip()]
