"""Everything the fake sends validates against the contract: every action, every service type,
every error — strictly in each dialect, and tolerantly (never a violation) in robustness mode."""

from __future__ import annotations

import pytest
import requests
from smmkit.mock_server.core.catalog import TYPE_RULES
from smmkit.mock_server.core.config import DEMO_KEY, Config
from smmkit.mock_server.serving.server import start_background

from smmkit import schemas

LINK = "https://instagram.com/p/conform{}"
TYPE_PARAMS = {
    "Default": {"quantity": "{min}"},
    "Package": {},
    "Custom Comments": {"comments": "nice\r\ngreat\nwow\nlove it\nsuper"},
    "Custom Comments Package": {"comments": "one\ntwo"},
    "Mentions": {"quantity": "{min}", "usernames": "alice\nbob"},
    "Mentions with Hashtags": {"quantity": "{min}", "usernames": "alice\nbob",
                               "hashtags": "#a\n#b"},
    "Mentions Custom List": {"usernames": "\n".join(f"user{i}" for i in range(12))},
    "Mentions Hashtag": {"quantity": "{min}", "hashtag": "#summer"},
    "Mentions User Followers": {"quantity": "{min}", "username": "celebrity"},
    "Mentions Media Likers": {"quantity": "{min}", "media": "https://instagram.com/p/media1"},
    "Comment Likes": {"quantity": "{min}", "username": "commenter"},
    "Comment Replies": {"username": "commenter", "comments": "a\nb\nc\nd\ne"},
    "Poll": {"quantity": "{min}", "answer_number": "2"},
    "Invites from Groups": {"quantity": "{min}", "groups": "group1\ngroup2"},
    "Subscriptions": {"username": "someone", "min": "{min}", "max": "{min}", "delay": "30",
                      "posts": "2", "expiry": "31/12/2026"},
    "Web Traffic": {"quantity": "{min}", "country": "US", "device": "1", "type_of_traffic": "1",
                    "google_keyword": "buy followers"},
    "SEO": {"quantity": "{min}", "keywords": "smm panel\ncheap likes"},
    "Special": {"quantity": "{min}", "list": "video1\nvideo2", "suggest": "v3", "search": "k"},
}


def add_params(service: dict, n: int) -> dict[str, str]:
    params = {k: v.format(min=service["min"]) for k, v in TYPE_PARAMS[service["type"]].items()}
    params.update(action="add", service=str(service["service"]), link=LINK.format(n))
    if service["type"] == "Subscriptions":
        params.pop("link")
    return params


def exchanges(running, key: str) -> list[tuple[str, dict[str, str], object]]:
    """Drive the fake through every action, type and error; (action, params, body) each."""
    seen = []

    def call(as_key: str = key, **params: str) -> object:
        body = requests.post(running.api_url, data={"key": as_key, **params}, timeout=10).json()
        seen.append((params.get("action", ""), params, body))
        return body

    running.panel.create_account("conform-poor", "0.01")

    services = call(action="services")
    ids = []
    for n, service in enumerate(services):
        body = call(**add_params(service, n))
        assert "order" in body, (service["type"], body)
        ids.append(body["order"])
    joined = ",".join(map(str, ids[:100]))
    call(action="status", order=str(ids[0]))
    call(action="status", orders=joined + ",999999")
    call(action="balance")
    running.panel.advance(7 * 3600)
    call(action="status", orders=joined)
    refillable = [i for i, s in zip(ids, services, strict=False) if s["refill"]]
    refill = call(action="refill", order=str(refillable[0]))
    call(action="refill", orders=",".join(map(str, refillable[1:4])) + ",999999")
    call(action="refill_status", refill=refill["refill"])
    call(action="refill_status", refills=f"{refill['refill']},424242")
    fresh = call(action="add", service="1", link=LINK.format("fresh"), quantity="100")["order"]
    call(action="cancel", orders=f"{fresh},{ids[1]},999999")
    call(action="cancel", order=str(fresh))
    # every catalogue error
    call(action="nope")
    call(action="add", service="99999", link=LINK.format("x"), quantity="100")
    call(action="add", service="1", link="not a link", quantity="100")
    call(action="add", service="1", link=LINK.format("x"), quantity="1")
    call(action="add", service="1", link=LINK.format("x"), quantity="99999999")
    call(action="add", service="1", link=LINK.format("x"), quantity="ten")
    call("conform-poor", action="add", service="1", link=LINK.format("y"), quantity="100")
    call(action="add", service="1", link=LINK.format("fresh"), quantity="100")  # active link
    call(action="status", order="999999")
    call(action="refill", order="999999")
    call(action="refill", order=str(ids[1]))  # service without refill
    call(action="refill", order=str(refillable[0]))  # refill in flight
    call(action="refill_status", refill="424242")
    call(action="status", orders=",".join(str(i) for i in range(1, 102)))
    requests.post(running.api_url, data={"key": "wrong", "action": "balance"})
    return seen


@pytest.mark.parametrize("dialect,schema_dialect", [
    ("perfectpanel", "perfectpanel"), ("raw-keys", "perfectpanel"), ("seed", "seed")])
def test_every_answer_of_the_fake_is_strictly_valid(dialect, schema_dialect):
    with start_background(Config(port=0, clock="manual", dialect=dialect)) as running:
        seen = exchanges(running, DEMO_KEY)
    types = {p.get("service") for a, p, b in seen if a == "add" and "order" in b}
    assert len(types) >= len(TYPE_RULES)  # every service type was ordered
    errors = {b["error"] for a, p, b in seen if isinstance(b, dict) and "error" in b}
    assert len(errors) >= 11
    for action, params, body in seen:
        form = schemas.response_form(action, params) if action != "nope" else "single"
        verdict = schemas.check_response(action if action != "nope" else "balance", form, body,
                                         dialect=schema_dialect)
        assert verdict.kind == "conforms", (action, params, body, verdict.strict_errors)


def test_robustness_mode_is_tolerant_valid_and_really_awkward():
    with start_background(Config(port=0, clock="manual", robust=True, seed=3)) as running:
        seen = exchanges(running, DEMO_KEY)
    kinds = []
    for action, params, body in seen:
        if action == "nope":
            continue
        verdict = schemas.check_response(action, schemas.response_form(action, params), body)
        assert verdict.kind != "violation", (action, body, verdict.tolerant_errors)
        kinds.append(verdict.kind)
    assert kinds.count("deviation") > len(kinds) // 3


def test_robustness_mode_is_seeded():
    bodies = []
    for _ in range(2):
        with start_background(Config(port=0, clock="manual", robust=True, seed=5)) as running:
            bodies.append([requests.post(running.api_url, data={
                "key": DEMO_KEY, "action": a}).content for a in ("services", "balance") * 3])
    assert bodies[0] == bodies[1]
