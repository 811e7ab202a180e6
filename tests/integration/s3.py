"""A real S3-compatible server for the tests: moto's server mode on a free port, started once
per session, and a new bucket per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
"""What the storage's boto3 reads from the environment (moto accepts any)."""


@dataclass
class Bucket:
    """A bucket on the test S3 server."""

    name: str
    endpoint_url: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every key in the bucket below ``prefix``, sorted."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.client().get_object(Bucket=self.name, Key=key)["Body"].read()
        return body

    def env(self) -> dict[str, str]:
        """The settings (and credentials) of a gristmill process keeping its files here."""
        return {
            "GRISTMILL_STORAGE": "s3",
            "GRISTMILL_S3_BUCKET": self.name,
            "GRISTMILL_S3_ENDPOINT_URL": self.endpoint_url,
            "GRISTMILL_S3_REGION": REGION,
            **CREDENTIALS,
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free port of this machine; its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A new, empty bucket; this process's boto3 gets the credentials from the environment."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    made = Bucket(f"gristmill-{uuid.uuid4().hex[:12]}", s3_server)
    made.client().create_bucket(Bucket=made.name)
    return made
