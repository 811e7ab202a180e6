"""A typed client for a gristmill server over its REST API, for programs on other machines.

``Client`` blocks; ``AsyncClient`` has the same methods for asyncio. Both take the server's
address (default ``GRISTMILL_SERVER``) and an API token (default ``GRISTMILL_TOKEN``); see
docs/client.md. This package imports nothing of the server: only httpx and ``gristmill.states``.
"""

from gristmill.client.asynchronous import AsyncClient
from gristmill.client.calls import (
    DataFile,
    Entry,
    Input,
    Json,
    RunItems,
    RunOutputs,
    Text,
    Url,
)
from gristmill.client.errors import (
    ClientError,
    ConflictError,
    ForbiddenError,
    InsufficientStorageError,
    InternalError,
    InvalidError,
    MethodNotAllowedError,
    NotFoundError,
    ResponseError,
    ServerUnreachableError,
    ThrottledError,
    TooLargeError,
    TooSlowError,
    UnauthenticatedError,
    UnavailableError,
    UnsupportedMediaTypeError,
    WaitTimeoutError,
)
from gristmill.client.sync import Client

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "ConflictError",
    "DataFile",
    "Entry",
    "ForbiddenError",
    "Input",
    "InsufficientStorageError",
    "InternalError",
    "InvalidError",
    "Json",
    "MethodNotAllowedError",
    "NotFoundError",
    "ResponseError",
    "RunItems",
    "RunOutputs",
    "ServerUnreachableError",
    "Text",
    "ThrottledError",
    "TooLargeError",
    "TooSlowError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnsupportedMediaTypeError",
    "Url",
    "WaitTimeoutError",
]
