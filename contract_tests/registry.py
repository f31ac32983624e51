"""Every check the kit has, by name: what it judges, its family and its severity per profile.

A check is one name in the `check` field of its findings. Per-exchange checks are functions of
one signature, ``check(exchange, *, dialect) -> list[Violation]``, registered with
`@per_exchange`; session checks (History, the probes, the watch, the transport) are run by their
owners and registered here by name so they can be documented, listed
(`smmkit check --list-checks`) and chosen (`--checks a,b`, `--skip-checks c`).

Severity per profile: *default* is the run without `--strict`, *strict* the run with it.
"fails" means the finding fails the run under that profile; "reported" means it is shown but
does not fail it. What docs/PROTOCOL.md leaves to the panel (marked (choice): which links are
"Incorrect link", optional fields) is never checked at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PerExchange = Callable[..., list[Any]]  # (exchange, *, dialect) -> list[Violation]


@dataclass(frozen=True)
class Check:
    name: str
    family: str
    about: str
    default: str = "fails"
    strict: str = "fails"
    run: PerExchange | None = None


CHECKS: dict[str, Check] = {}


def register(name: str, family: str, about: str, *, default: str = "fails",
             strict: str = "fails", run: PerExchange | None = None) -> Check:
    check = Check(name, family, about, default, strict, run)
    CHECKS[name] = check
    return check


def per_exchange(name: str, family: str, about: str, *, default: str = "fails",
                 strict: str = "fails") -> Callable[[PerExchange], PerExchange]:
    """Register a function ``(exchange, *, dialect) -> list[Violation]`` as check `name`."""
    def wrap(func: PerExchange) -> PerExchange:
        register(name, family, about, default=default, strict=strict, run=func)
        return func
    return wrap


_DEVIATING = dict(default="fails on a violation; a deviation is reported",
                  strict="fails on a violation or a deviation")

# Session checks (their code lives in history, probes, watch and targets).
_extra: dict[str, str]
for _name, _family, _about, _extra in (
    ("charge", "money", "the reported charge is rate × quantity / 1000 (half-up, 5 places) and "
     "never above it after a refund", {}),
    ("currency", "money", "an order's currency is the balance's currency", {}),
    ("negative_balance", "money", "a balance is never below 0", {}),
    ("money_conservation", "money", "balance + Σ reported charges = opening + top-ups over a "
     "quiet bracket", {}),
    ("budget", "money", "the panel never takes more than the kit's orders cost", {}),
    ("refund_in_balance", "money", "every refund the watch saw shows up in the balance "
     "(unattributable changes are reported, never failed)", {}),
    ("partial_charge", "money", "Partial keeps charge × (quantity − remains) / quantity, "
     "Canceled keeps 0 (docs/PROTOCOL.md §6)", {}),
    ("final_status", "semantics", "a final status (Completed, Partial, Canceled) never changes",
     {}),
    ("lifecycle_order", "semantics", "statuses move only along docs/PROTOCOL.md §5", {}),
    ("remains", "semantics", "remains within [0, quantity], negative only when Completed", {}),
    ("remains_grew", "semantics", "remains never grows while an order is In progress", {}),
    ("unique_order_ids", "semantics", "add never gives out an id twice", {}),
    ("foreign_ids_invisible", "semantics", "another key's ids answer exactly as unknown ids",
     {}),
    ("refill_rules", "semantics", "refill accepted only on services with refill", {}),
    ("cancel_rules", "semantics", "cancel accepted only where allowed and not on final orders",
     {}),
    ("refill_flow", "semantics", "a refill of a completed order answers an id, and "
     "refill_status knows it in both forms", {}),
    ("quantity_limit", "errors", "a quantity error names the service's own min / max", {}),
    ("expected_error", "probe", "an invalid request gets its catalogue error", {}),
    ("invalid_add", "probe", "an invalid add is refused with the catalogue error, charges "
     "nothing, never a 5xx, a non-JSON body or an accepted order", {}),
    ("funds", "probe", "an order above the balance gets 'Not enough funds on balance'", {}),
    ("transport_variants", "transport", "form, JSON, query and the trailing slash answer alike",
     {}),
    ("transport_error", "transport", "the panel answers: no dropped connection, timeout, "
     "truncated or oversized body (the run goes on)", {}),
    ("redirect", "transport", "the API never redirects to another origin", {}),
    ("stateful", "semantics", "the rule-based state machine (--stateful) finds no violation",
     {}),
    ("number_range", "transport", "numbers and JSON nesting stay within sane bounds", {}),
):
    register(_name, _family, _about, **_extra)


def names() -> list[str]:
    return sorted(CHECKS)


def select(checks: Sequence[str] | None = None, skip: Iterable[str] = ()) -> frozenset[str]:
    """The names of the checks to run: `checks` (all when empty) minus `skip`; unknown names
    raise ValueError listing the known ones."""
    wanted = list(checks or ())
    unknown = sorted({*wanted, *skip} - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(names())}")
    return frozenset(wanted or CHECKS) - frozenset(skip)


def per_exchange_checks(enabled: Iterable[str] | None = None) -> list[Check]:
    chosen = set(CHECKS) if enabled is None else set(enabled)
    return [c for c in CHECKS.values() if c.run is not None and c.name in chosen]


def describe() -> list[dict[str, str]]:
    """One row per check, for `--list-checks` and the docs."""
    return [{"check": c.name, "family": c.family, "default": c.default, "strict": c.strict,
             "about": c.about} for c in sorted(CHECKS.values(), key=lambda c: (c.family,
                                                                               c.name))]


__all__ = ["Check", "CHECKS", "register", "per_exchange", "select", "names", "describe",
           "per_exchange_checks", "_DEVIATING"]
