"""Hypothesis strategies for SMM panel API v2 requests — public, for use in your own tests.

Every strategy yields the request parameters as ``dict[str, str]`` *without* ``key`` (the sender
adds its key) — except the bad-key probes, which carry their own. Valid `add` requests are drawn
from a real catalogue (the parsed `services` answer, or `KitService` objects), one builder per
service type of docs/PROTOCOL.md §3; text comes from Faker seeded by Hypothesis' randomness, so
a Hypothesis seed reproduces the exact request.

    from hypothesis import given
    from smmkit.contract_tests import strategies as smm

    @given(smm.add_requests(catalogue))
    def test_my_client_sends_valid_orders(params): ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker
from hypothesis import strategies as st
from smmkit.contract_tests.catalogue import QUANTITY_RULES, KitService, charge_for, parse_catalogue

Params = dict[str, str]
MAX_IDS = 100
SUBSCRIPTION_DELAYS = (0, 5, 10, 15, 20, 30, 40, 50, 60, 90, 120, 150, 180, 210, 240, 270, 300,
                       360, 420, 480, 540, 600)
UNKNOWN_IDS = st.integers(min_value=900_000_000, max_value=1_999_999_999)
_FAKER: Faker | None = None


def _faker(seed: int) -> Faker:
    """One Faker, reseeded per draw: Faker() is slow to build, seeding is cheap."""
    global _FAKER
    if _FAKER is None:
        _FAKER = Faker()
    _FAKER.seed_instance(seed)
    return _FAKER


def services_of(catalogue: Sequence[Any]) -> list[KitService]:
    """`KitService`s from a parsed `services` answer (or a list of them already)."""
    if catalogue and all(isinstance(s, KitService) for s in catalogue):
        return list(catalogue)
    return parse_catalogue(list(catalogue))


# ---------------------------------------------------------------- plausible values
def _link(fk: Faker) -> str:
    host = fk.random_element(["www.instagram.com", "www.tiktok.com", "www.youtube.com",
                              "twitter.com", "t.me", "www.facebook.com", fk.domain_name()])
    return f"https://{host}/{fk.user_name()}/{fk.lexify('??????????')}"


def _lines(fk: Faker, count: int, make: Callable[[], str], newline: str) -> str:
    return newline.join(make().replace("\n", " ").replace("\r", " ") for _ in range(count))


@st.composite
def _add_for(draw: st.DrawFn, service: KitService, quantity_cap: int | None) -> Params:
    fk = _faker(draw(st.integers(0, 2**32 - 1)))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    low = max(service.min, 1)
    high = max(low, min(service.max, quantity_cap if quantity_cap else service.max))
    quantity = draw(st.integers(low, high))
    few = draw(st.integers(1, 5))
    params: Params = {"action": "add", "service": str(service.service)}
    kind = service.type
    if kind != "Subscriptions":
        params["link"] = _link(fk)
    if QUANTITY_RULES.get(kind, "param") == "param":
        params["quantity"] = str(quantity)
    if kind in ("Custom Comments", "Comment Replies"):
        params["comments"] = _lines(fk, min(quantity, low + 20), fk.sentence, newline)
    if kind == "Custom Comments Package":
        params["comments"] = _lines(fk, few, fk.sentence, newline)
    if kind in ("Mentions", "Mentions with Hashtags"):
        params["usernames"] = _lines(fk, few, fk.user_name, newline)
    if kind == "Mentions with Hashtags":
        params["hashtags"] = _lines(fk, few, lambda: "#" + fk.word(), newline)
    if kind == "Mentions Custom List":
        params["usernames"] = _lines(fk, min(quantity, low + 20), fk.user_name, newline)
    if kind == "Mentions Hashtag":
        params["hashtag"] = "#" + fk.word()
    if kind in ("Mentions User Followers", "Comment Likes", "Comment Replies"):
        params["username"] = fk.user_name()
    if kind == "Mentions Media Likers":
        params["media"] = _link(fk)
    if kind == "Poll":
        params["answer_number"] = str(draw(st.integers(1, 5)))
    if kind == "Invites from Groups":
        params["groups"] = _lines(fk, few, _link_factory(fk), newline)
    if kind == "SEO":
        params["keywords"] = _lines(fk, few, fk.word, newline)
    if kind == "Special":
        params["list"] = _lines(fk, few, _link_factory(fk), newline)
    if kind == "Web Traffic":
        traffic = draw(st.integers(1, 3))
        params.update(country=fk.country_code(), device=str(draw(st.integers(1, 5))),
                      type_of_traffic=str(traffic))
        if traffic == 1:
            params["google_keyword"] = fk.word()
        if traffic == 2:
            params["referring_url"] = _link(fk)
    if kind == "Subscriptions":
        low_posts = draw(st.integers(low, high))
        params.update(username=fk.user_name(), min=str(low_posts),
                      max=str(draw(st.integers(low_posts, high))),
                      delay=str(draw(st.sampled_from(SUBSCRIPTION_DELAYS))))
        if draw(st.booleans()):
            params["posts"] = str(draw(st.integers(1, 5)))
        if draw(st.booleans()):
            expiry = date(2030, 1, 1) + timedelta(days=draw(st.integers(0, 3000)))
            params["expiry"] = expiry.strftime("%d/%m/%Y")
    return params


def _link_factory(fk: Faker) -> Callable[[], str]:
    return lambda: _link(fk)


def add_requests(
    catalogue: Sequence[Any], *, types: Sequence[str] | None = None,
    quantity_cap: int | None = None,
) -> st.SearchStrategy[Params]:
    """Valid `add` params for services of `catalogue` (optionally only `types`), quantities in
    the service's [min, max] (and at most `quantity_cap` when given, to stay affordable)."""
    services = [s for s in services_of(catalogue)
                if s.type in QUANTITY_RULES and (types is None or s.type in types)
                and s.min <= s.max]
    if not services:
        return st.nothing()
    return st.sampled_from(services).flatmap(lambda s: _add_for(s, quantity_cap))


