"""Receiving request bodies within a deadline and a minimum rate (gristmill.server.intake).

The clients here are coroutines that pace their bytes as slow clients do; whether they are cut
off does not depend on how precisely they keep their pace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gristmill.server.intake import (
    BodyLimits,
    BodyTooSlowError,
    ClientGoneError,
    SpooledBody,
    receive_body,
)

Receive = Callable[[], Awaitable[dict[str, Any]]]


def client(chunks: list[bytes], pause: float = 0.0, *, endless: bool = False) -> Receive:
    """A client sending ``chunks`` ``pause`` seconds apart (for ever, with ``endless``)."""
    sent = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(pause)
        chunk = chunks[sent % len(chunks)]
        sent += 1
        more = endless or sent < len(chunks)
        return {"type": "http.request", "body": chunk, "more_body": more}

    return receive


def received(receive: Receive, limits: BodyLimits) -> SpooledBody:
    return asyncio.run(receive_body(receive, limits))


def test_a_whole_body_is_spooled_and_handed_back_from_its_start() -> None:
    body = received(client([b"abc", b"", b"def"]), BodyLimits(timeout=5, min_rate=1, per_client=1))
    with body.file:
        assert (body.size, body.file.read()) == (6, b"abcdef")


def test_a_large_body_goes_to_a_file_not_memory() -> None:
    chunks = [b"x" * 65536] * 20
    body = received(client(chunks), BodyLimits(timeout=5, min_rate=1, per_client=1))
    with body.file:
        assert body.size == 20 * 65536
        assert body.file._rolled  # type: ignore[attr-defined]


def test_a_client_that_stops_sending_is_cut_off_after_the_timeout() -> None:
    async def stalls() -> dict[str, Any]:
        await asyncio.Event().wait()  # never set: the client sends nothing more
        raise AssertionError("unreachable")

    with pytest.raises(BodyTooSlowError):
        received(stalls, BodyLimits(timeout=0.2, min_rate=1, per_client=1))


def test_a_body_that_keeps_coming_below_the_minimum_rate_is_cut_off() -> None:
    # A byte every 10 ms is 100 bytes a second, never a pause near the 1 s timeout: only the
    # rate (1000 bytes a second) can stop it, as it would go on for ever.
    with pytest.raises(BodyTooSlowError):
        received(
            client([b"x"], pause=0.01, endless=True),
            BodyLimits(timeout=1, min_rate=1000, per_client=1),
        )


def test_a_body_above_the_minimum_rate_is_received_whatever_its_length_in_time() -> None:
    # 100 chunks of 1 KiB, 5 ms apart: about 200 KiB a second, for about half a second.
    chunks = [b"x" * 1024] * 100
    body = received(
        client(chunks, pause=0.005), BodyLimits(timeout=0.2, min_rate=1024, per_client=1)
    )
    with body.file:
        assert body.size == 100 * 1024


def test_a_client_that_disconnects_is_told_apart_from_a_slow_one() -> None:
    async def leaves() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    with pytest.raises(ClientGoneError):
        received(leaves, BodyLimits(timeout=5, min_rate=1, per_client=1))
