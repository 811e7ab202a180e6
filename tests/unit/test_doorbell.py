"""The local doorbell: a ring from any process on the machine wakes every listener."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.engine.doorbell import SocketDoorbell

DEADLINE = 3.0
"""Seconds to wait for something that should happen at once; well below the waits below."""


@pytest.fixture
def bell(tmp_path: Path) -> Iterator[SocketDoorbell]:
    doorbell = SocketDoorbell(tmp_path / "work")
    yield doorbell
    doorbell.close()


def wait_in_thread(
    doorbell: SocketDoorbell, timeout: float
) -> tuple[threading.Thread, threading.Event]:
    returned = threading.Event()

    def waiter() -> None:
        doorbell.wait(timeout)
        returned.set()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    return thread, returned


def sockets_in(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.sock"))


def test_the_first_wait_returns_at_once(bell: SocketDoorbell) -> None:
    thread, returned = wait_in_thread(bell, 30)
    thread.join(DEADLINE)
    assert returned.is_set()


def test_the_first_wait_starts_listening(bell: SocketDoorbell) -> None:
    bell.wait(0)
    assert len(sockets_in(bell.directory)) == 1


def test_a_ring_from_another_doorbell_wakes_a_waiter(bell: SocketDoorbell) -> None:
    bell.wait(0)  # start listening
    thread, returned = wait_in_thread(bell, 5)

    ringer = SocketDoorbell(bell.directory)
    try:
        ringer.ring()
        thread.join(DEADLINE)
    finally:
        ringer.close()

    assert not thread.is_alive()
    assert returned.is_set()


def test_ringing_a_channel_nobody_listens_to_does_nothing(tmp_path: Path) -> None:
    ringer = SocketDoorbell(tmp_path / "nobody")
    try:
        ringer.ring()
    finally:
        ringer.close()
    assert not (tmp_path / "nobody").exists()


def test_a_ring_removes_the_socket_of_a_dead_listener(tmp_path: Path) -> None:
    channel = tmp_path / "work"
    channel.mkdir()
    dead = channel / "99999-deadbeef.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(dead))
    listener.close()  # died without cleaning up: the file stays, nobody reads it

    ringer = SocketDoorbell(channel)
    try:
        ringer.ring()
    finally:
        ringer.close()

    assert not dead.exists()


def test_a_ring_keeps_the_socket_of_a_live_listener(bell: SocketDoorbell) -> None:
    bell.wait(0)
    ringer = SocketDoorbell(bell.directory)
    try:
        ringer.ring()
    finally:
        ringer.close()
    assert len(sockets_in(bell.directory)) == 1


def test_close_removes_the_listener_socket(tmp_path: Path) -> None:
    doorbell = SocketDoorbell(tmp_path)
    doorbell.wait(0)
    doorbell.close()
    assert sockets_in(tmp_path) == []


def test_close_without_listening_does_nothing(tmp_path: Path) -> None:
    SocketDoorbell(tmp_path).close()
    assert list(tmp_path.iterdir()) == []


def test_listen_starts_only_once(bell: SocketDoorbell) -> None:
    assert bell.listen() is True
    assert bell.listen() is False


def test_a_doorbell_that_cannot_listen_falls_back_to_waiting_out_its_timeout(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # longer than a Unix socket path may be
    bell = SocketDoorbell(deep)
    assert bell.listen() is True
    bell.wait(0)  # no socket, no error: the caller polls instead
    bell.ring()
    bell.close()


def test_wait_says_whether_it_rang(bell: SocketDoorbell) -> None:
    assert bell.wait(0) is True  # only started listening: a ring may have been missed
    assert bell.wait(0) is False
    ringer = SocketDoorbell(bell.directory)
    try:
        ringer.ring()
    finally:
        ringer.close()
    assert bell.wait(DEADLINE) is True
    assert bell.wait(0) is False  # every pending ring was taken at once
