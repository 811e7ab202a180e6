"""What a caller may do to a run they can see: cancel, rerun, delete, pin and unpin.

One implementation for the REST API and the run page: each function checks who is asking and
the run's state, acts, and raises :class:`ActionRefused` (with the HTTP status that fits) when it
cannot. An unknown run, or one the caller may not see, raises
:class:`~gristmill.errors.NotFoundError` like everywhere else.
"""

from __future__ import annotations

import logging

from gristmill.engine import retention
from gristmill.errors import SignInRequiredError
from gristmill.server.access import Caller, visible_run
from gristmill.service import Service
from gristmill.states import RunState

logger = logging.getLogger("gristmill.actions")


class ActionRefused(Exception):
    """The action cannot be done: ``status`` 403 (not this caller) or 409 (not in this state)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def cancel(caller: Caller, service: Service, run_id: str) -> RunState:
    """Cancel the run: at once if queued, as soon as its step stops if running (then it ends
    ``cancelled`` whatever happens meanwhile). Records who asked. Returns the run's state
    afterwards; refused (409, naming the final state) if the run had already ended."""
    visible_run(caller, run_id, service)
    store = service.store
    if not store.request_cancel(run_id, by=caller.username if caller.signed_in else None):
        state = store.get_run(run_id).state
        raise ActionRefused(409, f"the run has already ended ({state}); there is nothing to cancel")
    return store.get_run(run_id).state


def rerun(caller: Caller, service: Service, run_id: str) -> RunState:
    """Queue an ended run again: stale steps are recomputed, current results kept. Returns the
    run's state afterwards."""
    visible_run(caller, run_id, service)
    store = service.store
    if not store.requeue(run_id, reason="rerun requested"):
        state = store.get_run(run_id).state
        if state == RunState.EXPIRED:
            raise ActionRefused(409, "the run has expired and its files are gone; submit it again")
        raise ActionRefused(409, f"the run is still {state}; wait for it to end to run it again")
    return store.get_run(run_id).state


def delete(caller: Caller, service: Service, run_id: str) -> None:
    """Remove an ended run's inputs, outputs, results and log now, keeping the small record
    that says who deleted it."""
    owner_id = visible_run(caller, run_id, service).run.owner_id
    if caller.is_staff:
        who = f"staff ({caller.username})"
    elif caller.signed_in and owner_id == caller.user_id:
        who = "its owner"
    else:
        who = "a user"
    try:
        removed = retention.remove(
            service.store, service.storage, run_id, reason=f"deleted by {who}"
        )
    except OSError as error:
        # The run is expired and its results gone; the pruner finishes removing its files.
        logger.error("could not remove the files of deleted run %s: %s", run_id, error)
        return
    if not removed:
        state = service.store.get_run(run_id).state
        if state == RunState.EXPIRED:
            raise ActionRefused(409, "the run has already expired; its files are gone")
        raise ActionRefused(409, f"the run is still {state}; cancel it first, then delete it")


def pin_refusal(caller: Caller, owner_id: int | None) -> str | None:
    """Why ``caller`` may not pin or unpin a run of ``owner_id``, or ``None`` if they may: its
    owner and staff may; a run submitted without signing in, staff only."""
    if caller.is_staff or (caller.signed_in and owner_id == caller.user_id):
        return None
    if owner_id is None:
        return "only staff can pin a run submitted without signing in"
    return "only the run's owner or staff can pin it"


def pin(caller: Caller, service: Service, run_id: str, *, pinned: bool) -> None:
    """Keep the run past its expiry until unpinned (``pinned``), or let it expire again."""
    status = visible_run(caller, run_id, service)
    refusal = pin_refusal(caller, status.run.owner_id)
    if refusal is not None:
        if not caller.signed_in:
            raise SignInRequiredError("sign in to pin a run")
        raise ActionRefused(403, refusal)
    if not service.store.set_pinned(run_id, pinned):
        raise ActionRefused(409, "the run has expired and its files are gone; nothing to keep")