# ---------------------------------------------------------------- the other actions
def _ids(ids: Sequence[int | str] | st.SearchStrategy[Any] | None) -> st.SearchStrategy[str]:
    if isinstance(ids, st.SearchStrategy):
        return ids.map(str)
    if ids:
        return st.one_of(st.sampled_from([str(i) for i in ids]), UNKNOWN_IDS.map(str))
    return UNKNOWN_IDS.map(str)


def _id_list(ids: Any, max_size: int) -> st.SearchStrategy[str]:
    separator = st.sampled_from([",", ", ", " ,"])
    return st.tuples(st.lists(_ids(ids), min_size=1, max_size=max_size, unique=True),
                     separator).map(lambda t: t[1].join(t[0]))


def services_requests() -> st.SearchStrategy[Params]:
    return st.just({"action": "services"})


def balance_requests() -> st.SearchStrategy[Params]:
    return st.just({"action": "balance"})


def status_requests(order_ids: Any = None) -> st.SearchStrategy[Params]:
    return _ids(order_ids).map(lambda i: {"action": "status", "order": i})


def multi_status_requests(order_ids: Any = None, max_size: int = 10) -> st.SearchStrategy[Params]:
    return _id_list(order_ids, max_size).map(lambda s: {"action": "status", "orders": s})


def refill_requests(order_ids: Any = None) -> st.SearchStrategy[Params]:
    return _ids(order_ids).map(lambda i: {"action": "refill", "order": i})


def multi_refill_requests(order_ids: Any = None, max_size: int = 10) -> st.SearchStrategy[Params]:
    return _id_list(order_ids, max_size).map(lambda s: {"action": "refill", "orders": s})


def refill_status_requests(refill_ids: Any = None) -> st.SearchStrategy[Params]:
    return _ids(refill_ids).map(lambda i: {"action": "refill_status", "refill": i})


def multi_refill_status_requests(refill_ids: Any = None,
                                 max_size: int = 10) -> st.SearchStrategy[Params]:
    return _id_list(refill_ids, max_size).map(lambda s: {"action": "refill_status", "refills": s})


def cancel_requests(order_ids: Any = None, max_size: int = 10) -> st.SearchStrategy[Params]:
    return _id_list(order_ids, max_size).map(lambda s: {"action": "cancel", "orders": s})


def read_only_requests(order_ids: Any = None, refill_ids: Any = None) -> st.SearchStrategy[Params]:
    """Requests that never spend: services, balance, status and refill_status forms."""
    return st.one_of(services_requests(), balance_requests(), status_requests(order_ids),
                     multi_status_requests(order_ids), refill_status_requests(refill_ids),
                     multi_refill_status_requests(refill_ids))


def requests(catalogue: Sequence[Any], order_ids: Any = None, refill_ids: Any = None,
             *, quantity_cap: int | None = None) -> st.SearchStrategy[Params]:
    """Any valid request of any action."""
    return st.one_of(read_only_requests(order_ids, refill_ids),
                     add_requests(catalogue, quantity_cap=quantity_cap),
                     refill_requests(order_ids), multi_refill_requests(order_ids),
                     cancel_requests(order_ids))


# ---------------------------------------------------------------- invalid requests
@dataclass(frozen=True)
class InvalidRequest:
    """A request that must fail with catalogue error `code` (`limit` for quantity texts).
    `cost_if_accepted` is what a panel that wrongly accepts it could charge (for budgets)."""

    name: str
    params: Params
    code: str
    limit: int | None = None
    cost_if_accepted: Decimal = Decimal(0)

    @property
    def spends(self) -> bool:
        return self.params.get("action") in ("add", "refill", "cancel")


