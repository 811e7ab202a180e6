"""What a caller may do to a run they can see: cancel, rerun, retry failed batches, delete,
pin and unpin.

One implementation for the REST API and the run page: each function checks who is asking and
the run's state, acts, and raises when it cannot: :class:`~gristmill.errors.ConflictError` (with
the run's state) when the run's state does not allow the action,
:class:`~gristmill.errors.PermissionDeniedError` when the caller may not do it. An unknown run,
or one the caller may not see, raises :class:`~gristmill.errors.NotFoundError` like everywhere
else.
"""

from __future__ import annotations

import logging

from gristmill.app import maps
from gristmill.app.service import Service
from gristmill.engine import retention
from gristmill.errors import ConflictError, PermissionDeniedError, SignInRequiredError
from gristmill.server import notifications
from gristmill.server.access import Caller, owned_run
from gristmill.states import RunState

logger = logging.getLogger("gristmill.actions")


REFUSALS = (ConflictError, PermissionDeniedError)
"""What the actions raise when they refuse (besides not finding the run)."""


def cancel(caller: Caller, service: Service, run_id: str) -> RunState:
    """Cancel the run: at once if queued, as soon as its step stops if running (then it ends
    ``cancelled`` whatever happens meanwhile). Records who asked. Returns the run's state
    afterwards; :class:`ConflictError` with the final state if the run had already ended."""
    owned_run(caller, run_id, service)
    store = service.store
    if not store.request_cancel(run_id, by=caller.username if caller.signed_in else None):
        state = store.get_run(run_id).state
        message = f"the run has already ended ({state}); there is nothing to cancel"
        raise ConflictError(message, state=state)
    return store.get_run(run_id).state


def rerun(caller: Caller, service: Service, run_id: str) -> RunState:
    """Queue an ended run again: stale steps are recomputed, current results kept. Returns the
    run's state afterwards; :class:`ConflictError` if the run is still queued or running, or
    has expired."""
    owned_run(caller, run_id, service)
    store = service.store
    if not store.requeue(run_id, reason="rerun requested"):
        state = store.get_run(run_id).state
        if state == RunState.EXPIRED:
            message = "the run has expired and its files are gone; submit it again"
        else:
            message = f"the run is still {state}; wait for it to end to run it again"
        raise ConflictError(message, state=state)
    notifications.record_again(run_id)
    return store.get_run(run_id).state


def retry_batches(caller: Caller, service: Service, run_id: str) -> tuple[int, RunState]:
    """Queue again the failed batches of an ended run's map steps (and those that never ran
    or listed failed items). Returns how many, and the run's state afterwards;
    :class:`ConflictError` if the run is still queued or running, or has nothing to retry."""
    owned_run(caller, run_id, service)
    retried = maps.retry_failed_batches(run_id, service=service)
    notifications.record_again(run_id)
    return retried, service.store.get_run(run_id).state


def delete(caller: Caller, service: Service, run_id: str) -> None:
    """Remove an ended run's inputs, outputs, results and log now, keeping the small record
    that says who deleted it; :class:`ConflictError` if the run is still queued or running, or
    has already expired."""
    owner_id = owned_run(caller, run_id, service).run.owner_id
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
            message = "the run has already expired; its files are gone"
        else:
            message = f"the run is still {state}; cancel it first, then delete it"
        raise ConflictError(message, state=state)


def pin_refusal(caller: Caller, owner_id: int | None) -> str | None:
    """Why ``caller`` may not pin or unpin a run of ``owner_id``, or ``None`` if they may: its
    owner and staff may; a run submitted without signing in, staff only."""
    if caller.is_staff or (caller.signed_in and owner_id == caller.user_id):
        return None
    if owner_id is None:
        return "only staff can pin a run submitted without signing in"
    return "only the run's owner or staff can pin it"


def pin(caller: Caller, service: Service, run_id: str, *, pinned: bool) -> None:
    """Keep the run past its expiry until unpinned (``pinned``), or let it expire again.

    :class:`SignInRequiredError` for an anonymous caller who may not,
    :class:`PermissionDeniedError` for a signed-in one, :class:`ConflictError` if the run has
    expired."""
    status = owned_run(caller, run_id, service)
    refusal = pin_refusal(caller, status.run.owner_id)
    if refusal is not None:
        if not caller.signed_in:
            raise SignInRequiredError("sign in to pin a run")
        raise PermissionDeniedError(refusal)
    if not service.store.set_pinned(run_id, pinned):
        message = "the run has expired and its files are gone; nothing to keep"
        raise ConflictError(message, state=RunState.EXPIRED)
