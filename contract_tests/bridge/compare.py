"""Exchange against exchange: how the fake's answer differs from the live panel's.

Differences are sorted into what a client would trip over: `transport` (status code, content
type), `shape` (a key or item missing or extra), `type` (string vs number vs boolean), `text`
(an error text), `spelling` (a status), `format` (the same amount written differently) and
`value` (anything else). Ids and counts that two panels give out independently are compared by
type only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from smmkit.contract_tests.bridge.statuses import canonical_status
from smmkit.contract_tests.exchange import Exchange

KINDS = ("transport", "shape", "type", "text", "spelling", "format", "value")
INDEPENDENT = frozenset({"order", "refill", "start_count", "remains"})  # each panel numbers its own
MONEY = {"charge", "balance", "rate"}


@dataclass(frozen=True)
class Difference:
    kind: str
    path: str
    live: Any
    fake: Any

    def __str__(self) -> str:
        return f"{self.kind} at {self.path}: live {_show(self.live)}, fake {_show(self.fake)}"

    @property
    def where(self) -> str:
        """The path with item indexes and multi-answer ids folded: one line per quirk."""
        return re.sub(r"\.\d+(?=\.|$)", ".<id>", re.sub(r"\[\d+\]", "[*]", self.path))

    def summary(self) -> str:
        return f"{self.kind} at {self.where}: live {_show(self.live)}, fake {_show(self.fake)}"


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"number {value}"
    if value is _MISSING:
        return "absent"
    return json.dumps(value, ensure_ascii=False, default=str)[:80]


_MISSING = object()


def parse(body: bytes) -> Any:
    """JSON with numbers as Decimal (their digits kept), or _MISSING when not JSON."""
    try:
        return json.loads(body.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        return _MISSING


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, Decimal)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def compare(live: Exchange, fake: Exchange, *,
            independent: frozenset[str] = frozenset()) -> list[Difference]:
    """How `fake` differs from `live`; fields named in `independent` (beyond ids and counts)
    are each panel's own there and compared by JSON type only."""
    found: list[Difference] = []
    if live.status != fake.status:
        found.append(Difference("transport", "status", live.status, fake.status))
    live_type = live.content_type.split(";")[0].strip().lower()
    fake_type = fake.content_type.split(";")[0].strip().lower()
    if live_type != fake_type:
        found.append(Difference("transport", "content-type", live_type, fake_type))
    a, b = parse(live.body), parse(fake.body)
    if a is _MISSING or b is _MISSING:
        if (a is _MISSING) != (b is _MISSING) or live.body != fake.body:
            found.append(Difference("shape", "$", live.text(80), fake.text(80)))
        return found
    _walk(a, b, "$", "", found, INDEPENDENT | independent)
    return found


def _walk(a: Any, b: Any, path: str, name: str, found: list[Difference],
          independent: frozenset[str] = INDEPENDENT) -> None:
    ta, tb = json_type(a), json_type(b)
    if ta != tb:
        found.append(Difference("type", path, a, b))
        return
    if ta == "object" and _keyed_by_id(a, b):  # a multi status: each panel's own order ids
        for i, (x, y) in enumerate(zip(a.values(), b.values(), strict=True)):
            _walk(x, y, f"{path}.{i}", "", found, independent)
        return
    if ta == "object":
        for key in [*a, *(k for k in b if k not in a)]:
            if key not in b or key not in a:
                found.append(Difference("shape", f"{path}.{key}", a.get(key, _MISSING),
                                        b.get(key, _MISSING)))
            else:
                _walk(a[key], b[key], f"{path}.{key}", key, found, independent)
        return
    if ta == "array":
        if len(a) != len(b):
            found.append(Difference("shape", f"{path}[]", f"{len(a)} items", f"{len(b)} items"))
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _walk(x, y, f"{path}[{i}]", name, found, independent)
        return
    if a == b and str(a) == str(b) or name in independent:
        return
    if name == "error":
        found.append(Difference("text", path, a, b))
    elif name == "status" and isinstance(a, str):
        same = canonical_status(a)
        kind = "spelling" if same is not None and same == canonical_status(b) else "value"
        found.append(Difference(kind, path, a, b))
    elif name in MONEY and _amount(a) is not None and _amount(a) == _amount(b):
        found.append(Difference("format", path, a, b))
    else:
        found.append(Difference("value", path, a, b))


def _keyed_by_id(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return len(a) == len(b) > 0 and all(str(k).isdigit() for k in [*a, *b])


def _amount(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
