"""`run_check(config) -> Report`: probe a panel, then check everything it said.

Two phases. First the kit *talks*: read-only probes by default (services, balance, status and
refill_status of unknown and given ids, bad key / bad action, the three transports and the
trailing slash, a seeded Hypothesis run of invalid requests); with `allow_orders`, the cheapest
services at their minimum quantity, the budget checked before every `add` and never exceeded,
cancels where allowed and a spend ledger. Then the kit *judges* the recorded exchanges, once per
dialect when `dialect="auto"`, and reports under the dialect that fits best. With a dialect file
the exchanges are judged against that dialect only: each answer is first turned back into its
schema family's canonical answer by undoing the declared quirks (`bridge.dialect_view`, the same
view the proxy and the offline judge use), and where the panel does not do what its file
declares, that is a finding too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from smmkit.contract_tests import probes, registry
from smmkit.contract_tests.checks import exchange_checks
from smmkit.contract_tests.exchange import Exchange
from smmkit.contract_tests.history import History
from smmkit.contract_tests.probes import CheckError, LedgerEntry
from smmkit.contract_tests.violation import Violation, failing

from smmkit import schemas

DIALECT_CHOICES = (*schemas.DIALECTS, "auto")


@dataclass(frozen=True)
class CheckConfig:
    url: str
    key: str
    allow_orders: bool = False
    budget: Decimal = Decimal("0")
    dialect: str = "perfectpanel"
    seed: int | None = None
    order_ids: Sequence[str] = ()
    refill_ids: Sequence[str] = ()
    examples: int = 15  # Hypothesis examples of invalid requests
    max_orders: int = 3
    timeout: float = 20.0  # total deadline per request, seconds
    retries: int = 2  # for connection errors (spending actions only when never sent) and 429
    rate: float | None = None  # at most this many requests per second
    strict: bool = False  # deviations fail the run too
    watch: float = 60.0  # seconds to follow placed orders until final; 0 skips
    poll: float = 5.0  # seconds between polls of a live panel
    other_key: str | None = None  # a second account: its view of this key's ids
    admin_token: str | None = None  # our fake's control API: drive its clock instead of waiting
    checks: Sequence[str] = ()  # the checks to run (all when empty)
    skip_checks: Sequence[str] = ()
    target: Any = None  # a ready Target (tests, in-process apps); built from url/key otherwise
    other_target: Any = None  # a ready Target for the other key
    clock: Callable[[float], Any] | None = None  # advances the target's clock (tests)
    enabled: frozenset[str] = field(default=frozenset(), init=False)

    def __post_init__(self) -> None:
        if self.dialect not in DIALECT_CHOICES:
            dialect_file(self.dialect)  # a name or file it cannot read is a usage error now
        if not isinstance(self.budget, Decimal):
            object.__setattr__(self, "budget", Decimal(str(self.budget)))
        if self.budget < 0:
            raise CheckError(f"budget must not be negative, got {self.budget}")
        if self.allow_orders and self.budget <= 0:
            raise CheckError("allow_orders needs a positive budget")
        if self.timeout <= 0 or self.retries < 0 or (self.rate is not None and self.rate <= 0):
            raise CheckError("timeout and rate must be positive, retries not negative")
        if self.watch < 0:
            raise CheckError("watch must not be negative")
        try:
            object.__setattr__(self, "enabled", registry.select(self.checks, self.skip_checks))
        except ValueError as exc:
            raise CheckError(str(exc)) from None


@dataclass
class Report:
    url: str
    dialect: str
    seed: int
    allow_orders: bool
    budget: Decimal
    strict: bool = False
    exchanges: list[Exchange] = field(default_factory=list)
    findings: list[Violation] = field(default_factory=list)
    dialect_scores: dict[str, float] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    opening_balance: Decimal | None = None
    closing_balance: Decimal | None = None
    reserved: Decimal = Decimal(0)  # the worst case of every spending request, committed
    headline: str = ""  # why the panel could not be checked at all (exit 3)
    partial: bool = False  # interrupted: what ran is judged, the rest was not
    enabled: frozenset[str] = frozenset()
    not_run: dict[str, str] = field(default_factory=dict)
    timeline: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    started: float = 0.0
    duration: float = 0.0
    requests: int = 0

    @property
    def exit_code(self) -> int:
        """0 conforms, 1 the panel broke the contract, 3 it could not be checked (also: a
        partial run that found nothing yet has not shown the panel conforms)."""
        if self.headline:
            return 3
        if not self.ok:
            return 1
        return 3 if self.partial else 0

    def check_results(self) -> list[dict[str, str]]:
        """Every registered check: pass / fail / not run (and why)."""
        failed = {v.check for v in self.failures}
        seen = {v.check for v in self.findings}
        rows = []
        for info in registry.describe():
            name = info["check"]
            reasons = [why for key, why in self.not_run.items()
                       if key == name or key.startswith(name + " (")]
            if name not in self.enabled:
                result, why = "not run", "switched off (--checks / --skip-checks)"
            elif self.headline:
                result, why = "not run", self.headline
            elif name in failed:
                result, why = "fail", ""
            elif name in self.not_run:
                result, why = "not run", self.not_run[name]
            else:
                result = "pass" if name not in seen else "pass (reported only)"
                why = "; ".join(reasons)
            rows.append({**info, "result": result, "why": why})
        return rows

    @property
    def failures(self) -> list[Violation]:
        return failing(self.findings, strict=self.strict)

    @property
    def violations(self) -> list[Violation]:
        return [v for v in self.findings if v.severity == "violation"]

    @property
    def deviations(self) -> list[Violation]:
        return [v for v in self.findings if v.severity == "deviation"]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def spent(self) -> Decimal:
        if self.opening_balance is None or self.closing_balance is None:
            return Decimal(0)
        return self.opening_balance - self.closing_balance

    def checks_failed(self) -> set[str]:
        return {v.check for v in self.findings}

    def by_action(self) -> dict[str, dict[str, int]]:
        """Per action: exchanges, violations, deviations."""
        table: dict[str, dict[str, int]] = {}
        for ex in self.exchanges:
            row = table.setdefault(_action_row(ex.action), _row())
            row["exchanges"] += 1
        for v in self.findings:
            if v.severity == "note":
                continue
            row = table.setdefault(_action_row(v.action) if v.action else "(session)", _row())
            row["violations" if v.severity == "violation" else "deviations"] += 1
        return dict(sorted(table.items()))

    def by_family(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for v in self.findings:
            if v.severity == "note":
                continue
            row = table.setdefault(v.family, _row())
            row["violations" if v.severity == "violation" else "deviations"] += 1
        return dict(sorted(table.items()))


def _action_row(action: str) -> str:
    """Actions the kit invented to probe (bad action, missing action) share one row."""
    return action if action in schemas.ACTIONS else "(invalid requests)"


def _row() -> dict[str, int]:
    return {"exchanges": 0, "violations": 0, "deviations": 0}


def dialect_file(name_or_path: str) -> Any:
    """The `DialectSpec` of a dialect named by file (or a non-schema built-in: raw-keys)."""
    from smmkit.schemas.dialects import DialectError, load_dialect

    try:
        return load_dialect(name_or_path)
    except DialectError as exc:
        raise CheckError(f"--dialect: {exc}") from None


def judge_as_declared(
    exchanges: Sequence[Exchange], expectations: Sequence[probes.Expectation],
    name_or_path: str, enabled: frozenset[str] | None = None,
) -> tuple[list[Violation], float]:
    """Findings against a dialect file, and the fraction of exchanges with none. The bridge's
    track of one dialect judges the exchanges (canonical view, History, money rounding) as the
    proxy and the offline judge do; each expectation is checked on its exchange's canonical
    view, under the dialect's schema family."""
    import dataclasses

    from smmkit.contract_tests.bridge.dialect_view import canonical
    from smmkit.contract_tests.bridge.judge import _track  # one dialect's running judgement

    track = _track(name_or_path)
    spec = track.spec if track.spec is not None else dialect_file(name_or_path)
    found: list[Violation] = []
    bad = 0
    for ex in exchanges:
        # "dialect" findings (the panel breaks its own file) are never switched off: the
        # file is the contract now.
        mine = [v for v in track.findings(ex)
                if enabled is None or v.check in enabled or v.check == "dialect"]
        bad += bool(mine)
        found += mine
    for expectation in expectations:
        seen, _ = canonical(expectation.exchange, spec)
        found += [v for v in dataclasses.replace(expectation, exchange=seen).check(
            spec.schema_dialect) if enabled is None or v.check in enabled]
    return found, (round(1 - bad / len(exchanges), 4) if exchanges else 0.0)


