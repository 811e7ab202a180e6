"""Where the clients send requests, and how they read the links in answers."""

from __future__ import annotations

import pytest

from gristmill.client.config import absolute_url, http_options


@pytest.mark.parametrize(
    ("server", "api"),
    [
        ("http://mill.example", "http://mill.example/api/v1"),
        ("http://mill.example/", "http://mill.example/api/v1"),
        ("http://site.example/tools/", "http://site.example/tools/api/v1"),
        ("http://site.example/tools", "http://site.example/tools/api/v1"),
    ],
)
def test_the_api_is_under_the_servers_address_with_its_prefix(server: str, api: str) -> None:
    assert http_options(server, "")[0] == api


@pytest.mark.parametrize(
    ("server", "link", "address"),
    [
        ("http://mill.example", "/runs/1/", "http://mill.example/runs/1/"),
        ("http://site.example/tools", "/tools/runs/1/", "http://site.example/tools/runs/1/"),
        ("http://site.example/tools/", "/tools/runs/1/", "http://site.example/tools/runs/1/"),
    ],
)
def test_a_link_in_an_answer_is_resolved_against_the_servers_host(
    server: str, link: str, address: str
) -> None:
    assert absolute_url(server, link) == address
