"""API tokens: keys that let a program act as its user on the REST API.

A key looks like ``gm_`` followed by 43 random URL-safe characters. Only its SHA-256 digest is
stored, so a leaked database does not leak working keys; the key itself is shown once, when it
is made (``gristmill token create USER``, or ``POST /api/v1/tokens`` while signed in).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model

from gristmill.server.models import ApiToken

PREFIX = "gm_"
_TOUCH_EVERY = timedelta(minutes=5)
"""How stale ``last_used_at`` may be: refreshing it on every request would cost a write each."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_token(user_id: int, name: str) -> tuple[ApiToken, str]:
    """Make a token for the user ``user_id``; return it and its key (which is not stored)."""
    key = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user_id=user_id,
        name=name[:100],
        prefix=key[:10],
        digest=_digest(key),
        created_at=datetime.now(UTC),
    )
    return token, key


def user_for_key(key: str) -> Any | None:
    """The active user whose token ``key`` is, or ``None`` for an unknown or revoked key."""
    if not key.startswith(PREFIX) or len(key) > 200:
        return None
    try:
        token = ApiToken.objects.select_related("user").get(digest=_digest(key))
    except ApiToken.DoesNotExist:
        return None
    if not token.user.is_active:
        return None
    now = datetime.now(UTC)
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def create_for_username(username: str, name: str) -> str:
    """Make a token for the user called ``username`` and return its key.

    Raises :class:`LookupError` naming the user if there is no such user.
    """
    model = get_user_model()
    try:
        user = model.objects.get(**{model.USERNAME_FIELD: username})
    except model.DoesNotExist:
        raise LookupError(f"there is no user named {username!r}") from None
    return create_token(user.pk, name)[1]