def judge(
    exchanges: Sequence[Exchange], expectations: Sequence[probes.Expectation], dialect: str,
    history: History | None = None, enabled: frozenset[str] | None = None,
) -> list[Violation]:
    """Every finding for a recorded session under `dialect` (of the `enabled` checks)."""
    history = history or History(dialect=dialect)
    found: list[Violation] = []
    for ex in exchanges:
        found += exchange_checks(ex, dialect=dialect, enabled=enabled)
        found += history.observe(ex)
    for expectation in expectations:
        found += expectation.check(dialect)
    return [v for v in found if enabled is None or v.check in enabled]


def score(exchanges: Sequence[Exchange], expectations: Sequence[probes.Expectation],
          dialect: str) -> float:
    """The fraction of exchanges with no finding at all under `dialect`."""
    if not exchanges:
        return 0.0
    bad: set[int] = set()
    for i, ex in enumerate(exchanges):
        if exchange_checks(ex, dialect=dialect):
            bad.add(i)
    index = {id(ex): i for i, ex in enumerate(exchanges)}
    for expectation in expectations:
        if expectation.check(dialect):
            bad.add(index.get(id(expectation.exchange), -1))
    bad.discard(-1)
    return round(1 - len(bad) / len(exchanges), 4)


def run_check(config: CheckConfig, *,
              on_step: Callable[[str], None] | None = None) -> Report:
    """Probe the panel of `config`, judge what it said, return the Report. Never raises for
    what the panel does: an unreachable or foreign URL gives a Report with a `headline`, a
    Ctrl-C a `partial` one."""
    started, clock_started = time.time(), time.monotonic()
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**31)
    target = config.target or _http_target(config)
    other = config.other_target
    if other is None and config.other_key:
        other = target.with_key(config.other_key) if hasattr(target, "with_key") else None
    session = probes.Session(target, seed=seed, budget=config.budget,
                             allow_orders=config.allow_orders, examples=config.examples,
                             max_orders=config.max_orders, on_step=on_step,
                             enabled=config.enabled, other=other,
                             clock=config.clock or _control_clock(config),
                             watch=config.watch, poll=config.poll)
    headline, partial = "", False
    try:
        session.run(order_ids=config.order_ids, refill_ids=config.refill_ids)
    except probes.Stop as stop:
        headline = stop.headline
    except KeyboardInterrupt:
        partial = True
    except Exception as exc:  # a bug of the kit must still leave the reports of what ran
        partial = True
        session.not_run["(the rest of the run)"] = (
            f"stopped by an internal error of the kit: {type(exc).__name__}: {str(exc)[:300]}")

    findings: list[Violation] = []
    scores: dict[str, float] = {}
    if headline:
        dialect = config.dialect if config.dialect != "auto" else "perfectpanel"
    else:
        dialect, scores, findings = _verdict(config, session)
        findings += [v for v in session.findings if v.check in config.enabled]
        findings = [v.with_seed(seed) for v in findings]
    return Report(
        url=config.url, dialect=dialect, seed=seed, allow_orders=config.allow_orders,
        budget=config.budget, strict=config.strict, exchanges=list(session.exchanges),
        findings=findings, dialect_scores=scores, ledger=list(session.ledger),
        opening_balance=session.opening, closing_balance=session.closing,
        reserved=session.committed,
        headline=headline, partial=partial, enabled=config.enabled,
        not_run={**session.not_run, "stateful": "not asked for (--stateful)"},
        timeline=dict(session.timeline), started=started,
        duration=time.monotonic() - clock_started, requests=len(session.exchanges),
    )


