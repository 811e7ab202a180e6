"""Inputs that name something instead of carrying it: a URL or an earlier run (a stored data
file: :func:`gristmill.server.datafiles.as_input`). The API and the submission form read them
here, checked for what the caller may see, before :func:`gristmill.app.submission.submit` expands
them (a URL is fetched later, by the run's worker).

Each function raises :class:`ValueError` for a value that is malformed and
:class:`~gristmill.errors.NotFoundError` for one the caller may not see (or that does not
exist), with a message for the user.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import urlsplit

from gristmill.app.service import Service
from gristmill.authoring.inputs import RunOutputs, UrlInput
from gristmill.engine.fetcher import check_url
from gristmill.errors import FetchError
from gristmill.server.access import Caller, visible_run

_RUN_ID = re.compile(r"(?:^|/runs/)([0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12})(?:/|$)")


def url_input(text: str) -> UrlInput:
    """An http(s) URL as an input, checked by its syntax alone (its address is checked when
    the run is submitted, and again when the run's worker fetches it)."""
    try:
        return UrlInput(check_url(text))
    except FetchError as error:
        raise ValueError(error.message) from None


def run_id_from(text: str) -> str:
    """The run id in ``text``: the id itself, or the address of the run's page."""
    path = text.strip()
    match = None
    with contextlib.suppress(ValueError):  # not a URL at all
        path = urlsplit(path).path if "://" in path else path
        match = _RUN_ID.search(path.rstrip("/") + "/")
    if match is None:
        raise ValueError("give the id of a run, or the address of its page")
    return match[1].lower()


def run_input(caller: Caller, run_id: str, service: Service, step: str | None = None) -> RunOutputs:
    """The output files of the earlier run ``run_id`` (of one step, if ``step`` is given) as
    inputs, if ``caller`` may see that run. Whether it has succeeded and has outputs is checked
    when the run is submitted."""
    status = visible_run(caller, run_id, service)
    return RunOutputs(status.id, step=step)
