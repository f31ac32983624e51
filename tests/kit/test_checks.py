"""The checks on hand-made exchanges: each one passes a good answer and names a bad one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from smmkit.contract_tests.checks import (
    ContractViolation,
    assert_conforms,
    check_error_texts,
    check_expected_error,
    check_money_format,
    check_multi_ids,
    check_schema,
    check_transport,
    classify_error_text,
    violations,
)
from smmkit.contract_tests.exchange import Exchange
from smmkit.contract_tests.history import History

JSON = {"Content-Type": "application/json"}
CATALOGUE = [
    {"service": 1, "name": "Followers", "type": "Default", "category": "IG", "rate": "0.90",
     "min": "50", "max": "10000", "refill": True, "cancel": True},
    {"service": 2, "name": "Likes", "type": "Default", "category": "IG", "rate": "0.12",
     "min": "20", "max": "20000", "refill": False, "cancel": False},
]


def ex(params: dict[str, str], body: Any, *, key: str = "k1", status: int = 200,
       headers: dict[str, str] | None = None) -> Exchange:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return Exchange.build({"key": key, **params}, status=status, headers=headers or JSON,
                          body=raw)


def names(found: list) -> set[str]:
    return {v.check for v in found}


def status(charge: str, state: str, remains: str, start: str = "0") -> dict[str, str]:
    return {"charge": charge, "start_count": start, "status": state, "remains": remains,
            "currency": "USD"}


# ------------------------------------------------------------------ per-exchange checks
def test_schema_strict_miss_is_a_deviation_and_shape_miss_a_violation() -> None:
    assert check_schema(ex({"action": "add", "service": "1"}, {"order": 5})) == []
    [dev] = check_schema(ex({"action": "add", "service": "1"}, {"order": "5"}))
    assert dev.severity == "deviation" and dev.check == "schema"
    [bad] = check_schema(ex({"action": "balance"}, {"money": "1"}))
    assert bad.severity == "violation"


def test_unknown_action_must_be_an_error() -> None:
    assert check_schema(ex({"action": "nope"}, {"error": "Incorrect request"})) == []
    assert names(check_schema(ex({"action": "nope"}, {"balance": "1"}))) == {"schema"}


@pytest.mark.parametrize("text,kind", [
    ("Invalid API key", "dialect"),
    ("Quantity less than minimal 200", "dialect"),
    ("neworder.error.min_quantity", "raw-key"),
    ("error.incorrect_order_id", "raw-key"),
    ("Incorrect refill ID", "other-dialect"),
    ("Invalid api key", "unknown"),
    ("Quantity less than minimal", "unknown"),
])
def test_error_texts_are_classified(text: str, kind: str) -> None:
    assert classify_error_text(text, "perfectpanel")[0] == kind


def test_error_catalogue_reads_nested_errors_too() -> None:
    good = ex({"action": "status", "orders": "1,2"},
              {"1": {"error": "Incorrect order ID"}, "2": {"error": "error.incorrect_order_id"}})
    assert check_error_texts(good) == []
    bad = ex({"action": "cancel", "orders": "1"}, [{"order": 1, "cancel": {"error": "nope"}}])
    [v] = check_error_texts(bad)
    assert v.check == "error_catalogue" and "$[0].cancel" in v.message
    seedish = ex({"action": "refill_status", "refill": "9"}, {"error": "Incorrect refill ID"})
    assert [v.severity for v in check_error_texts(seedish)] == ["deviation"]
    assert check_error_texts(seedish, dialect="seed") == []


def test_transport_wants_json_and_http_200_for_errors() -> None:
    error = {"error": "Invalid API key"}
    assert check_transport(ex({"action": "balance"}, error)) == []
    assert names(check_transport(ex({"action": "balance"}, error, status=401))) == {"http_status"}
    [seed] = check_transport(ex({"action": "balance"}, error, status=401), dialect="seed")
    assert seed.severity == "deviation"
    html = ex({"action": "balance"}, error, headers={"Content-Type": "text/html"})
    assert names(check_transport(html)) == {"content_type"}
    page = ex({"action": "balance"}, "<html>502</html>", status=502,
              headers={"Content-Type": "text/html"})
    assert names(check_transport(page)) == {"content_type", "json_body"}


@pytest.mark.parametrize("value,ok", [("1.5", True), ("0", True), ("100.84292", True),
                                      (1.5, False), (2, False), ("1e3", False), ("", False)])
def test_money_is_a_plain_decimal_string(value: Any, ok: bool) -> None:
    found = check_money_format(ex({"action": "balance"}, {"balance": value, "currency": "USD"}))
    assert (found == []) is ok


def test_money_format_looks_inside_multi_status() -> None:
    body = {"7": {**status("0.5", "Pending", "10"), "charge": 0.5}}
    [v] = check_money_format(ex({"action": "status", "orders": "7"}, body))
    assert "$.7.charge" in v.message


def test_multi_ids_must_be_exactly_the_requested_strings() -> None:
    params = {"action": "status", "orders": "1, 10 ,100"}
    good = {k: {"error": "Incorrect order ID"} for k in ("1", "10", "100")}
    assert check_multi_ids(ex(params, good)) == []
    shifted = {k: v for k, v in zip(("0", "1", "2"), good.values(), strict=True)}
    [v] = check_multi_ids(ex(params, shifted))
    assert v.check == "multi_ids" and "'10'" in v.message
    lists = ex({"action": "cancel", "orders": "2,9"},
               [{"order": 2, "cancel": 1}, {"order": 3, "cancel": 1}])
    assert names(check_multi_ids(lists)) == {"multi_ids"}


def test_expected_error_checks_code_and_limit() -> None:
    below = ex({"action": "add"}, {"error": "Quantity less than minimal 50"})
    assert check_expected_error(below, "min_quantity", limit=50) == []
    assert names(check_expected_error(below, "min_quantity", limit=20)) == {"expected_error"}
    assert names(check_expected_error(below, "invalid_key")) == {"expected_error"}
    accepted = ex({"action": "add"}, {"order": 1})
    assert names(check_expected_error(accepted, "min_quantity", limit=50)) == {"expected_error"}


# ------------------------------------------------------------------ History
def session(*steps: Exchange) -> list:
    history = History()
    found: list = []
    for step in steps:
        found += history.observe(step)
    return found


SERVICES = ex({"action": "services"}, CATALOGUE)
ADD = ex({"action": "add", "service": "1", "link": "https://x.io/a", "quantity": "100"},
         {"order": 7})


def test_charge_is_rate_times_quantity_half_up() -> None:
    assert session(SERVICES, ADD, ex({"action": "status", "order": "7"},
                                     status("0.09", "Pending", "100"))) == []
    found = session(SERVICES, ADD, ex({"action": "status", "order": "7"},
                                      status("0.0901", "Pending", "100")))
    assert names(found) == {"charge"}
    # Partial keeps charge × (quantity − remains) / quantity: 0.09 × 60 / 100 = 0.054.
    refunded = session(SERVICES, ADD, ex({"action": "status", "order": "7"},
                                         status("0.054", "Partial", "40")))
    assert refunded == []
    unrefunded = session(SERVICES, ADD, ex({"action": "status", "order": "7"},
                                           status("0.09", "Partial", "40")))
    assert unrefunded == []  # reporting the original charge is the panel's choice (§6)
    assert names(session(SERVICES, ADD, ex({"action": "status", "order": "7"},
                                           status("0.05", "Partial", "40")))) == {"partial_charge"}
    assert names(session(SERVICES, ADD, ex({"action": "status", "order": "7"},
                                           status("0.2", "Partial", "40")))) \
        == {"charge", "partial_charge"}
    assert names(session(SERVICES, ADD, ex({"action": "status", "order": "7"},
                                           status("0.01", "Canceled", "100")))) \
        == {"partial_charge"}


def test_remains_bounds() -> None:
    over = ex({"action": "status", "order": "7"}, status("0.09", "In progress", "101"))
    assert names(session(SERVICES, ADD, over)) == {"remains"}
    negative_done = ex({"action": "status", "order": "7"}, status("0.09", "Completed", "-2"))
    assert session(SERVICES, ADD, negative_done) == []
    negative_running = ex({"action": "status", "order": "7"}, status("0.09", "In progress", "-2"))
    assert names(session(SERVICES, ADD, negative_running)) == {"remains"}


def test_no_transition_out_of_a_final_status_nor_backwards() -> None:
    def st(state: str) -> Exchange:
        return ex({"action": "status", "order": "7"}, status("0.09", state, "0"))

    assert session(SERVICES, ADD, st("Pending"), st("In progress"), st("Completed"),
                   st("Completed")) == []
    assert names(session(SERVICES, ADD, st("Completed"), st("In progress"))) == {"final_status"}
    assert names(session(SERVICES, ADD, st("In progress"), st("Pending"))) == {"lifecycle_order"}


def test_another_keys_ids_look_unknown() -> None:
    peek_ok = ex({"action": "status", "order": "7"}, {"error": "Incorrect order ID"}, key="k2")
    assert session(SERVICES, ADD, peek_ok) == []
    peek_bad = ex({"action": "status", "order": "7"}, status("0.09", "Pending", "100"), key="k2")
    assert names(session(SERVICES, ADD, peek_bad)) == {"foreign_ids_invisible"}
    other_error = ex({"action": "status", "order": "7"}, {"error": "Incorrect request"}, key="k2")
    assert names(session(SERVICES, ADD, other_error)) == {"foreign_ids_invisible"}
    refill = ex({"action": "refill", "order": "7"}, {"refill": "3"})
    peek_refill = ex({"action": "refill_status", "refill": "3"}, {"status": "Pending"}, key="k2")
    assert names(session(SERVICES, ADD, refill, peek_refill)) == {"foreign_ids_invisible"}


def test_cancel_and_refill_rules() -> None:
    done = ex({"action": "status", "order": "7"}, status("0.09", "Completed", "0"))
    cancel = ex({"action": "cancel", "orders": "7"}, [{"order": 7, "cancel": 1}])
    assert names(session(SERVICES, ADD, done, cancel)) == {"cancel_rules"}
    add2 = ex({"action": "add", "service": "2", "link": "https://x.io/b", "quantity": "20"},
              {"order": 8})
    refill2 = ex({"action": "refill", "order": "8"}, {"refill": "4"})
    assert names(session(SERVICES, add2, refill2)) == {"refill_rules"}


def test_quantity_errors_name_the_services_own_limit() -> None:
    params = {"action": "add", "service": "1", "link": "https://x.io/a", "quantity": "10"}
    assert session(SERVICES, ex(params, {"error": "Quantity less than minimal 50"})) == []
    wrong = session(SERVICES, ex(params, {"error": "Quantity less than minimal 20"}))
    assert names(wrong) == {"quantity_limit"}
    over = session(SERVICES, ex({**params, "quantity": "99999"},
                                {"error": "Quantity more than maximum 10001"}))
    assert names(over) == {"quantity_limit"}


def test_unique_order_ids() -> None:
    assert names(session(SERVICES, ADD, ADD)) == {"unique_order_ids"}


def balance(amount: str) -> Exchange:
    return ex({"action": "balance"}, {"balance": amount, "currency": "USD"})


def test_money_conservation_over_a_bracket() -> None:
    st = ex({"action": "status", "orders": "7"}, {"7": status("0.054", "Partial", "40")})
    assert session(SERVICES, balance("10"), ADD, balance("9.946"), st, balance("9.946")) == []
    # The refund was reported in the charge but never reached the balance.
    found = session(SERVICES, balance("10"), ADD, balance("9.91"), st, balance("9.91"))
    assert names(found) == {"money_conservation"}
    # A balance that moved inside the bracket proves nothing: skipped, not reported.
    assert session(SERVICES, balance("10"), ADD, balance("9.91"), st, balance("9.946")) == []


@pytest.mark.parametrize("recorded", [True, False])
def test_top_ups_count_in_conservation(recorded: bool) -> None:
    history = History()
    st = ex({"action": "status", "order": "7"}, status("0.09", "Pending", "100"))
    for step in (SERVICES, balance("10"), ADD, balance("9.91"), st):
        assert history.observe(step) == []
    if recorded:
        history.top_up(SERVICES.account, "5")
    found = [v for step in (balance("14.91"), st, balance("14.91"))
             for v in history.observe(step)]
    assert names(found) == (set() if recorded else {"money_conservation"})


# ------------------------------------------------------------------ the two entry points
def test_violations_and_assert_conforms_list_every_finding() -> None:
    bad = [ex({"action": "balance"}, {"balance": 1.5, "currency": "USD"}),
           ex({"action": "services"}, {"error": "Invalid api key"}, status=500)]
    found = violations(bad)
    assert {"money_format", "error_catalogue", "http_status"} <= names(found)
    with pytest.raises(ContractViolation) as info:
        assert_conforms(*bad)
    assert isinstance(info.value, AssertionError)
    assert len(info.value.violations) == len([v for v in found if v.severity == "violation"])
    assert "money_format" in str(info.value) and "curl" in str(info.value)
    assert_conforms(ex({"action": "balance"}, {"balance": "1.5", "currency": "USD"}))
    with pytest.raises(ContractViolation):
        assert_conforms(ex({"action": "add", "service": "1"}, {"order": "5"}), strict=True)
