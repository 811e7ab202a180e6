"""The runs list: a signed-in user's own runs, or every run for staff, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator

from gristmill.server.access import Caller
from gristmill.server.models import Run
from gristmill.states import RunState

PER_PAGE = 50


@dataclass(frozen=True)
class RunFilter:
    """What the list shows: whose runs, in which state, of which pipeline."""

    everyone: bool = False
    """Every user's runs (staff only); otherwise the caller's own."""
    state: RunState | None = None
    pipeline: str = ""

    @classmethod
    def from_query(cls, caller: Caller, query: Any) -> RunFilter:
        """The filter a query string asks for; unknown values are ignored, not errors."""
        try:
            state = RunState(query.get("state", ""))
        except ValueError:
            state = None
        everyone = caller.is_staff and query.get("whose", "all") != "mine"
        return cls(everyone=everyone, state=state, pipeline=query.get("pipeline", "")[:64])


def run_page(caller: Caller, wanted: RunFilter, number: Any) -> Page[Run]:
    """One page of the runs ``caller`` may list under ``wanted`` (page numbers past the end
    give the last page)."""
    runs = Run.objects.order_by("-created_at").only(
        "id", "pipeline", "state", "created_at", "finished_at", "owner__username"
    )
    runs = runs.select_related("owner")
    if not wanted.everyone:
        runs = runs.filter(owner_id=caller.user_id)
    if wanted.state is not None:
        runs = runs.filter(state=wanted.state)
    if wanted.pipeline:
        runs = runs.filter(pipeline=wanted.pipeline)
    return Paginator(runs, PER_PAGE).get_page(number)
