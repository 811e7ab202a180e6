"""Run files and data files through Django's storage API (``GRISTMILL_STORAGE=django`` or
``s3``): :class:`DjangoStorage` adapts a Django storage to gristmill's
:class:`~gristmill.storage.Storage`, with a local cache under the data directory.

* ``django``: the project's ``STORAGES["gristmill"]`` if it defines one, else
  ``STORAGES["default"]``;
* ``s3``: an S3-compatible bucket through django-storages (the ``s3`` extra), from
  ``GRISTMILL_S3_BUCKET``, ``GRISTMILL_S3_ENDPOINT_URL``, ``GRISTMILL_S3_REGION`` and
  ``GRISTMILL_S3_PREFIX``; credentials come from the environment as boto3 reads them
  (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, or a role).

Downloads from S3 read the object's body as it arrives (boto3's streaming body), never the
whole object first; other Django storages are read through their ``open``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings as django_conf
from django.core.files import File
from django.core.files.storage import Storage as Backend

from gristmill.errors import ConfigurationError
from gristmill.settings import Settings
from gristmill.storage import CHUNK, CachedStorage


class _Body(io.RawIOBase):
    """An S3 object's streaming body as a raw file, read as it arrives."""

    def __init__(self, body: Any):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class DjangoStorage(CachedStorage):
    """Files kept by a Django storage ``backend``, with local copies under ``root``."""

    def __init__(self, root: Path, backend: Backend):
        super().__init__(root)
        self.backend = backend

    def _upload(self, key: str, path: Path) -> None:
        with path.open("rb") as stream:
            name = self.backend.save(key, File(stream, name=key), max_length=None)
        if name != key:  # the storage kept it under another name: it must not
            self.backend.delete(name)
            raise OSError(f"the storage would not store {key!r} under its own name")

    def _download(self, key: str) -> IO[bytes]:
        bucket = getattr(self.backend, "bucket", None)
        if bucket is None:  # not S3: the storage's own file object
            try:
                return cast(IO[bytes], self.backend.open(key, "rb"))
            except FileNotFoundError:
                raise
            except OSError as error:
                raise FileNotFoundError(f"{key}: {error}") from None
        from botocore.exceptions import ClientError

        name = self.backend._normalize_name(key)  # type: ignore[attr-defined]
        try:
            body = bucket.Object(name).get()["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from None
            raise
        return io.BufferedReader(_Body(body), CHUNK)

    def _has(self, key: str) -> bool:
        return bool(self.backend.exists(key))

    def _remove(self, key: str) -> None:
        self.backend.delete(key)

    def _drop_remote(self, prefix: str) -> None:
        bucket = getattr(self.backend, "bucket", None)
        if bucket is None:
            super()._drop_remote(prefix)
            return
        # S3: every object below the prefix, a thousand per request.
        name = self.backend._normalize_name(prefix)  # type: ignore[attr-defined]
        bucket.objects.filter(Prefix=f"{name}/").delete()

    def _keys(self, prefix: str) -> Iterator[str]:
        try:
            directories, files = self.backend.listdir(prefix)
        except FileNotFoundError:
            return
        for name in files:
            yield f"{prefix}/{name}"
        for directory in directories:
            yield from self._keys(f"{prefix}/{directory}")


def django_storage(settings: Settings) -> DjangoStorage:
    """``GRISTMILL_STORAGE=django``: the project's ``STORAGES["gristmill"]``, else its
    ``STORAGES["default"]``."""
    from django.core.files.storage import storages

    alias = "gristmill" if "gristmill" in storages.backends else "default"
    return DjangoStorage(settings.data_dir, storages[alias])


def s3_storage(settings: Settings) -> DjangoStorage:
    """``GRISTMILL_STORAGE=s3``: the bucket ``GRISTMILL_S3_BUCKET`` through django-storages.
    Raises :class:`ModuleNotFoundError` if the ``s3`` extra is missing (reported by
    :func:`~gristmill.app.service.make_storage` naming the extra)."""
    from boto3.s3.transfer import TransferConfig
    from storages.backends.s3 import S3Storage

    if not settings.s3_bucket:
        raise ConfigurationError("GRISTMILL_STORAGE=s3 needs GRISTMILL_S3_BUCKET")
    if not django_conf.configured:  # a worker without the SQL store
        django_conf.configure()
    backend = S3Storage(
        bucket_name=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region or None,
        location=settings.s3_prefix,
        file_overwrite=True,
        max_memory_size=CHUNK,  # a file django-storages spools spills to disk past this
        transfer_config=TransferConfig(multipart_chunksize=8 << 20, max_concurrency=2),
    )
    return DjangoStorage(settings.data_dir, backend)
