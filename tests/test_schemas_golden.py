"""Golden response bodies (fixtures/golden/*.json) judged under both profiles."""

from __future__ import annotations

import json
import pathlib

import pytest

from smmkit import schemas

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "golden"


def _cases() -> list:
    cases = []
    for path in sorted(GOLDEN.glob("*.json")):
        for i, case in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            cases.append(pytest.param(case, id=f"{path.stem}-{i}-{case['description']}"))
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES)
def test_golden_case(case: dict) -> None:
    verdict = schemas.check_response(case["action"], case["form"], case["body"],
                                     dialect=case["dialect"])
    got = {"strict": not verdict.strict_errors, "tolerant": not verdict.tolerant_errors}
    assert got == case["expected"], verdict
    expected_kind = ("conforms" if case["expected"]["strict"]
                     else "deviation" if case["expected"]["tolerant"] else "violation")
    assert verdict.kind == expected_kind
    # every rejection says where and what
    errors = verdict.strict_errors + verdict.tolerant_errors
    assert all(m.startswith("$") and ": " in m for m in errors)


def test_golden_set_is_big_enough_and_well_formed() -> None:
    cases = [p.values[0] for p in CASES]
    keys = {"description", "action", "form", "dialect", "body", "expected"}
    assert all(set(c) == keys for c in cases)
    assert all(set(c["expected"]) == set(schemas.PROFILES) for c in cases)
    assert all(c["dialect"] in schemas.DIALECTS for c in cases)
    assert sum(c["expected"]["strict"] for c in cases) >= 40
    assert sum(not c["expected"]["strict"] for c in cases) >= 40
    assert sum(not c["expected"]["tolerant"] for c in cases) >= 40
    # the tolerant profile never rejects what strict accepts
    assert not [c for c in cases if c["expected"]["strict"] and not c["expected"]["tolerant"]]


def test_seed_document_examples_are_golden_and_valid_under_seed() -> None:
    seed = [p.values[0] for p in CASES if p.values[0]["description"].startswith("seed docs:")]
    pairs = {(c["action"], c["form"]) for c in seed}
    assert pairs == {("services", "list"), ("add", "single"), ("status", "single"),
                     ("status", "multi"), ("balance", "single"), ("refill", "single"),
                     ("refill", "multi"), ("refill_status", "single"), ("refill_status", "multi")}
    assert all(c["dialect"] == "seed" and c["expected"]["strict"] for c in seed)
