"""What the OpenAPI document says of every operation, beyond each view's own answers.

ninja describes each operation from its view: its success, the errors the view names, and an
auth scheme it calls required. The server also answers, on every operation, 401 for a bad
``Authorization`` header, 5xx when it fails, and, where a body is read, 413 and 415; and it
serves anonymous callers. :func:`complete` adds that, so that the document describes every
answer the server gives (the OpenAPI fuzz test checks it, answer by answer).
"""

from __future__ import annotations

from typing import Any

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}

_EVERYWHERE = {
    "401": "The Authorization header is not 'Bearer <API token>', or its token is unknown or "
    "revoked (anonymous callers send no Authorization header at all).",
    "5XX": "The server failed: 500 with the reference under which it logged the error, 503 "
    "when the database is unavailable, 507 when there is no room to store what was sent.",
}
_WITH_A_BODY = {
    "413": "The body is larger than the server accepts.",
    "415": "The body is not of a media type this operation takes (its Content-Type).",
}


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add to each operation of ``schema`` (an OpenAPI document, changed in place and
    returned) the answers every operation may give, and anonymous access."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            answers = dict(_EVERYWHERE)
            if "requestBody" in operation:
                answers.update(_WITH_A_BODY)
            documented = {str(status) for status in responses}
            for status, description in answers.items():
                if status not in documented:
                    responses[status] = {"description": description, "content": _ERROR}
            security = operation.get("security")
            if security and {} not in security:
                # Identification is optional: an empty requirement admits anonymous callers.
                operation["security"] = [{}, *security]
    return schema
