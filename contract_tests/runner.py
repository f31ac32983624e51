"""`run_check(config) -> Report`: probe a panel, then check everything it said.

Two phases. First the kit *talks*: read-only probes by default (services, balance, status and
refill_status of unknown and given ids, bad key / bad action, the three transports and the
trailing slash, a seeded Hypothesis run of invalid requests); with `allow_orders`, the cheapest
services at their minimum quantity, the budget checked before every `add` and never exceeded,
cancels where allowed and a spend ledger. Then the kit *judges* the recorded exchanges, once per
dialect when `dialect="auto"`, and reports under the dialect that fits best.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from smmkit.contract_tests import probes
from smmkit.contract_tests.checks import exchange_checks
from smmkit.contract_tests.exchange import Exchange
from smmkit.contract_tests.history import History
from smmkit.contract_tests.probes import CheckError
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
    timeout: float = 30.0
    strict: bool = False  # deviations fail the run too
    target: Any = None  # a ready Target (tests, in-process apps); built from url/key otherwise

    def __post_init__(self) -> None:
        if self.dialect not in DIALECT_CHOICES:
            raise CheckError(f"unknown dialect {self.dialect!r}; choose from {DIALECT_CHOICES}")
        if not isinstance(self.budget, Decimal):
            object.__setattr__(self, "budget", Decimal(str(self.budget)))
        if self.budget < 0:
            raise CheckError(f"budget must not be negative, got {self.budget}")
        if self.allow_orders and self.budget <= 0:
            raise CheckError("allow_orders needs a positive budget")


@dataclass(frozen=True)
class LedgerEntry:
    action: str
    order: str
    service: int | None
    quantity: int | None
    expected_charge: Decimal
    balance_after: Decimal | None
    note: str = ""


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
            row = table.setdefault(ex.action or "(none)", _row())
            row["exchanges"] += 1
        for v in self.findings:
            row = table.setdefault(v.action or "(session)", _row())
            row["violations" if v.severity == "violation" else "deviations"] += 1
        return dict(sorted(table.items()))

    def by_family(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for v in self.findings:
            row = table.setdefault(v.family, _row())
            row["violations" if v.severity == "violation" else "deviations"] += 1
        return dict(sorted(table.items()))


def _row() -> dict[str, int]:
    return {"exchanges": 0, "violations": 0, "deviations": 0}


def judge(
    exchanges: Sequence[Exchange], expectations: Sequence[probes.Expectation], dialect: str,
    history: History | None = None,
) -> list[Violation]:
    """Every finding for a recorded session under `dialect`."""
    history = history or History(dialect=dialect)
    found: list[Violation] = []
    for ex in exchanges:
        found += exchange_checks(ex, dialect=dialect)
        found += history.observe(ex)
    for expectation in expectations:
        found += expectation.check(dialect)
    return found


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
    """Probe the panel of `config`, judge what it said, return the Report."""
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**31)
    target = config.target or _http_target(config)
    session = probes.Session(target, seed=seed, budget=config.budget,
                             allow_orders=config.allow_orders, examples=config.examples,
                             max_orders=config.max_orders, on_step=on_step)
    session.run(order_ids=config.order_ids, refill_ids=config.refill_ids)

    if config.dialect == "auto":
        scores = {d: score(session.exchanges, session.expectations, d) for d in schemas.DIALECTS}
        dialect = max(schemas.DIALECTS, key=lambda d: (scores[d], -schemas.DIALECTS.index(d)))
    else:
        dialect = config.dialect
        scores = {dialect: score(session.exchanges, session.expectations, dialect)}
    findings = [v.with_seed(seed) for v in
                judge(session.exchanges, session.expectations, dialect)]
    findings += [v.with_seed(seed) for v in session.findings]
    return Report(
        url=config.url, dialect=dialect, seed=seed, allow_orders=config.allow_orders,
        budget=config.budget, strict=config.strict, exchanges=list(session.exchanges),
        findings=findings, dialect_scores=scores, ledger=list(session.ledger),
        opening_balance=session.opening, closing_balance=session.closing,
    )


def _http_target(config: CheckConfig) -> Any:
    from smmkit.contract_tests.targets import HttpTarget

    if not config.url.startswith(("http://", "https://")):
        raise CheckError(f"URL must start with http:// or https://, got {config.url!r}")
    if not config.key:
        raise CheckError("an API key is required")
    return HttpTarget(config.url, config.key, timeout=config.timeout)