def _with(base: st.SearchStrategy[Params], **changes: Any) -> st.SearchStrategy[Params]:
    return base.map(lambda p: {**p, **changes})


def invalid_requests(catalogue: Sequence[Any] = (), *,
                     spending: bool = True) -> st.SearchStrategy[InvalidRequest]:
    """One request per catalogue error of docs/PROTOCOL.md §4 the kit can provoke on any panel:
    bad key, bad action, unknown service, bad link, below min, above max, non-integer quantity,
    unknown order / refill ids, more than 100 ids. `spending=False` leaves out every `add`."""
    services = [s for s in services_of(catalogue) if s.type in QUANTITY_RULES]
    keyed = [s for s in services if QUANTITY_RULES[s.type] == "param" and s.min <= s.max]
    some_action = st.sampled_from(["services", "balance", "status", "refill_status"])
    choices: list[st.SearchStrategy[InvalidRequest]] = [
        st.builds(lambda a, k: InvalidRequest("bad key", {"key": k, "action": a}, "invalid_key"),
                  some_action, st.text("abcdef0123456789", min_size=0, max_size=24)
                  .map(lambda s: f"smmkit-invalid-{s}")),
        st.builds(lambda a: InvalidRequest("missing key", {"key": "", "action": a},
                                           "invalid_key"), some_action),
        st.builds(lambda a: InvalidRequest("bad action", {"action": a}, "incorrect_request"),
                  st.sampled_from(["", "smmkit_nope", "services2", "delete", "order"])),
        status_requests().map(lambda p: InvalidRequest("unknown order", p, "incorrect_order")),
        refill_status_requests().map(
            lambda p: InvalidRequest("unknown refill", p, "refill_not_found")),
        st.lists(UNKNOWN_IDS.map(str), min_size=MAX_IDS + 1, max_size=MAX_IDS + 20, unique=True)
        .map(lambda ids: InvalidRequest("more than 100 ids",
                                        {"action": "status", "orders": ",".join(ids)},
                                        "incorrect_request")),
    ]
    if spending:
        choices.append(refill_requests().map(
            lambda p: InvalidRequest("refill of unknown order", p, "incorrect_order")))
    if spending and keyed:
        # a panel that wrongly takes an unknown service can only price it by some service's
        # rate: the dearest one is its worst case
        rates = [s.rate for s in services if not s.package] or [s.rate for s in keyed]
        choices += _invalid_adds(keyed, max(s.service for s in services), rates)
    return st.one_of(choices)


def _invalid_adds(keyed: list[KitService], top: int,
                  rates: list[Decimal]) -> list[st.SearchStrategy[InvalidRequest]]:
    def service_add(s: KitService) -> st.SearchStrategy[tuple[KitService, Params]]:
        return _add_for(s, s.min).map(lambda p: (s, p))

    pick = st.sampled_from(keyed).flatmap(service_add)
    at_min = KitService.cheapest_charge
    below = [s for s in keyed if s.min >= 2]
    found = [
        pick.flatmap(lambda sp: st.integers(top + 1, top + 10_000).map(
            lambda n: InvalidRequest("unknown service", {**sp[1], "service": str(n)},
                                     "incorrect_service", cost_if_accepted=max(
                                         charge_for(rate, sp[0].min) for rate in rates)))),
        # Only the empty link: which malformed links a panel refuses is its policy (choice).
        pick.map(lambda sp: InvalidRequest("empty link", {**sp[1], "link": ""}, "incorrect_link",
                                           cost_if_accepted=at_min(sp[0]))),
        st.tuples(pick, st.sampled_from(["12.5", "abc", "1e3", "ten", "0x10"]))
        .map(lambda t: InvalidRequest("non-integer quantity", {**t[0][1], "quantity": t[1]},
                                      "incorrect_request",
                                      cost_if_accepted=charge_for(t[0][0].rate, 1000)
                                      .max(at_min(t[0][0])))),
        pick.flatmap(lambda sp: st.integers(sp[0].max + 1, sp[0].max * 2 + 1).map(
            lambda q: InvalidRequest("above max", {**sp[1], "quantity": str(q)}, "max_quantity",
                                     limit=sp[0].max, cost_if_accepted=charge_for(sp[0].rate, q)))),
    ]
    if below:
        found.append(st.sampled_from(below).flatmap(service_add).flatmap(
            lambda sp: st.integers(1, sp[0].min - 1).map(
                lambda q: InvalidRequest("below min", {**sp[1], "quantity": str(q)},
                                         "min_quantity", limit=sp[0].min,
                                         cost_if_accepted=charge_for(sp[0].rate, q)))))
    return found
