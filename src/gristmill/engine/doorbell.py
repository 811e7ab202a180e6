"""A local doorbell: wake processes on this machine without polling.

Each listener binds a Unix datagram socket in a channel directory; ringing sends one byte to every
socket there. It carries no data and promises nothing: a missed ring only delays work until the
listener's next timeout, because the database stays the truth.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import time
import uuid
from pathlib import Path

logger = logging.getLogger("gristmill.doorbell")


class SocketDoorbell:
    """One channel (e.g. ``work`` or ``done``) of local wake-ups under ``directory``."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._sock: socket.socket | None = None
        self._path: Path | None = None
        self._sender: socket.socket | None = None
        self._pid = os.getpid()
        self._broken = False

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # Sockets inherited over fork belong to the parent; start afresh.
            self._sock = self._sender = None
            self._path = None
            self._pid = os.getpid()

    def listen(self) -> bool:
        """Start listening. Returns True if this call started it (rings before it are lost)."""
        self._check_fork()
        if self._sock is not None or self._broken:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(str(path))
        except OSError as error:
            # Without a doorbell the caller still works, waking on its timeouts instead.
            sock.close()
            self._broken = True
            logger.warning("cannot listen for wake-ups at %s (%s); polling instead", path, error)
            return True
        sock.setblocking(False)
        self._sock, self._path = sock, path
        return True

    def wait(self, timeout: float) -> bool:
        """Block until a ring arrives or ``timeout`` passes; return whether it rang. The first
        call only starts listening and returns True at once (a ring before it is lost), so
        callers check state after it and before waiting."""
        if self.listen():
            return True
        if self._sock is None:  # no doorbell: wait out the timeout
            time.sleep(max(0.0, timeout))
            return False
        readable, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
        if readable:
            # Drain every pending ring: one wake-up is enough for all of them.
            with contextlib.suppress(BlockingIOError):
                while True:
                    self._sock.recv(64)
        return bool(readable)

    def ring(self) -> None:
        """Wake every listener of this channel."""
        self._check_fork()
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        for name in names:
            target = os.path.join(self.directory, name)
            try:
                self._sender.sendto(b"!", target)
            except BlockingIOError:
                pass  # its buffer is full of rings already: it will wake
            except OSError as error:
                if error.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    # A listener that died without cleaning up.
                    with contextlib.suppress(OSError):
                        os.unlink(target)

    def close(self) -> None:
        """Stop listening and remove this listener's socket."""
        if self._pid != os.getpid():
            self._sock = self._sender = None
            self._path = None
            return
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
            self._path = None
        if self._sender is not None:
            self._sender.close()
            self._sender = None
