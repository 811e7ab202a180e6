"""gristmill's REST API (django-ninja), with its OpenAPI document.

Mount it in a URLconf::

    path("api/v1/", api.urls)

Pipelines (list, describe, submit a run), runs (status, log, results, cancel, rerun) and their
output files. Every error answers in one format (:mod:`gristmill.server.api.errors`). Views find
the configured gristmill through :func:`gristmill.app.service.default_service` when called.
"""

from __future__ import annotations

from gristmill.server.api import (
    account,
    datafiles,
    documents,
    maps,
    outputs,
    pipelines,
    runs,
    shares,
    tokens,
)
from gristmill.server.api.auth import CallerAuth
from gristmill.server.api.errors import ErrorFormatAPI

api = ErrorFormatAPI(
    title="gristmill",
    version="1",
    urls_namespace="gristmill-api",
    description="Submit data to pipelines, follow runs, and download their results.",
    auth=CallerAuth(),
)
api.add_router("/pipelines", pipelines.router)
api.add_router("/runs", runs.router)
api.add_router("/runs", outputs.router)
api.add_router("/runs", maps.router)
api.add_router("/tokens", tokens.router)
api.add_router("/datafiles", datafiles.router)
api.add_router("/datafiles", documents.datafile_router)
api.add_router("/documents", documents.router)
api.add_router("", shares.router)
api.add_router("/account", account.router)

__all__ = ["api"]
