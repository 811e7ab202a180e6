"""Who a request submits as, and the quotas that apply: the site defaults
(``GRISTMILL_QUOTA_*``, ``GRISTMILL_ANONYMOUS_QUOTA_*``) and a user's own, set by staff in the
admin (:class:`~gristmill.server.models.Quota`, each empty field taking the default).

A signed-in caller submits as ``user:<id>``; an anonymous one as ``address:<client address>``
(the address the server saw: behind a proxy, the proxy's, unless the ASGI server is told to
trust its forwarded headers).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from gristmill.app.quotas import MB, address_submitter, user_submitter
from gristmill.server.access import Caller
from gristmill.server.conf import current_settings
from gristmill.store.base import Store
from gristmill.store.records import QuotaLimits, QuotaUsage


@dataclass(frozen=True)
class Account:
    """Who submits, and within which limits (``None``: no quota at all)."""

    submitter: str
    limits: QuotaLimits | None


def client_address(request: HttpRequest) -> str:
    """The client's address, as the server saw it."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def account_of(request: HttpRequest, caller: Caller) -> Account:
    """The submitter and quotas of ``caller`` making ``request``."""
    settings = current_settings()
    if caller.user_id is None:
        limits = QuotaLimits(
            concurrent=settings.anonymous_quota_concurrent,
            per_day=settings.anonymous_quota_runs_per_day,
            storage_bytes=_bytes(settings.anonymous_quota_storage_mb),
        )
        return Account(address_submitter(client_address(request)), _any(limits))
    from gristmill.server.models import Quota

    concurrent = settings.quota_concurrent
    per_day = settings.quota_runs_per_day
    storage_mb = settings.quota_storage_mb
    own = Quota.objects.filter(user_id=caller.user_id).first()
    submitter = user_submitter(caller.user_id)
    if own is not None:
        if own.unlimited:
            return Account(submitter, None)
        concurrent = own.concurrent if own.concurrent is not None else concurrent
        per_day = own.runs_per_day if own.runs_per_day is not None else per_day
        storage_mb = own.storage_mb if own.storage_mb is not None else storage_mb
    limits = QuotaLimits(concurrent=concurrent, per_day=per_day, storage_bytes=_bytes(storage_mb))
    return Account(submitter, _any(limits))


def _bytes(megabytes: int | None) -> int | None:
    return None if megabytes is None else megabytes * MB


def _any(limits: QuotaLimits) -> QuotaLimits | None:
    unset = limits.concurrent is None and limits.per_day is None and limits.storage_bytes is None
    return None if unset else limits


@dataclass(frozen=True)
class UsageReport:
    """A caller's usage beside its quotas, for the usage page and API."""

    submitter: str
    usage: QuotaUsage
    limits: QuotaLimits | None


def usage_of(request: HttpRequest, caller: Caller, store: Store) -> UsageReport:
    account = account_of(request, caller)
    return UsageReport(account.submitter, store.quota_usage(account.submitter), account.limits)
