"""The caller's account: what it uses of its quotas (signed in, or anonymous by client
address)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.http import HttpRequest
from ninja import Router
from pydantic import Field

from gristmill.app.service import default_service
from gristmill.server.api.auth import caller_of
from gristmill.server.api.schemas import ErrorOut, Out
from gristmill.server.quotas import usage_of

router = Router(tags=["account"])
_DAY = timedelta(days=1)


class Quotas(Out):
    concurrent: int | None = Field(description="Runs queued or running at once; null: no quota.")
    runs_per_day: int | None = Field(description="Runs in any 24 hours; null: no quota.")
    storage_bytes: int | None = Field(
        description="Bytes of inputs and outputs of unexpired runs; null: no quota."
    )


class Usage(Out):
    submitter: str = Field(
        description="Who the usage is counted for: user:<id>, or address:<client address>."
    )
    concurrent: int = Field(description="Runs queued or running now.")
    runs_today: int = Field(description="Runs submitted in the last 24 hours.")
    storage_bytes: int = Field(description="Bytes of inputs and outputs of unexpired runs.")
    next_run_frees_at: datetime | None = Field(
        description="When the oldest run of the last 24 hours leaves the daily count."
    )
    next_expiry_at: datetime | None = Field(
        description="When the first unexpired run expires (its files are removed)."
    )
    quotas: Quotas


@router.get("/usage", response={200: Usage, 503: ErrorOut})
def usage(request: HttpRequest) -> Usage:
    """What the caller uses of its quotas, beside them (anonymous callers by client
    address)."""
    report = usage_of(request, caller_of(request), default_service().store)
    limits = report.limits
    used = report.usage
    return Usage(
        submitter=report.submitter,
        concurrent=used.concurrent,
        runs_today=used.runs_today,
        storage_bytes=used.storage_bytes,
        next_run_frees_at=used.oldest_today and used.oldest_today + _DAY,
        next_expiry_at=used.next_expiry,
        quotas=Quotas(
            concurrent=limits.concurrent if limits else None,
            runs_per_day=limits.per_day if limits else None,
            storage_bytes=limits.storage_bytes if limits else None,
        ),
    )
