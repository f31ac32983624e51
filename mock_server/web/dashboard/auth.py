"""Dashboard sign-in: the admin token buys a signed session cookie; forms carry a CSRF token.

The session cookie is HttpOnly, SameSite=Strict and scoped to /_dashboard. It is signed with a
key derived from the admin token, so every worker process (each builds its own app under
granian) accepts it, and a new token signs everyone out. The session holds a random CSRF
token that every state-changing form sends back; a POST without it is refused. The sign-in
form itself is protected the same way by a short-lived pre-session cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "smmkit_dashboard"
LOGIN_COOKIE = "smmkit_dashboard_login"
PATH = "/_dashboard"
SESSION_SECONDS = 7 * 86400  # a tool kept open all week
LOGIN_SECONDS = 3600


class Sessions:
    def __init__(self, token: str) -> None:
        self._token = token.encode("utf-8", "surrogatepass")
        secret = hmac.new(self._token, b"smmkit dashboard session", hashlib.sha256).hexdigest()
        self._signer = URLSafeTimedSerializer(secret, salt="smmkit-dashboard")

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), self._token)

    def new_session(self) -> str:
        return self._signer.dumps({"csrf": secrets.token_urlsafe(24)})

    def read(self, cookie: str | None, *, login: bool = False) -> dict[str, Any] | None:
        """The session (or, with login=True, the pre-session) a cookie holds, if it is valid."""
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=LOGIN_SECONDS if login else SESSION_SECONDS)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        return data if bool(data.get("login")) == login else None  # a pre-session is no session

    def new_login(self) -> tuple[str, str]:
        """A pre-session cookie and the CSRF token the sign-in form must send with it."""
        csrf = secrets.token_urlsafe(24)
        return self._signer.dumps({"csrf": csrf, "login": True}), csrf


def csrf_ok(session: dict[str, Any] | None, given: str | None) -> bool:
    if session is None or not given:
        return False
    return hmac.compare_digest(session["csrf"].encode(), given.encode("utf-8", "surrogatepass"))


def cookie_options(max_age: int) -> dict[str, Any]:
    return {"max_age": max_age, "path": PATH, "httponly": True, "samesite": "Strict"}
