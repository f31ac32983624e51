"""Findings as values: `Violation` and the one exception that lists them.

Like jsonschema's `iter_errors` vs `validate`: every check returns a list of `Violation`;
`ContractViolation` exists only for `assert_conforms`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from smmkit.contract_tests.exchange import Exchange

# violation: breaks the contract; deviation: tolerated, differs from the canonical dialect (fails
# only with --strict); note: worth saying, never a failure (e.g. a balance change the kit could
# not attribute on a live account).
SEVERITIES = ("violation", "deviation", "note")
FAMILIES = ("schema", "errors", "transport", "money", "semantics", "probe")


@dataclass(frozen=True)
class Violation:
    """One finding. `severity` is "violation" (breaks the contract) or "deviation" (tolerated by
    clients, differs from the canonical dialect). `reproduction` is a curl line (key redacted),
    plus the Hypothesis seed when the request came from a seeded run."""

    check: str
    family: str
    severity: str
    message: str
    exchange: Exchange | None = None
    reproduction: str = ""

    @property
    def action(self) -> str:
        return self.exchange.action if self.exchange is not None else ""

    def with_seed(self, seed: int | None) -> Violation:
        if seed is None or "hypothesis seed" in self.reproduction:
            return self
        line = f"# hypothesis seed: {seed}"
        return replace(self, reproduction=f"{self.reproduction}\n{line}".strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "family": self.family,
            "severity": self.severity,
            "message": self.message,
            "action": self.action,
            "reproduction": self.reproduction,
            "status": self.exchange.status if self.exchange is not None else None,
            "body": self.exchange.text(600) if self.exchange is not None else None,
        }

    def __str__(self) -> str:
        where = f" [{self.action}]" if self.action else ""
        text = f"{self.severity}: {self.check}{where}: {self.message}"
        return f"{text}\n    {self.reproduction}" if self.reproduction else text


def finding(
    check: str, family: str, message: str, exchange: Exchange | None = None, *,
    severity: str = "violation",
) -> Violation:
    """A Violation with its curl reproduction filled in from the exchange."""
    assert severity in SEVERITIES, severity
    return Violation(
        check=check,
        family=family,
        severity=severity,
        message=message,
        exchange=exchange,
        reproduction=exchange.curl() if exchange is not None else "",
    )


class ContractViolation(AssertionError):
    """Raised by `assert_conforms`: every finding at once, not just the first."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        lines = [f"{len(self.violations)} contract violation(s):"]
        lines += [f"  {i}. {v}" for i, v in enumerate(self.violations, 1)]
        super().__init__("\n".join(lines))


def failing(found: Iterable[Violation], *, strict: bool = False) -> list[Violation]:
    """The findings that fail a run: violations, and deviations too when `strict`."""
    return [v for v in found
            if v.severity == "violation" or (strict and v.severity == "deviation")]
