"""Who is calling the API: an API token, else the browser's session, else nobody.

Every operation is open to anonymous callers at the door; what a caller may see and use is
decided by :mod:`gristmill.server.access`. A session is a cookie the browser sends by itself,
so a session caller's unsafe requests (POST, DELETE) must carry the CSRF token
(``X-CSRFToken``); a token caller's need not, since no browser adds that header on its own.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.utils import check_csrf

from gristmill.server.access import Caller, session_caller
from gristmill.server.api.errors import ApiError
from gristmill.server.tokens import user_for_key

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class CallerAuth(HttpBearer):
    """Identify the caller (see the module's docstring); never refuses an anonymous caller."""

    def __call__(self, request: HttpRequest) -> Caller:
        header = request.headers.get("Authorization")
        if header is not None:
            return self._token_caller(header)
        caller = session_caller(request)
        unsafe = request.method not in _SAFE_METHODS
        if caller.signed_in and unsafe and check_csrf(request) is not None:
            raise ApiError(
                403,
                "the CSRF check failed: a signed-in browser must send the csrftoken "
                "cookie's value in the X-CSRFToken header (programs: use an API token)",
            )
        return caller

    def authenticate(self, request: HttpRequest, token: str) -> Caller | None:
        return self._token_caller(f"Bearer {token}")

    @staticmethod
    def _token_caller(header: str) -> Caller:
        scheme, _, key = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "the Authorization header must be 'Bearer <API token>'")
        user = user_for_key(key.strip())
        if user is None:
            raise ApiError(401, "the API token is not valid (unknown or revoked)")
        return Caller(user.pk, user.get_username(), bool(user.is_staff), bool(user.is_superuser))


def caller_of(request: HttpRequest) -> Caller:
    """The caller :class:`CallerAuth` identified for this request."""
    caller = getattr(request, "auth", None)
    return caller if isinstance(caller, Caller) else session_caller(request)
