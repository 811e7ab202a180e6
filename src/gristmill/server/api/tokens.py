"""API tokens of the signed-in user: list, make (the key is shown once), revoke."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status
from pydantic import BaseModel, Field

from gristmill.errors import NotFoundError, SignInRequiredError
from gristmill.server.api.auth import caller_of
from gristmill.server.api.bodies import JSON, json_body
from gristmill.server.api.schemas import ErrorOut, Out
from gristmill.server.models import ApiToken
from gristmill.server.tokens import create_token

router = Router(tags=["tokens"])


class TokenOut(Out):
    id: int
    name: str
    prefix: str = Field(description="The key's first characters, to tell tokens apart.")
    created_at: datetime
    last_used_at: datetime | None


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")


_NEW_TOKEN_DOC = {
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": NewToken.model_json_schema()}},
    }
}


class CreatedToken(TokenOut):
    key: str = Field(description="The key, shown this once: send it as 'Bearer <key>'.")


def _user_id(request: HttpRequest) -> int:
    user_id = caller_of(request).user_id
    if user_id is None:
        raise SignInRequiredError("sign in to manage API tokens")
    return user_id


def _out(token: ApiToken) -> dict[str, object]:
    fields = ("id", "name", "prefix", "created_at", "last_used_at")
    return {field: getattr(token, field) for field in fields}


@router.get("", response={200: list[TokenOut], 401: ErrorOut})
def list_tokens(request: HttpRequest) -> list[dict[str, object]]:
    """The caller's API tokens (never their keys), newest first."""
    tokens = ApiToken.objects.filter(user_id=_user_id(request)).order_by("-created_at", "-id")
    return [_out(token) for token in tokens]


@router.post(
    "",
    response={201: CreatedToken, 400: ErrorOut, 401: ErrorOut, 415: ErrorOut, 422: ErrorOut},
    openapi_extra=_NEW_TOKEN_DOC,
)
def make_token(request: HttpRequest) -> Status[dict[str, object]]:
    """Make an API token for the caller and answer its key, which is not shown again.

    Send ``{"name": "..."}`` as ``application/json``: a body that is not JSON answers 400, one
    of another media type 415, a missing or overlong name 422."""
    user_id = _user_id(request)
    body = json_body(request, NewToken)
    token, key = create_token(user_id, body.name)
    return Status(201, {**_out(token), "key": key})


@router.delete("/{token_id}", response={204: None, 401: ErrorOut, 404: ErrorOut})
def revoke_token(request: HttpRequest, token_id: str) -> HttpResponse:
    """Revoke one of the caller's tokens: programs using it are refused from now on. An id
    that names none of them, including one that is not a number, answers 404."""
    user_id = _user_id(request)
    plain = token_id.isascii() and token_id.isdigit() and len(token_id) <= 18
    number = int(token_id) if plain else None
    deleted = 0
    if number is not None:
        deleted, _ = ApiToken.objects.filter(pk=number, user_id=user_id).delete()
    if not deleted:
        raise NotFoundError(f"you have no API token with id {token_id}")
    return HttpResponse(status=204)
