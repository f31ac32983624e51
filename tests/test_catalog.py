"""catalog.py: the shipped catalogue and the `add` rules of every service type
(docs/PROTOCOL.md §3, §4)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from importlib import resources

import pytest
from smmkit.mock_server.core.catalog import (
    MAX_INTERVAL_MINUTES,
    MAX_RUNS,
    SUBSCRIPTION_DELAYS,
    TYPE_RULES,
    Service,
    load_catalog,
    parse_add,
)
from smmkit.mock_server.core.errors import (
    IncorrectLink,
    IncorrectRequest,
    PanelError,
    QuantityTooHigh,
    QuantityTooLow,
)

LINK = "https://instagram.com/p/abc"

# One valid `add` per type, plus the quantity it must parse to (per run).
VALID: dict[str, tuple[dict[str, str], int]] = {
    "Default": ({"link": LINK, "quantity": "100"}, 100),
    "Package": ({"link": LINK}, 1),
    "Custom Comments": ({"link": LINK, "comments": "nice\r\ngreat\n\nwow\n"}, 3),
    "Custom Comments Package": ({"link": LINK, "comments": "a\nb"}, 2),
    "Mentions": ({"link": LINK, "quantity": "100", "usernames": "alice\nbob"}, 100),
    "Mentions with Hashtags": (
        {"link": LINK, "quantity": "100", "usernames": "alice\nbob", "hashtags": "#a\n#b"}, 100),
    "Mentions Custom List": ({"link": LINK, "usernames": "a\r\nb\r\nc\r\n\r\nd"}, 4),
    "Mentions Hashtag": ({"link": LINK, "quantity": "100", "hashtag": "#cats"}, 100),
    "Mentions User Followers": ({"link": LINK, "quantity": "100", "username": "alice"}, 100),
    "Mentions Media Likers": ({"link": LINK, "quantity": "100", "media": LINK}, 100),
    "Comment Likes": ({"link": LINK, "quantity": "100", "username": "alice"}, 100),
    "Comment Replies": ({"link": LINK, "username": "alice", "comments": "x\ny\r\nz"}, 3),
    "Poll": ({"link": LINK, "quantity": "100", "answer_number": "2"}, 100),
    "Invites from Groups": ({"link": LINK, "quantity": "100", "groups": "g1\ng2"}, 100),
    "Subscriptions": ({"username": "alice", "min": "10", "max": "200", "delay": "30"}, 200),
    "Web Traffic": ({"link": LINK, "quantity": "100", "country": "US", "device": "1",
                     "type_of_traffic": "3"}, 100),
    "SEO": ({"link": LINK, "quantity": "100", "keywords": "cats\ndogs"}, 100),
    "Special": ({"link": LINK, "quantity": "100", "list": "v1\nv2"}, 100),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "Default": ("link", "quantity"),
    "Package": ("link",),
    "Custom Comments": ("link", "comments"),
    "Custom Comments Package": ("link", "comments"),
    "Mentions": ("link", "quantity", "usernames"),
    "Mentions with Hashtags": ("link", "quantity", "usernames", "hashtags"),
    "Mentions Custom List": ("link", "usernames"),
    "Mentions Hashtag": ("link", "quantity", "hashtag"),
    "Mentions User Followers": ("link", "quantity", "username"),
    "Mentions Media Likers": ("link", "quantity", "media"),
    "Comment Likes": ("link", "quantity", "username"),
    "Comment Replies": ("link", "username", "comments"),
    "Poll": ("link", "quantity", "answer_number"),
    "Invites from Groups": ("link", "quantity", "groups"),
    "Subscriptions": ("username", "min", "max", "delay"),
    "Web Traffic": ("link", "quantity", "country", "device", "type_of_traffic"),
    "SEO": ("link", "quantity", "keywords"),
    "Special": ("link", "quantity", "list"),
}


def service(type_: str, **kw: object) -> Service:
    values = dict(service=1, name="x", type=type_, category="Test", rate="1.00", min=1, max=1000,
                  dripfeed=True)
    values.update(kw)
    from decimal import Decimal

    values["rate"] = Decimal(str(values["rate"]))
    return Service(**values)  # type: ignore[arg-type]


def error_of(svc: Service, params: dict[str, str]) -> PanelError:
    with pytest.raises(PanelError) as info:
        parse_add(svc, params)
    return info.value


def test_every_type_has_a_case() -> None:
    assert set(VALID) == set(TYPE_RULES) == set(REQUIRED)


@pytest.mark.parametrize("type_", sorted(TYPE_RULES))
def test_valid_add_parses(type_: str) -> None:
    params, quantity = VALID[type_]
    request = parse_add(service(type_), params)
    assert request.quantity == quantity
    assert request.runs == 1
    assert request.total == quantity
    if type_ == "Subscriptions":
        assert request.link == "alice"
    else:
        assert request.link == LINK


@pytest.mark.parametrize(("type_", "name"),
                         [(t, n) for t in sorted(REQUIRED) for n in REQUIRED[t]])
@pytest.mark.parametrize("how", ["missing", "blank"])
def test_missing_required_field(type_: str, name: str, how: str) -> None:
    params = dict(VALID[type_][0])
    if how == "missing":
        del params[name]
    else:
        params[name] = "  "
    exc = error_of(service(type_), params)
    expected = "Incorrect link" if name == "link" else "Incorrect request"
    assert exc.text() == expected
    assert isinstance(exc, IncorrectLink if name == "link" else IncorrectRequest)


@pytest.mark.parametrize("separator", ["\n", "\r\n"])
def test_comment_lines_give_quantity(separator: str) -> None:
    comments = separator.join(["one", "two", "", "  ", "three", "four", "five"]) + separator
    request = parse_add(service("Custom Comments"), {"link": LINK, "comments": comments})
    assert request.quantity == 5
    assert request.extras["comments"] == ["one", "two", "three", "four", "five"]


def test_comment_count_checked_against_limits() -> None:
    svc = service("Custom Comments", min=5, max=6)
    assert error_of(svc, {"link": LINK, "comments": "a\nb"}).text() == \
        "Quantity less than minimal 5"
    assert error_of(svc, {"link": LINK, "comments": "\n".join("abcdefg")}).text() == \
        "Quantity more than maximum 6"


def test_custom_list_counts_usernames() -> None:
    request = parse_add(service("Mentions Custom List"),
                        {"link": LINK, "usernames": "a\r\nb\nc", "quantity": "999"})
    assert request.quantity == 3  # the list decides, a stray quantity does not


def test_lists_are_parsed_per_line() -> None:
    request = parse_add(service("Mentions with Hashtags"), VALID["Mentions with Hashtags"][0])
    assert request.extras["usernames"] == ["alice", "bob"]
    assert request.extras["hashtags"] == ["#a", "#b"]


# ---------------------------------------------------------------- Web Traffic


def traffic(**changes: str) -> dict[str, str]:
    params = dict(VALID["Web Traffic"][0])
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def test_web_traffic_keyword_required_for_type_1() -> None:
    svc = service("Web Traffic")
    assert error_of(svc, traffic(type_of_traffic="1")).text() == "Incorrect request"
    request = parse_add(svc, traffic(type_of_traffic="1", google_keyword="buy cats"))
    assert request.extras["google_keyword"] == "buy cats"


def test_web_traffic_referrer_required_for_type_2() -> None:
    svc = service("Web Traffic")
    assert error_of(svc, traffic(type_of_traffic="2")).text() == "Incorrect request"
    assert error_of(svc, traffic(type_of_traffic="2", google_keyword="x")).text() == \
        "Incorrect request"
    request = parse_add(svc, traffic(type_of_traffic="2", referring_url="https://ref.example"))
    assert request.extras["referring_url"] == "https://ref.example"


@pytest.mark.parametrize("device", ["1", "5"])
def test_web_traffic_device_bounds_ok(device: str) -> None:
    assert parse_add(service("Web Traffic"), traffic(device=device)).extras["device"] == int(device)


@pytest.mark.parametrize(("name", "value"), [
    ("device", "0"), ("device", "6"), ("device", "-1"), ("device", "x"), ("device", "1.5"),
    ("type_of_traffic", "0"), ("type_of_traffic", "4"), ("type_of_traffic", "web"),
])
def test_web_traffic_bad_numbers(name: str, value: str) -> None:
    assert error_of(service("Web Traffic"), traffic(**{name: value})).text() == "Incorrect request"


# ---------------------------------------------------------------- Subscriptions


def sub(**changes: str) -> dict[str, str]:
    params = dict(VALID["Subscriptions"][0])
    params.update(changes)
    return params


def test_subscription_needs_no_link_or_quantity() -> None:
    svc = service("Subscriptions", min=10, max=1000)
    request = parse_add(svc, sub(posts="3", old_posts="0", expiry="31/12/2026"))
    assert request.quantity == 200 * 3  # billed max × posts
    assert request.extras["delay"] == 30
    assert request.extras["expiry"] == "31/12/2026"
    assert request.extras["min"] == 10 and request.extras["max"] == 200


@pytest.mark.parametrize("delay", sorted(SUBSCRIPTION_DELAYS))
def test_subscription_allowed_delays(delay: int) -> None:
    assert parse_add(service("Subscriptions"), sub(delay=str(delay))).extras["delay"] == delay


@pytest.mark.parametrize("delay", ["1", "7", "25", "601", "-5", "abc", "30.0"])
def test_subscription_other_delays_rejected(delay: str) -> None:
    assert error_of(service("Subscriptions"), sub(delay=delay)).text() == "Incorrect request"


@pytest.mark.parametrize("expiry", ["2026-12-31", "31/02/2026", "12/31/2026", "tomorrow",
                                    "31/12/26"])
def test_subscription_bad_expiry(expiry: str) -> None:
    assert error_of(service("Subscriptions"), sub(expiry=expiry)).text() == "Incorrect request"


def test_subscription_min_above_max() -> None:
    assert error_of(service("Subscriptions"), sub(min="300", max="200")).text() == \
        "Incorrect request"


def test_subscription_limits_use_service_min_max() -> None:
    svc = service("Subscriptions", min=50, max=500)
    assert error_of(svc, sub(min="10", max="100")).text() == "Quantity less than minimal 50"
    assert error_of(svc, sub(min="60", max="501")).text() == "Quantity more than maximum 500"


# ---------------------------------------------------------------- drip-feed


def test_dripfeed_multiplies_quantity() -> None:
    request = parse_add(service("Default"), {"link": LINK, "quantity": "100", "runs": "5",
                                             "interval": "15"})
    assert (request.quantity, request.runs, request.interval, request.total) == (100, 5, 15, 500)


@pytest.mark.parametrize(("runs", "interval"), [
    ("5", None), (None, "10"), ("0", "10"), ("5", "0"), (str(MAX_RUNS + 1), "10"),
    ("5", str(MAX_INTERVAL_MINUTES + 1)), ("x", "10"), ("5", "1.5"), ("-1", "10"),
])
def test_dripfeed_bad_runs_interval(runs: str | None, interval: str | None) -> None:
    params = {"link": LINK, "quantity": "100"}
    if runs is not None:
        params["runs"] = runs
    if interval is not None:
        params["interval"] = interval
    assert error_of(service("Default"), params).text() == "Incorrect request"


def test_dripfeed_limits_accepted() -> None:
    request = parse_add(service("Default"), {"link": LINK, "quantity": "10",
                                             "runs": str(MAX_RUNS),
                                             "interval": str(MAX_INTERVAL_MINUTES)})
    assert request.total == 10 * MAX_RUNS


def test_dripfeed_only_where_service_has_it() -> None:
    params = {"link": LINK, "quantity": "100", "runs": "2", "interval": "10"}
    assert error_of(service("Default", dripfeed=False), params).text() == "Incorrect request"
    # A package type never drips, even on a service flagged dripfeed.
    assert error_of(service("Package", dripfeed=True), {"link": LINK, "runs": "2",
                                                        "interval": "10"}).text() == \
        "Incorrect request"


def test_blank_dripfeed_fields_are_absent() -> None:
    request = parse_add(service("Default", dripfeed=False),
                        {"link": LINK, "quantity": "100", "runs": "", "interval": " "})
    assert request.runs == 1


# ---------------------------------------------------------------- links


@pytest.mark.parametrize("link", [
    "https://instagram.com/p/abc", "http://example.com", "https://www.youtube.com/watch?v=x&t=1",
    "http://localhost:8080/x", "  https://t.me/channel  ", "https://example.com#frag",
])
def test_good_links(link: str) -> None:
    assert parse_add(service("Default"), {"link": link, "quantity": "10"}).link == link.strip()


@pytest.mark.parametrize("link", [
    "", "instagram.com/p/abc", "ftp://example.com/x", "http://nodot", "https://exa mple.com",
    "https://", "javascript:alert(1)", "https://example.com/" + "a" * 2100, "@alice",
])
def test_bad_links(link: str) -> None:
    assert error_of(service("Default"), {"link": link, "quantity": "10"}).text() == \
        "Incorrect link"


def test_link_checked_before_quantity() -> None:
    assert error_of(service("Default"), {"link": "nope", "quantity": "x"}).text() == \
        "Incorrect link"


# ---------------------------------------------------------------- quantity


SHIPPED = load_catalog()
QUANTITY_SERVICES = [s for s in SHIPPED if TYPE_RULES[s.type].quantity == "param"]


def params_for(svc: Service, quantity: int) -> dict[str, str]:
    params = dict(VALID[svc.type][0])
    params["quantity"] = str(quantity)
    return params


@pytest.mark.parametrize("svc", QUANTITY_SERVICES, ids=lambda s: str(s.service))
def test_min_max_messages_carry_service_limits(svc: Service) -> None:
    low = error_of(svc, params_for(svc, svc.min - 1))
    assert isinstance(low, QuantityTooLow)
    assert low.text() == f"Quantity less than minimal {svc.min}"
    high = error_of(svc, params_for(svc, svc.max + 1))
    assert isinstance(high, QuantityTooHigh)
    assert high.text() == f"Quantity more than maximum {svc.max}"
    assert parse_add(svc, params_for(svc, svc.min)).quantity == svc.min
    assert parse_add(svc, params_for(svc, svc.max)).quantity == svc.max


@pytest.mark.parametrize("quantity", ["1.5", "100.0", "1e3", "abc", "0x10", "10 0", "+-5", "½"])
def test_non_integer_quantity(quantity: str) -> None:
    assert error_of(service("Default"), {"link": LINK, "quantity": quantity}).text() == \
        "Incorrect request"


@pytest.mark.parametrize("quantity", ["١٠٠", "１００", "१००"])
def test_non_ascii_digits_are_not_a_quantity(quantity: str) -> None:
    # docs/PROTOCOL.md §1: quantities are decimal integers; Arabic-Indic / full-width / Devanagari
    # digits are not what any panel (PHP ctype_digit) accepts.
    assert error_of(service("Default"), {"link": LINK, "quantity": quantity}).text() == \
        "Incorrect request"


def test_quantity_with_spaces_and_negative() -> None:
    assert parse_add(service("Default"), {"link": LINK, "quantity": " 100 "}).quantity == 100
    assert error_of(service("Default", min=10), {"link": LINK, "quantity": "-5"}).text() == \
        "Quantity less than minimal 10"
    assert error_of(service("Default", max=10), {"link": LINK, "quantity": "9" * 40}).text() == \
        "Quantity more than maximum 10"


def test_packages_skip_min_max() -> None:
    assert parse_add(service("Package", min=5, max=10), {"link": LINK}).quantity == 1


# ---------------------------------------------------------------- the shipped catalogue


def raw_catalog() -> list[dict]:
    text = resources.files("smmkit.mock_server").joinpath("data/catalog.json").read_text("utf-8")
    return json.loads(text)


def test_shipped_catalogue_breadth() -> None:
    assert len(SHIPPED) >= 30
    platforms = {s.category.split()[0] for s in SHIPPED}
    assert len(platforms) >= 6, platforms
    assert {s.type for s in SHIPPED} == set(TYPE_RULES)
    assert {s.refill for s in SHIPPED} == {True, False}
    assert {s.cancel for s in SHIPPED} == {True, False}
    assert any(s.dripfeed and TYPE_RULES[s.type].dripfeed for s in SHIPPED)
    assert len({s.service for s in SHIPPED}) == len(SHIPPED)


def test_shipped_rates_have_two_to_four_decimals() -> None:
    places = set()
    for entry in raw_catalog():
        assert isinstance(entry["rate"], str)
        match = re.fullmatch(r"\d+\.(\d+)", entry["rate"])
        assert match, entry["rate"]
        places.add(len(match.group(1)))
    assert places <= {2, 3, 4}
    assert 2 in places and 4 in places


def test_every_shipped_service_accepts_a_valid_add() -> None:
    for svc in SHIPPED:
        params = dict(VALID[svc.type][0])
        if TYPE_RULES[svc.type].quantity == "param":
            params["quantity"] = str(svc.min)
        if svc.type == "Subscriptions":
            params.update(min=str(svc.min), max=str(svc.min))
        if svc.type in ("Custom Comments", "Comment Replies"):
            params["comments"] = "\n".join(f"c{i}" for i in range(svc.min))
        if svc.type == "Mentions Custom List":
            params["usernames"] = "\n".join(f"u{i}" for i in range(svc.min))
        request = parse_add(svc, params)
        assert request.total >= 1, svc


def test_refill_services_have_a_window() -> None:
    for svc in SHIPPED:
        if svc.refill:
            assert svc.refill_days > 0, svc


def test_bad_catalogue_entries_rejected(tmp_path) -> None:
    good = raw_catalog()[0]
    for bad in ({**good, "type": "Nope"}, {**good, "min": 10, "max": 5},
                {**good, "rate": "-1"}, {k: v for k, v in good.items() if k != "rate"}):
        path = tmp_path / "c.json"
        path.write_text(json.dumps([bad]))
        with pytest.raises(ValueError):
            load_catalog(path)
    path = tmp_path / "dup.json"
    path.write_text(json.dumps([good, good]))
    with pytest.raises(ValueError):
        load_catalog(path)


def test_service_json_round_trip() -> None:
    from smmkit.mock_server.core.catalog import service_from_json

    for svc in SHIPPED:
        assert service_from_json(svc.to_json()) == svc
    assert replace(SHIPPED[0], enabled=False) != SHIPPED[0]
