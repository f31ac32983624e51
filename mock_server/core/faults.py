"""Injected faults: the ways real panels fail, switched on per action, seeded. No web framework.

A fault rule says *what* goes wrong (`kind`), *where* (an action or "*", optionally one key) and
*how often* (the next `count` matching requests, or each with `probability`, drawn from a
seeded source so a run repeats). Rules live in the store, so every worker process sees them.
`FaultBook.pick` decides for one request; `render` builds the bytes a faulty panel would send.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from smmkit.mock_server.core.errors import TEXTS_BY_STYLE, error_text
from smmkit.mock_server.storage.sqlite import Store

KINDS = {
    "latency": "answer normally after a delay (ms, or min_ms..max_ms)",
    "http_5xx": "a Cloudflare-like HTML error page with status 502/503/520/521/522/524/500",
    "maintenance": "an HTML maintenance page served with 200",
    "html_content_type": "the normal JSON body served as text/html",
    "error_4xx": "a catalogue error with a 4xx status (the given error, or the real answer's)",
    "rate_limit": "429 {\"error\": \"Too many requests\"} with Retry-After",
    "drop": "the connection is closed before any response",
    "lost_after_commit": "the request is carried out (an add is placed and charged), "
                         "then the connection is closed without an answer",
    "truncated_json": "the normal JSON body cut short",
    "malformed_json": "a body that is not valid JSON",
}
ACTIONS = ("*", "services", "add", "status", "balance", "refill", "refill_status", "cancel")


DROPPING_KINDS = frozenset({"drop", "lost_after_commit"})


class FaultError(ValueError):
    """A fault rule that does not make sense; the message says why."""


@dataclass(frozen=True)
class Fault:
    id: int
    kind: str
    action: str = "*"
    key: str | None = None
    remaining: int | None = None  # None with a probability: until cleared
    probability: float | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "action": self.action, "key": self.key,
                "remaining": self.remaining, "probability": self.probability, **self.params}


def _number(value: Any, what: str, low: float, high: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise FaultError(f"{what} must be a number in [{low}, {high}], got {value!r}")
    return value


def validate(spec: dict[str, Any]) -> dict[str, Any]:
    """Check a rule as sent by a client; the normalised rule, or FaultError naming the problem."""
    if not isinstance(spec, dict):
        raise FaultError("a fault is a JSON object")
    kind = spec.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:  # a list or object is unhashable
        raise FaultError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
    action = spec.get("action", "*")
    if not isinstance(action, str) or action not in ACTIONS:
        raise FaultError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    key = spec.get("key")
    if key is not None and not isinstance(key, str):
        raise FaultError("key must be a string")
    count, probability = spec.get("count"), spec.get("probability")
    if count is not None and probability is not None:
        raise FaultError("give count or probability, not both")
    if count is not None:
        count = int(_number(count, "count", 1, 1_000_000))
    elif probability is not None:
        probability = float(_number(probability, "probability", 0, 1))  # float ok: odds
    else:
        count = 1
    params: dict[str, Any] = {}
    if kind == "latency":
        if "ms" in spec:
            params["ms"] = _number(spec["ms"], "ms", 0, 120_000)
        elif "min_ms" in spec and "max_ms" in spec:
            params["min_ms"] = _number(spec["min_ms"], "min_ms", 0, 120_000)
            params["max_ms"] = _number(spec["max_ms"], "max_ms", params["min_ms"], 120_000)
        else:
            raise FaultError("latency needs ms, or min_ms and max_ms")
    if kind == "http_5xx":
        params["status"] = int(_number(spec.get("status", 502), "status", 500, 599))
    if kind == "error_4xx":
        params["status"] = int(_number(spec.get("status", 400), "status", 400, 499))
        if "error" in spec:
            if spec["error"] not in TEXTS_BY_STYLE["perfectpanel"]:
                raise FaultError(f"unknown catalogue error {spec['error']!r}; one of "
                                 f"{', '.join(TEXTS_BY_STYLE['perfectpanel'])}")
            params["error"] = spec["error"]
    if kind == "rate_limit":
        params["retry_after"] = int(_number(spec.get("retry_after", 30), "retry_after", 0, 86400))
    return {"kind": kind, "action": action, "key": key, "remaining": count,
            "probability": probability, "params": params}


def _fault(row: Any) -> Fault:
    return Fault(row.id, row.kind, row.action, row.key, row.remaining,
                 row.probability, json.loads(row.params))


class FaultBook:
    """The fault rules of one panel, shared through its store."""

    def __init__(self, store: Store, seed: int = 1, *, can_drop: bool = True) -> None:
        self.store = store  # the faults table is part of the store's schema
        self.seed = seed
        self.can_drop = can_drop  # whether the server lets the app close a connection

    def add(self, spec: dict[str, Any]) -> Fault:
        rule = validate(spec)
        if rule["kind"] in DROPPING_KINDS and not self.can_drop:
            raise FaultError(f"{rule['kind']} needs a server that lets the fake close a "
                             "connection: start it with --server builtin (the default) or "
                             "gunicorn")
        return self._insert(rule)

    def _insert(self, rule: dict[str, Any]) -> Fault:
        with self.store.transaction() as db:
            fault_id = self.store.ops.insert_fault(
                db, kind=rule["kind"], action=rule["action"], key=rule["key"],
                remaining=rule["remaining"], probability=rule["probability"],
                params=rule["params"])
        return Fault(fault_id, rule["kind"], rule["action"], rule["key"], rule["remaining"],
                     rule["probability"], rule["params"])

    def list(self) -> list[Fault]:
        return [_fault(r) for r in self.store.ops.faults(self.store.connection())]

    def clear(self, fault_id: int | None = None) -> int:
        with self.store.transaction() as db:
            return self.store.ops.delete_faults(db, fault_id)

    def pick(self, action: str, key: str | None) -> Fault | None:
        """The fault that strikes this request, if any (consuming a count / a random draw)."""
        with self.store.transaction() as db:
            for r in self.store.ops.faults(db, action, key):
                self.store.ops.use_fault(db, r.id, r.remaining)
                if r.remaining is not None:
                    return _fault(r)
                draw = random.Random(f"{self.seed}:fault:{r.id}:{r.seen}").random()
                if draw < r.probability:
                    return _fault(r)
        return None

    def latency_seconds(self, fault: Fault) -> float:
        params = fault.params
        if "ms" in params:
            return params["ms"] / 1000
        rng = random.Random(f"{self.seed}:latency:{fault.id}:{fault.remaining}")
        return rng.uniform(params["min_ms"], params["max_ms"]) / 1000


# ---------------------------------------------------------------- what a faulty panel sends

CLOUDFLARE_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><title>{host} | {status}: {title}</title>
<meta charset="UTF-8"><meta name="robots" content="noindex, nofollow"></head>
<body><div id="cf-wrapper"><div id="cf-error-details" class="cf-error-details-wrapper">
<h1><span class="cf-error-type">Error</span> <span class="cf-error-code">{status}</span></h1>
<h2 class="cf-subheadline">{title}</h2>
<p>The web server reported a bad gateway error.</p>
<p>Cloudflare Ray ID: <strong>{ray}</strong> &bull; Performance &amp; security by Cloudflare</p>
</div></div></body></html>
"""
CLOUDFLARE_TITLES = {500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable",
                     520: "Web server is returning an unknown error",
                     521: "Web server is down", 522: "Connection timed out",
                     524: "A timeout occurred"}
MAINTENANCE_PAGE = """<!DOCTYPE html>
<html><head><title>Maintenance</title><meta charset="UTF-8"></head>
<body><h1>We&rsquo;ll be back soon!</h1>
<p>Sorry for the inconvenience. We&rsquo;re performing some maintenance at the moment.</p>
</body></html>
"""


def cloudflare_page(status: int, host: str, ray: str) -> bytes:
    title = CLOUDFLARE_TITLES.get(status, "Server error")
    return CLOUDFLARE_PAGE.format(host=host, status=status, title=title, ray=ray).encode()


def error_body(code: str, style: str) -> bytes:
    return json.dumps({"error": error_text(code, style, limit=0 if "quantity" in code else None)},
                      separators=(",", ":")).encode()


def truncate(body: bytes) -> bytes:
    return body[: max(1, len(body) // 2)]


def malform(body: bytes) -> bytes:
    """JSON the way a broken PHP page sends it: a notice glued in front, a stray comma."""
    return b"<br />\n<b>Notice</b>:  Undefined index: key in <b>/api.php</b> on line 42<br />\n" + \
        body.rstrip(b"}]") + b","
