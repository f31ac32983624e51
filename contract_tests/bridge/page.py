"""The proxy's own page, `/_proxy/`: every exchange it judged, newest first, live.

A developer points their client at the proxy and keeps this page open beside it. It is
server-rendered (Jinja2, autoescaped: text from the upstream never becomes markup) and filtered
by the query string (`?verdict=violation&action=add`), so a filtered view is a link. A small
script re-fetches the list region every 1.5 s with an `X-Fragment` header, the way the fake's
dashboard refreshes its regions; without script the page is still complete, and reloads show
what is new.

The key never reaches the page: exchanges hold it redacted already, and every string of every
entry, then the whole rendered page, goes through the proxy's `Scrubber` (a panel may echo the
key in a body or a header).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from smmkit.contract_tests.bridge.judge import VERDICTS
from smmkit.contract_tests.bridge.recorder import Scrubber

if TYPE_CHECKING:
    from smmkit.contract_tests.bridge.proxy import Proxy

REFRESH_MS = 1500
ANY = ""  # the filter value that keeps every exchange
STATIC = {"proxy_page.js": "text/javascript; charset=utf-8",
          "proxy_page.css": "text/css; charset=utf-8"}


class FilterError(ValueError):
    """A filter the page cannot apply (an unknown verdict); the message says which."""


@dataclass(frozen=True)
class Filters:
    verdict: str = ANY
    action: str = ANY

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Filters:
        verdict = str(args.get("verdict", ANY)).strip()
        if verdict and verdict not in VERDICTS:
            raise FilterError(f"unknown verdict {verdict!r}; one of {', '.join(VERDICTS)}")
        return cls(verdict, str(args.get("action", ANY)).strip()[:64])

    def keeps(self, entry: Mapping[str, Any]) -> bool:
        return ((not self.verdict or entry["verdict"] == self.verdict)
                and (not self.action or entry["action"] == self.action))


def scrub_data(value: Any, scrub: Scrubber) -> Any:
    """`value` (JSON-like data) with every key the proxy has seen replaced in every string."""
    if isinstance(value, str):
        return scrub.text(value)
    if isinstance(value, Mapping):
        return {scrub.text(str(k)): scrub_data(v, scrub) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_data(v, scrub) for v in value]
    return value


@functools.cache
def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("smmkit.contract_tests.bridge", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["clock"] = lambda at: time.strftime("%H:%M:%S", time.localtime(at))
    env.filters["ms"] = lambda seconds: f"{seconds * 1000:.0f} ms"
    return env


def render(entries: Iterable[Mapping[str, Any]], filters: Filters, *, scrub: Scrubber,
           upstream: str, dialect: str, spent: str | None, budget: str | None,
           fragment: bool = False) -> str:
    """The page (or, with `fragment`, only its live region) for the journal's `entries`
    (as `Entry.to_json`, oldest first)."""
    everything = [scrub_data(dict(e), scrub) for e in entries]
    counts = {verdict: sum(e["verdict"] == verdict for e in everything) for verdict in VERDICTS}
    shown = [e for e in reversed(everything) if filters.keeps(e)]
    context = {"entries": shown, "total": len(everything), "counts": counts,
               "filters": filters, "verdicts": VERDICTS, "refresh_ms": REFRESH_MS,
               "actions": sorted({e["action"] for e in everything if e["action"]} | (
                   {filters.action} if filters.action else set())),
               "upstream": scrub.text(upstream), "dialect": dialect, "spent": spent,
               "budget": budget}
    template = "proxy_region.html.j2" if fragment else "proxy_page.html.j2"
    return scrub.text(_environment().get_template(template).render(**context))


def static_file(name: str) -> tuple[bytes, str] | None:
    """The page's script or stylesheet (shipped in the package: the page works offline)."""
    if name not in STATIC:
        return None
    data = resources.files(__package__).joinpath("static").joinpath(name).read_bytes()
    return data, STATIC[name]


def respond(proxy: Proxy, request: Any) -> Any:
    """`/_proxy/` for `proxy`: the page, or with `X-Fragment` only its live region."""
    from werkzeug.wrappers import Response

    try:
        filters = Filters.from_args(request.args)
    except FilterError as exc:
        return Response(str(exc), 400, content_type="text/plain; charset=utf-8")
    budget = proxy.budget
    html = render(proxy.entries(), filters, scrub=proxy.scrub, upstream=proxy.config.upstream,
                  dialect=proxy.judge.current, spent=str(budget.spent) if budget else None,
                  budget=str(budget.limit) if budget else None,
                  fragment=bool(request.headers.get("X-Fragment")))
    response = Response(html, 200, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    # The page runs only its own script and loads nothing from anywhere else.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    return response
