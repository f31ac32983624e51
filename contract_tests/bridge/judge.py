"""One verdict per exchange, the same live (the proxy) and offline (a recording).

A `Judge` is fed exchanges in order. Each gets the request checked against the request
schemas (the `add` schema of the service's type once `services` has been seen) and the answer
checked by the kit's per-exchange checks and its `History` (charges, transitions, another key's
ids) under the upstream's dialect. With no dialect given, every known dialect is tried and the
one that fits the traffic best so far is the one reported: the detection the proxy needs,
because it sees a panel's answers before it could ever probe it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smmkit.contract_tests.bridge.dialect_view import canonical
from smmkit.contract_tests.catalogue import by_id, parse_catalogue
from smmkit.contract_tests.checks import exchange_checks
from smmkit.contract_tests.exchange import Exchange
from smmkit.contract_tests.history import History
from smmkit.contract_tests.violation import Violation, finding
from smmkit.schemas.dialects import BUILTIN, DialectSpec, builtin, load_dialect

from smmkit import schemas

# What the proxy says instead of judging: the request never reached the panel, or no answer came.
REFUSED, UPSTREAM_TIMEOUT, UPSTREAM_DROPPED = "refused", "upstream-timeout", "upstream-dropped"
VERDICTS = ("conforms", "deviation", "violation", REFUSED, UPSTREAM_TIMEOUT, UPSTREAM_DROPPED)


@dataclass(frozen=True)
class Verdict:
    """What one exchange was found to be, as plain data (it goes into recordings as is)."""

    verdict: str
    dialect: str
    findings: tuple[dict[str, str], ...] = ()
    request: tuple[str, ...] = ()  # the client's request against the request schemas

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "dialect": self.dialect,
                "findings": [dict(f) for f in self.findings], "request": list(self.request)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(str(data["verdict"]), str(data.get("dialect", "")),
                   tuple(dict(f) for f in data.get("findings", ())),
                   tuple(str(r) for r in data.get("request", ())))


def _summary(found: Iterable[Violation]) -> tuple[dict[str, str], ...]:
    return tuple({"check": v.check, "family": v.family, "severity": v.severity,
                  "message": v.message} for v in found)


def _kind(found: tuple[dict[str, str], ...], request: tuple[str, ...]) -> str:
    if request or any(f["severity"] == "violation" for f in found):
        return "violation"
    return "deviation" if found else "conforms"


@dataclass
class _Track:
    """One candidate dialect's running judgement of the traffic. A dialect the schemas know
    by name is judged directly; any other (raw-keys, a file) through its canonical view."""

    dialect: str
    history: History
    spec: DialectSpec | None = None
    clean: int = 0
    currencies: dict[str, str] = field(default_factory=dict)  # account -> as last told

    def findings(self, exchange: Exchange) -> list[Violation]:
        found = self._findings(exchange)
        if exchange.action == "services" and self._cancel_unknown:
            self._trust_cancels()
        return found

    @property
    def _cancel_unknown(self) -> bool:
        if self.spec is None:
            return self.dialect == "seed"
        family = builtin(self.spec.schema_dialect)  # its shapes may have no room for cancel
        return not (self.spec.services["cancel"] and family.services["cancel"])

    def _trust_cancels(self) -> None:
        """A dialect whose services never say `cancel` tells nothing about it: an accepted
        cancel is then no evidence of a broken rule."""
        for sid, service in self.history.services.items():
            if not service.cancel:
                self.history.services[sid] = dataclasses.replace(service, cancel=True)

    def _findings(self, exchange: Exchange) -> list[Violation]:
        if self.spec is None:
            return [*exchange_checks(exchange, dialect=self.dialect),
                    *self.history.observe(exchange)]
        currency = self.spec.currency["balance_value"] or self.currencies.get(
            exchange.account, "USD")
        seen, problems = canonical(exchange, self.spec, currency)
        if exchange.action == "balance":
            told = seen.json()
            if isinstance(told, dict) and isinstance(told.get("currency"), str) \
                    and self.spec.currency["balance"]:
                self.currencies[exchange.account] = told["currency"]
        family = self.spec.schema_dialect
        found = [*(finding("dialect", "schema", problem, exchange) for problem in problems),
                 *exchange_checks(seen, dialect=family), *self.history.observe(seen)]
        return found


def _track(dialect: str) -> _Track:
    if dialect in schemas.DIALECTS:
        return _Track(dialect, History(dialect=dialect))
    spec = load_dialect(dialect)
    # Money written with the file's decimals: the History holds each amount to that rounding.
    history = History(dialect=spec.schema_dialect, money_places=int(spec.money["decimals"]))
    return _Track(spec.name, history, spec)


@dataclass
class Judge:
    """Judge exchanges in order under `dialect` (None: detect among the known dialects)."""

    dialect: str | None = None
    _tracks: list[_Track] = field(default_factory=list)
    _types: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        names = [self.dialect] if self.dialect else list(BUILTIN)
        self._tracks = [_track(name) for name in names]  # DialectError (a ValueError) if bad

    @property
    def current(self) -> str:
        """The dialect verdicts are reported under: the given one, or the best fit so far."""
        return max(self._tracks, key=lambda t: t.clean).dialect

    def judge(self, exchange: Exchange) -> Verdict:
        with self._lock:
            request = tuple(self._request_problems(exchange))
            results = {}
            for track in self._tracks:
                found = _summary(track.findings(exchange))
                track.clean += not found
                results[track.dialect] = found
            self._learn(exchange)
            chosen = self.current
            found = results[chosen]
            return Verdict(_kind(found, request), chosen, found, request)

    def note(self, exchange: Exchange, verdict: str) -> Verdict:
        """A verdict that is not a judgement: refused, or no answer from upstream."""
        with self._lock:
            return Verdict(verdict, self.current, (), tuple(self._request_problems(exchange)))

    def _request_problems(self, exchange: Exchange) -> list[str]:
        params = {k: v for k, v in exchange.params.items()}
        if params.get("action") not in schemas.ACTIONS:
            return []  # answered with an error by any panel: the answer's checks judge it
        service_type = None
        if params.get("action") == "add":
            try:
                service_type = self._types.get(int(str(params.get("service", "")).strip()))
            except ValueError:
                service_type = None
        try:
            return schemas.check_request(params, service_type)
        except schemas.SchemaError:
            return schemas.check_request(params)

    def _learn(self, exchange: Exchange) -> None:
        if exchange.action == "services":
            for sid, service in by_id(parse_catalogue(exchange.json())).items():
                self._types[sid] = service.type


def judge_all(exchanges: Iterable[Exchange], dialect: str | None = None) -> list[Verdict]:
    """Verdicts for a recorded session, in order (what `check --from-recording` reports).
    Exchanges the proxy refused or got no answer for keep the verdict they were recorded with."""
    judge = Judge(dialect)
    verdicts = []
    for exchange in exchanges:
        recorded = exchange.extra.get("verdict")
        if isinstance(recorded, Mapping) and recorded.get("verdict") in (
                REFUSED, UPSTREAM_TIMEOUT, UPSTREAM_DROPPED):
            verdicts.append(judge.note(exchange, str(recorded["verdict"])))
        else:
            verdicts.append(judge.judge(exchange))
    return verdicts