def _verdict(config: CheckConfig,
             session: probes.Session) -> tuple[str, dict[str, float], list[Violation]]:
    """The dialect reported under, the fit per dialect tried, and the exchanges' findings."""
    if config.dialect not in DIALECT_CHOICES:  # a dialect file: judged against it alone
        spec = dialect_file(config.dialect)
        found, fit = judge_as_declared(session.exchanges, session.expectations,
                                       config.dialect, enabled=config.enabled)
        return spec.name, {spec.name: fit}, found
    if config.dialect == "auto":
        scores = {d: score(session.exchanges, session.expectations, d)
                  for d in schemas.DIALECTS}
        dialect = max(schemas.DIALECTS, key=lambda d: (scores[d], -schemas.DIALECTS.index(d)))
    else:
        dialect = config.dialect
        scores = {dialect: score(session.exchanges, session.expectations, dialect)}
    return dialect, scores, judge(session.exchanges, session.expectations, dialect,
                                  enabled=config.enabled)


def _http_target(config: CheckConfig) -> Any:
    from smmkit.contract_tests.targets import HttpTarget

    if not config.url.startswith(("http://", "https://")):
        raise CheckError(f"URL must start with http:// or https://, got {config.url!r}")
    if not config.key:
        raise CheckError("an API key is required")
    secrets = (config.other_key,) if config.other_key else ()
    return HttpTarget(config.url, config.key, timeout=config.timeout, retries=config.retries,
                      rate=config.rate, secrets=secrets)


def _control_clock(config: CheckConfig) -> Callable[[float], Any] | None:
    """Our fake's clock through its control API, when an admin token is given."""
    if not config.admin_token:
        return None
    from smmkit.mock_server.client.control import ControlClient

    control = ControlClient(config.url, config.admin_token, timeout=config.timeout)
    return lambda seconds: control.clock.advance(int(seconds))
