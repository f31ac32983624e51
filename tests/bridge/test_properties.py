"""Property tests over generated catalogues and dialects, all in-process (WSGI, no port):
the fake, the kit and the diff agree about every dialect the format can express."""

from __future__ import annotations

import json
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smmkit.contract_tests.bridge.diff import run_diff
from smmkit.contract_tests.bridge.infer import infer_dialect
from smmkit.contract_tests.bridge.judge import Judge
from smmkit.contract_tests.bridge.pull import to_catalog
from smmkit.contract_tests.targets import WsgiTarget
from smmkit.mock_server import Config, build_panel, create_app
from smmkit.mock_server.core.config import DEMO_KEY
from smmkit.schemas.dialects import BUILTIN, builtin, schema

from smmkit import schemas

CODES = list(schema()["properties"]["errors"]["properties"])
STATUSES = list(schema()["properties"]["statuses"]["properties"])
TYPED = list(schema()["properties"]["types"]["properties"])
SETTINGS = settings(max_examples=10, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def fake(tmp: Path, dialect: str = "perfectpanel", catalog: list[Any] | None = None) -> Any:
    path = None
    if catalog is not None:
        path = tmp / "catalog.json"
        path.write_text(json.dumps(catalog))
    config = Config(db=":memory:", clock="manual", dialect=dialect, journal_limit=0,
                    catalog=str(path) if path else None)
    return WsgiTarget(create_app(build_panel(config), config=config), DEMO_KEY)


rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("500"), places=4,
                    allow_nan=False, allow_infinity=False).map(str)


@st.composite
def catalogues(draw: Any) -> list[dict[str, Any]]:
    ids = draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=8, unique=True))
    items = []
    for sid in ids:
        low = draw(st.integers(0, 1000))
        items.append({"service": sid, "name": draw(st.text(string.printable, min_size=1, max_size=30)),
                      "type": draw(st.sampled_from(schemas.SERVICE_TYPES)),
                      "category": draw(st.text(min_size=1, max_size=20)), "rate": draw(rates),
                      "min": low, "max": draw(st.integers(low, 10**6)),
                      "refill": draw(st.booleans()), "cancel": draw(st.booleans())})
    return items


@SETTINGS
@given(catalogues())
def test_any_catalogue_round_trips_through_pull(tmp_path: Path,
                                                catalog: list[dict[str, Any]]) -> None:
    source = fake(tmp_path, catalog=catalog).send({"action": "services"})
    answer = json.loads(source.body, parse_float=Decimal)
    pulled = to_catalog(answer)
    assert not pulled.skipped
    replay = fake(tmp_path, catalog=pulled.services).send({"action": "services"})
    assert replay.body == source.body


def spelling(status: str) -> st.SearchStrategy[str]:
    return st.sampled_from([status.lower(), status.upper(), status.replace(" ", "_"),
                            status + "ed" if status == "Cancel" else status.title()])


@st.composite
def dialects(draw: Any) -> dict[str, Any]:
    codes = draw(st.lists(st.sampled_from(CODES), unique=True))
    errors = {code: draw(st.sampled_from([f"{code} text", f"E-{code}", builtin(
        "raw-keys").errors[code]])) for code in codes}
    for code in ("min_quantity", "max_quantity"):
        if code in errors and draw(st.booleans()):
            errors[code] = f"{code}: {{limit}} is the limit"
    status_currency = draw(st.booleans())
    statuses = {s: draw(spelling(s)) for s in draw(st.lists(st.sampled_from(STATUSES),
                                                            unique=True))}
    statuses = {k: v for k, v in statuses.items() if v not in STATUSES or v == k}
    return {
        "name": "generated", "extends": draw(st.sampled_from(BUILTIN)), "errors": errors,
        "money": {"as": draw(st.sampled_from(["string", "number"])),
                  "decimals": draw(st.integers(2, 8)), "trim_zeros": draw(st.booleans())},
        "rate": {"as": draw(st.sampled_from(["string", "number"]))},
        "currency": {"status": status_currency, "balance": draw(st.booleans()),
                     "balance_value": None if status_currency else draw(
                         st.sampled_from([None, "EUR"]))},
        "services": {"cancel": draw(st.booleans()), "dripfeed": draw(st.booleans())},
        "statuses": statuses,
        "types": {t: draw(st.sampled_from(["integer", "string"]))
                  for t in draw(st.lists(st.sampled_from(TYPED), unique=True))},
    }


def script(target: Any) -> list[Any]:
    sent = [target.send({"action": "services"}), target.send({"action": "balance"}),
            target.send({"action": "add", "service": "1", "quantity": "77",
                         "link": "https://instagram.com/p"})]
    order = str(sent[-1].json()["order"])
    sent += [target.send({"action": "status", "order": order}),
             target.send({"action": "status", "orders": f"{order},99"}),
             target.send({"action": "cancel", "orders": order}),
             target.send({"action": "status", "order": order}),
             target.send({"action": "refill", "order": order}),
             target.send({"action": "refill_status", "refills": "5,6"}),
             target.send({"action": "add", "service": "1", "quantity": "1",
                          "link": "https://instagram.com/q"}),
             target.send({"action": "balance", "key": "nope"}),
             target.send({"action": "balance"})]
    return sent


@SETTINGS
@given(dialects())
def test_the_kit_finds_the_fake_conforming_in_any_dialect(tmp_path: Path,
                                                          doc: dict[str, Any]) -> None:
    path = tmp_path / "generated.json"
    path.write_text(json.dumps(doc))
    judge = Judge(str(path))
    found = [(e.action, f["message"]) for e in script(fake(tmp_path, str(path)))
             for f in judge.judge(e).findings if f["severity"] == "violation"]
    assert found == []


@SETTINGS
@given(dialects())
def test_diff_learns_any_dialect_the_read_only_script_can_see(tmp_path: Path,
                                                              doc: dict[str, Any]) -> None:
    path = tmp_path / "generated.json"
    path.write_text(json.dumps(doc))
    live = fake(tmp_path, str(path))
    learned = infer_dialect(run_diff(live, key=DEMO_KEY).pairs)
    again = run_diff(live, key=DEMO_KEY, dialect=_write(tmp_path, learned))
    assert again.score == 1.0, [str(d) for p in again.pairs for d in p.differences]


def _write(tmp: Path, doc: dict[str, Any]) -> str:
    path = tmp / "learned.json"
    path.write_text(json.dumps(doc))
    return str(path)
