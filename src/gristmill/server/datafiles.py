"""Data files: files a signed-in user keeps on the server to hand to pipelines again and again.

* Only signed-in users keep data files. A user sees only their own; staff see everyone's.
* A data file a caller may not see answers exactly like one that does not exist.
* A data file is stored whole or not at all: its bytes are written first, under a name no row
  points at yet, then its row; if the row cannot be written, the bytes are removed. Deleting
  removes the row, then the bytes, so no row ever points at a removed file.

The bytes live in the storage under ``datafiles/<owner id>/``
(:meth:`~gristmill.storage.FilesystemStorage.save_datafile`). A run that uses a data file gets
its own copy, so deleting the data file later does not touch the run.
"""

from __future__ import annotations

import mimetypes
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.template.defaultfilters import filesizeformat

from gristmill.app.service import Service
from gristmill.authoring.inputs import InputKind, LocalFile, safe_name
from gristmill.errors import NotFoundError, SignInRequiredError, TooLargeError
from gristmill.server.access import Caller
from gristmill.server.models import DataFile

__all__ = [
    "as_input",
    "create",
    "delete",
    "get",
    "limit_message",
    "open_stored",
    "own",
    "owner_id",
    "stored_path",
    "visible",
]

_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]{0,63}/[A-Za-z0-9][\w.+-]{0,99}$")


def owner_id(caller: Caller) -> int:
    """The user id of ``caller``, who keeps data files; :class:`SignInRequiredError` for an
    anonymous caller."""
    if caller.user_id is None:
        raise SignInRequiredError("sign in to keep data files")
    return caller.user_id


def _not_found(file_id: object) -> NotFoundError:
    return NotFoundError(f"no data file with id {str(file_id)!r}")


def limit_message(max_size: int) -> str:
    """The message for an upload over the data file size limit ``max_size``."""
    return f"the file is larger than the limit of {filesizeformat(max_size)} for data files"


def create(
    caller: Caller,
    name: str,
    stream: IO[bytes],
    *,
    media_type: str | None = None,
    service: Service,
) -> DataFile:
    """Store ``stream`` as a new data file of ``caller``, named ``safe_name(name)``.

    The media type is the one given if it looks like one, else guessed from the name. A JSON
    file is also kept as a JSON document (:func:`gristmill.server.documents.keep_if_json`). Raises
    :class:`SignInRequiredError` for an anonymous caller and :class:`TooLargeError` (keeping
    nothing) for a stream over the ``datafile_max_size`` setting.
    """
    owner = owner_id(caller)
    file_id = uuid.uuid4()
    name = safe_name(name, fallback="upload")
    if not media_type or not _MEDIA_TYPE.match(media_type):
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    path, size, digest = service.storage.save_datafile(
        owner, str(file_id), name, stream, max_size=service.settings.datafile_max_size
    )
    try:
        datafile = DataFile.objects.create(
            id=file_id,
            owner_id=owner,
            name=name,
            path=path,
            size=size,
            sha256=digest,
            media_type=media_type.lower(),
            created_at=datetime.now(UTC),
        )
    except BaseException:
        service.storage.delete_datafile(path)
        raise
    from gristmill.server import documents  # which builds on this module

    documents.keep_if_json(datafile, service=service)
    return datafile


def create_from_upload(
    caller: Caller, upload: UploadedFile[bytes], *, service: Service
) -> DataFile:
    """:func:`create` from a file uploaded over HTTP, refused at once (:class:`TooLargeError`)
    when its announced size is over the limit."""
    if upload.size is not None and upload.size > service.settings.datafile_max_size:
        raise TooLargeError(upload.name or "upload", max_size=service.settings.datafile_max_size)
    return create(
        caller,
        upload.name or "upload",
        upload.file or upload,
        media_type=upload.content_type,
        service=service,
    )


def visible(caller: Caller) -> QuerySet[DataFile]:
    """The data files ``caller`` may see, newest first (everyone's for staff, with their
    owners); :class:`SignInRequiredError` for an anonymous caller."""
    owner = owner_id(caller)
    files = DataFile.objects.select_related("owner").order_by("-created_at", "-id")
    return files if caller.is_staff else files.filter(owner_id=owner)


def own(caller: Caller) -> QuerySet[DataFile]:
    """The caller's own data files, newest first (also for staff)."""
    return DataFile.objects.filter(owner_id=owner_id(caller)).order_by("-created_at", "-id")


def get(caller: Caller, file_id: str | uuid.UUID) -> DataFile:
    """The data file ``file_id``, if ``caller`` may see it; :class:`NotFoundError` otherwise
    (also for a malformed id), with the same message either way."""
    try:
        key = file_id if isinstance(file_id, uuid.UUID) else uuid.UUID(str(file_id))
    except ValueError:
        raise _not_found(file_id) from None
    try:
        return visible(caller).get(pk=key)
    except DataFile.DoesNotExist:
        raise _not_found(file_id) from None


def stored_path(datafile: DataFile, service: Service) -> Path:
    """The data file's bytes on this machine (fetched from a remote storage first);
    :class:`NotFoundError` if they are gone."""
    if service.storage.exists(datafile.path):
        try:
            return service.storage.local_path(datafile.path)
        except FileNotFoundError:  # removed meanwhile
            pass
    raise NotFoundError(f"the data file {datafile.name!r} is not stored any more")


def open_stored(datafile: DataFile, service: Service) -> IO[bytes]:
    """The data file's bytes, open for reading in chunks; :class:`NotFoundError` if they are
    gone."""
    try:
        return service.storage.open(datafile.path)
    except FileNotFoundError:
        raise NotFoundError(f"the data file {datafile.name!r} is not stored any more") from None


def delete(caller: Caller, file_id: str | uuid.UUID, *, service: Service) -> None:
    """Delete the data file ``file_id`` (its row, then its bytes), if ``caller`` may see it;
    :class:`NotFoundError` otherwise. Runs that used it keep their own copies."""
    datafile = get(caller, file_id)
    deleted, _ = DataFile.objects.filter(pk=datafile.pk).delete()
    if not deleted:  # deleted meanwhile by another request
        raise _not_found(file_id)
    service.storage.delete_datafile(datafile.path)


def as_input(caller: Caller, file_id: str, *, service: Service) -> LocalFile:
    """The data file ``file_id`` as an input of a new run (which gets a copy of it), if
    ``caller`` may see it; :class:`NotFoundError` otherwise, or if its bytes are gone."""
    datafile = get(caller, file_id)
    return LocalFile(
        stored_path(datafile, service),
        name=datafile.name,
        media_type=datafile.media_type,
        kind=InputKind.DATAFILE,
        source=f"data file {datafile.pk}",
    )
