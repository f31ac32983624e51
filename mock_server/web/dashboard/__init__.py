"""The dashboard at /_dashboard/: see and steer the fake from a browser.

Server-rendered Jinja2 pages (autoescaped: whatever a client sent is shown as text) and one
small vendored script that refreshes marked regions in place; no build step, no CDN. Every page
sits behind the admin token (see `auth`); every state change is a POST form carrying the
session's CSRF token, answered with a redirect back (post/redirect/get) whose notice or error
names what happened. All calls into the core go through `actions`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from smmkit.mock_server.core.panel import Panel
from smmkit.mock_server.web.dashboard import actions
from smmkit.mock_server.web.dashboard.auth import (
    COOKIE,
    LOGIN_COOKIE,
    LOGIN_SECONDS,
    SESSION_SECONDS,
    Sessions,
    cookie_options,
    csrf_ok,
)
from werkzeug.wrappers import Response as WerkzeugResponse

PREFIX = "/_dashboard"
PUBLIC = {"dashboard.login", "dashboard.static"}
SECURITY_HEADERS = {
    # No inline script or style at all: client text can never run, even if mis-escaped.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _panel() -> Panel:
    return current_app.extensions["smmkit.panel"]


def _fragment() -> bool:
    return request.headers.get("X-Fragment") == "1"


def _page(template: str, fragment: str | None = None, **context: Any) -> Any:
    """The whole page, or only its refreshing part when the script asks for it."""
    name = fragment if fragment and _fragment() else template
    return render_template(f"dashboard/{name}", **context)


def _back(endpoint: str, error: str | None = None, notice: str | None = None,
          **values: Any) -> WerkzeugResponse:
    """303 to a dashboard page (never to a URL taken from the request) with a message."""
    message = {"error": error} if error else {"notice": notice} if notice else {}
    target = url_for(endpoint, **values)
    return redirect(target + ("?" + urlencode(message) if message else ""), code=303)


def _do(endpoint: str, notice: str, work: Any, **values: Any) -> WerkzeugResponse:
    """Run one state change; its refusal (or, as a last resort, a failure the core did not
    foresee: every operation is one transaction, so nothing half-happened) is shown."""
    try:
        work()
    except actions.REFUSED as exc:
        return _back(endpoint, error=str(exc), **values)
    except Exception as exc:  # noqa: BLE001 - a form answers with a message, never a 500
        current_app.logger.exception("dashboard: %s failed", request.path)
        return _back(endpoint, error=f"could not be done: {type(exc).__name__}: {exc}", **values)
    return _back(endpoint, notice=notice, **values)


def _int_arg(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 18 else None


def dashboard_blueprint(token: str) -> Blueprint:
    bp = Blueprint("dashboard", __name__, url_prefix=PREFIX, template_folder="templates",
                   static_folder="static", static_url_path="/static")
    sessions = Sessions(token)

    @bp.before_request
    def require_session() -> Any:
        g.session = sessions.read(request.cookies.get(COOKIE))
        if request.endpoint in PUBLIC:
            return None
        if g.session is None:
            if _fragment() or request.method != "GET":
                return Response("Sign in first.", 401, {"Content-Type": "text/plain"})
            return redirect(url_for("dashboard.login"), code=303)
        if request.method == "POST" and not csrf_ok(g.session, request.form.get("csrf")):
            return Response("Refused: this form's CSRF token is missing or wrong. Reload the "
                            "page and try again.", 403, {"Content-Type": "text/plain"})
        return None

    @bp.after_request
    def secure(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @bp.context_processor
    def common() -> dict[str, Any]:
        session = getattr(g, "session", None)
        return {"csrf": session["csrf"] if session else "", "iso": actions.iso,
                "notice": request.args.get("notice", "")[:500],
                "error": request.args.get("error", "")[:500]}

    # ------------------------------------------------------------ sign-in

    @bp.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "GET":
            return _login_page()
        pre = sessions.read(request.cookies.get(LOGIN_COOKIE), login=True)
        if not csrf_ok(pre, request.form.get("csrf")):
            return _login_page("The sign-in form expired; try again.", 403)
        if not sessions.token_matches(request.form.get("token", "")):
            return _login_page("Wrong admin token.", 401)
        response = redirect(url_for("dashboard.overview"), code=303)
        response.set_cookie(COOKIE, sessions.new_session(), **cookie_options(SESSION_SECONDS))
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    def _login_page(problem: str = "", status: int = 200) -> Response:
        cookie, csrf = sessions.new_login()
        response = make_response(render_template("dashboard/login.html", problem=problem,
                                                 login_csrf=csrf), status)
        response.set_cookie(LOGIN_COOKIE, cookie, **cookie_options(LOGIN_SECONDS))
        return response

    @bp.post("/logout")
    def logout() -> Any:
        response = redirect(url_for("dashboard.login"), code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    # ------------------------------------------------------------ overview and clock

    @bp.get("/")
    def overview() -> Any:
        panel = _panel()
        return _page("overview.html", "_overview.html", clock=actions.clock(panel),
                     counts=actions.status_counts(panel), accounts=actions.accounts(panel))

    @bp.post("/clock/<verb>")
    def clock(verb: str) -> Any:
        value = request.form.get("value", "")
        return _do("dashboard.overview", f"clock: {verb} {value}".strip(),
                   lambda: actions.clock_change(_panel(), verb, value))

    # ------------------------------------------------------------ accounts

    @bp.get("/accounts")
    def accounts() -> Any:
        return _page("accounts.html", "_accounts.html", accounts=actions.accounts(_panel()))

    @bp.post("/accounts")
    def account_create() -> Any:
        form = request.form
        return _do("dashboard.accounts", "account created", lambda: actions.create_account(
            _panel(), form.get("key", ""), form.get("balance", ""), form.get("currency", "")))

    @bp.post("/accounts/top-up")
    def account_top_up() -> Any:
        form = request.form
        return _do("dashboard.accounts", "topped up", lambda: actions.top_up(
            _panel(), form.get("key", ""), form.get("amount", "")))

    @bp.post("/accounts/enabled")
    def account_enabled() -> Any:
        enabled = request.form.get("enabled") == "1"
        return _do("dashboard.accounts", "account enabled" if enabled else "account disabled",
                   lambda: actions.set_enabled(_panel(), request.form.get("key", ""), enabled))

    # ------------------------------------------------------------ orders

    @bp.get("/orders")
    def orders() -> Any:
        args = {name: request.args.get(name, "")[:300] for name in ("key", "status", "service")}
        try:
            found = actions.orders(_panel(), key=args["key"], status=args["status"],
                                   service=args["service"])
            problem = ""
        except actions.REFUSED as exc:
            found, problem = [], str(exc)
        return _page("orders.html", "_orders.html", orders=found, filters=args,
                     statuses=actions.ORDER_STATUSES, problem=problem,
                     query=urlencode({k: v for k, v in args.items() if v}))

    @bp.get("/orders/<int:order_id>")
    def order(order_id: int) -> Any:
        panel = _panel()
        try:
            found = actions.order(panel, order_id)
        except actions.REFUSED as exc:
            return _page("missing.html", problem=str(exc)), 404
        return _page("order.html", "_order.html", order=found,
                     timeline=actions.timeline(panel, found), moves=actions.legal_moves(found),
                     outcomes=actions.legal_outcomes(found))

    @bp.post("/orders/<int:order_id>/status")
    def order_status(order_id: int) -> Any:
        status = request.form.get("status", "")
        return _do("dashboard.order", f"order {order_id} forced to {status}",
                   lambda: actions.force_status(_panel(), order_id, status,
                                                request.form.get("remains", "")),
                   order_id=order_id)

    @bp.post("/orders/<int:order_id>/outcome")
    def order_outcome(order_id: int) -> Any:
        outcome = request.form.get("outcome", "")
        return _do("dashboard.order", f"order {order_id} will end: {outcome}",
                   lambda: actions.force_outcome(_panel(), order_id, outcome),
                   order_id=order_id)

    # ------------------------------------------------------------ refills and cancels

    @bp.get("/refills")
    def refills() -> Any:
        panel = _panel()
        return _page("refills.html", "_refills.html", refills=actions.refills(panel),
                     canceled=actions.canceled_orders(panel))

    @bp.post("/refills/<int:refill_id>/status")
    def refill_status(refill_id: int) -> Any:
        status = request.form.get("status", "")
        return _do("dashboard.refills", f"refill {refill_id} forced to {status}",
                   lambda: actions.force_refill(_panel(), refill_id, status))

    # ------------------------------------------------------------ catalogue

    @bp.get("/catalogue")
    def catalogue() -> Any:
        return _page("catalogue.html", services=actions.services(_panel()))

    @bp.get("/catalogue/<int:service_id>")
    def service(service_id: int) -> Any:
        try:
            found = actions.service(_panel(), service_id)
        except actions.REFUSED as exc:
            return _page("missing.html", problem=str(exc)), 404
        return _page("service.html", service=found, fields=actions.SERVICE_FIELDS)

    @bp.post("/catalogue/<int:service_id>")
    def service_edit(service_id: int) -> Any:
        form = {name: request.form.get(name, "") for name in request.form}
        return _do("dashboard.service", f"service {service_id} saved",
                   lambda: actions.edit_service(_panel(), service_id, form),
                   service_id=service_id)

    # ------------------------------------------------------------ faults

    def _book() -> Any:
        return current_app.extensions["smmkit.faults"]

    @bp.get("/faults")
    def faults() -> Any:
        return _page("faults.html", "_faults.html", faults=actions.faults(_book()),
                     kinds=actions.FAULT_KINDS, fault_actions=actions.FAULT_ACTIONS,
                     error_codes=actions.FAULT_ERRORS)

    @bp.post("/faults")
    def fault_arm() -> Any:
        form = {name: request.form.get(name, "") for name in request.form}
        return _do("dashboard.faults", f"fault armed: {form.get('kind', '')}",
                   lambda: actions.arm_fault(_book(), form))

    @bp.post("/faults/clear")
    def fault_clear() -> Any:
        raw = request.form.get("fault", "")
        fault_id = _int_arg(raw)
        if raw and fault_id is None:  # a bad id must not clear every fault
            return _back("dashboard.faults", error=f"unknown fault {raw[:40]!r}")
        cleared = actions.clear_faults(_book(), fault_id)
        return _back("dashboard.faults", notice=f"{cleared} fault(s) cleared")

    # ------------------------------------------------------------ journal

    @bp.get("/journal")
    def journal() -> Any:
        args = {name: request.args.get(name, "")[:300]
                for name in ("action", "fingerprint", "verdict")}
        entries = actions.journal(current_app.extensions["smmkit.journal"],
                                  action=args["action"], fingerprint=args["fingerprint"],
                                  verdict=args["verdict"])
        return _page("journal.html", "_journal.html", entries=entries, filters=args,
                     journal_on=current_app.extensions["smmkit.journal"] is not None,
                     query=urlencode({k: v for k, v in args.items() if v}),
                     fault_actions=actions.FAULT_ACTIONS)

    return bp
