"""Who is asking, and what they may use and see.

* A pipeline is open to anyone, to signed-in users, or to staff only (``Pipeline.access``).
  A staff-only pipeline does not exist for anybody else; a pipeline for signed-in users asks
  an anonymous caller to sign in.
* A run's UUID URL is a capability: a run made without signing in is readable by whoever
  holds its URL; a signed-in user's runs are private to them and to staff, unless they share
  one (:mod:`gristmill.server.sharing`): read-only, with named users or with whoever opened
  its share link in this browser session. Acting on a run (cancel, rerun, delete, pin,
  sharing it) stays its owner's and staff's (:func:`owned_run`).
* Anything a caller may not see answers exactly as if it did not exist (404).

Callers are identified by Django's session (the web pages, and the API from the same browser)
or by an API token (``Authorization: Bearer gm_...``, see :mod:`gristmill.server.tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from gristmill.app.service import Service
from gristmill.app.submission import RunStatus, get_run
from gristmill.authoring.pipelines import Access, Pipeline
from gristmill.errors import NotFoundError, SignInRequiredError
from gristmill.store.records import RunRecord


@dataclass(frozen=True)
class Caller:
    """The person (or program) behind a request."""

    user_id: int | None = None
    """The Django user's id; ``None`` for an anonymous caller."""
    username: str = ""
    is_staff: bool = False
    is_superuser: bool = False
    share_tokens: tuple[str, ...] = ()
    """The share links opened in this browser session (see :mod:`gristmill.server.sharing`)."""

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None


ANONYMOUS = Caller()


def session_caller(request: HttpRequest) -> Caller:
    """The caller signed in with the request's session (anonymous if nobody is)."""
    user = getattr(request, "user", None)
    session = getattr(request, "session", None)
    tokens = tuple(session.get(SHARE_TOKENS_KEY, ())) if session is not None else ()
    if user is None or not user.is_authenticated:
        return Caller(share_tokens=tokens) if tokens else ANONYMOUS
    return Caller(
        user.pk,
        user.get_username(),
        bool(user.is_staff),
        bool(user.is_superuser),
        share_tokens=tokens,
    )


SHARE_TOKENS_KEY = "gristmill_share_tokens"
"""Where a session keeps the share links it opened."""


def may_use(caller: Caller, pipeline: Pipeline) -> bool:
    """Whether ``caller`` may submit runs to ``pipeline`` (and see it listed)."""
    if pipeline.access == Access.STAFF:
        return caller.is_staff
    if pipeline.access == Access.SUPERUSER:
        return caller.is_superuser
    if pipeline.access == Access.SIGNED_IN:
        return caller.signed_in
    return True


def may_see_pipeline(caller: Caller, pipeline: Pipeline) -> bool:
    """Whether the pipeline exists for ``caller``: staff-only pipelines are hidden from others,
    and superuser-only pipelines from everyone but superusers."""
    if pipeline.access == Access.SUPERUSER:
        return caller.is_superuser
    return pipeline.access != Access.STAFF or caller.is_staff


def usable_pipeline(caller: Caller, service: Service, name: str) -> Pipeline:
    """The pipeline ``name``, if ``caller`` may use it.

    Raises :class:`NotFoundError` if there is no such pipeline or it is for staff only, and
    :class:`SignInRequiredError` if it is for signed-in users and the caller is anonymous.
    """
    pipeline = service.registry.get(name)
    if not may_see_pipeline(caller, pipeline):
        raise NotFoundError(f"no pipeline named {name!r}")
    if not may_use(caller, pipeline):
        raise SignInRequiredError(f"sign in to use the pipeline {name!r}")
    return pipeline


def may_see(caller: Caller, run: RunRecord) -> bool:
    """Whether ``caller`` may see ``run`` and act on it (cancel, rerun, delete), shares aside."""
    return run.owner_id is None or caller.is_staff or run.owner_id == caller.user_id


def visible_run(caller: Caller, run_id: str, service: Service) -> RunStatus:
    """The run's status, if ``caller`` may see it, by right or because it was shared with
    them; :class:`NotFoundError` otherwise, with the same message as for a run that does not
    exist."""
    from gristmill.server.sharing import shared_with

    status = get_run(run_id, service=service)
    if not may_see(caller, status.run) and not shared_with(caller, status.id):
        raise NotFoundError(f"no run with id {run_id!r}")
    return status


def owned_run(caller: Caller, run_id: str, service: Service) -> RunStatus:
    """The run's status, if ``caller`` may act on it (its owner, staff, anybody for a run
    submitted without signing in); :class:`NotFoundError` otherwise, as for a run that does
    not exist, even if it was shared with them."""
    status = get_run(run_id, service=service)
    if not may_see(caller, status.run):
        raise NotFoundError(f"no run with id {run_id!r}")
    return status
