"""Brokers for the Celery executor's tests: a private ``redis-server`` on a free port (stopped
and started again by fault tests), and a private virtual host on the machine's RabbitMQ,
reached through a TCP relay of the test's own, so that a test can cut the broker off (and
bring it back) without disturbing anyone else using that RabbitMQ."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import service_absent

RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


class PrivateRedis:
    """A ``redis-server`` of the test session's own, keeping nothing on disk."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.directory / "redis.log").open("ab")
        arguments = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen(
            ["redis-server", *arguments, "--appendonly", "no", "--dir", str(self.directory)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 10
        while not self.ping():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def ping(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server: everything it held (every message) is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def flush(self) -> None:
        import redis

        client = redis.Redis(port=self.port)
        try:
            client.flushall()
        finally:
            client.close()

    def purge(self) -> int:
        """Empty gristmill's queues (their lists, with any priority variants): the waiting
        messages are lost; those delivered and not yet acknowledged are not."""
        import redis

        client = redis.Redis(port=self.port)
        try:
            keys = list(client.scan_iter(match="gristmill.*"))
            return int(client.delete(*keys)) if keys else 0
        finally:
            client.close()


class Relay:
    """A TCP relay from a free local port to ``target``; :meth:`cut` closes every connection
    and refuses new ones (the broker is gone, for our clients only), :meth:`restore` lets them
    through again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._server: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def restore(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        self._thread = threading.Thread(target=self._accept, args=(server,), daemon=True)
        self._thread.start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._server is not None:
            # Shut down first: that wakes the thread blocked in accept() and stops listening
            # (a close alone leaves the socket listening while that call holds it).
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            connections, self._connections = self._connections, []
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _rabbitmqctl(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", *arguments], capture_output=True, text=True, timeout=60, check=False
    )


class PrivateVhost:
    """A virtual host of the test session's own on the machine's RabbitMQ, through a relay."""

    def __init__(self) -> None:
        self.name = f"gristmill-test-{uuid.uuid4().hex[:8]}"
        self.relay = Relay((RABBIT_HOST, RABBIT_PORT))

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.relay.port}/{self.name}"

    def create(self) -> None:
        for command in (
            ("add_vhost", self.name),
            ("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*"),
        ):
            done = _rabbitmqctl(*command)
            if done.returncode != 0:
                raise RuntimeError(f"rabbitmqctl {' '.join(command)}: {done.stderr.strip()}")
        self.relay.restore()

    def delete(self) -> None:
        self.relay.cut()
        _rabbitmqctl("delete_vhost", self.name)

    def flush(self) -> None:
        """Delete the gristmill queues of the virtual host (and their messages)."""
        from kombu import Connection

        with Connection(self.url, connect_timeout=5) as connection:
            channel = connection.default_channel
            for queue in ("default", "slow", "fast", "other"):
                with contextlib.suppress(Exception):
                    channel.queue_delete(f"gristmill.{queue}")
                    channel = connection.default_channel

    def purge(self) -> int:
        """Purge the gristmill queues of the virtual host (their ready messages are lost; the
        queues and their consumers stay, as ``rabbitmqctl purge_queue`` leaves them)."""
        from kombu import Connection

        purged = 0
        with Connection(self.url, connect_timeout=5) as connection:
            for queue in ("default", "slow", "fast", "other"):
                channel = connection.channel()
                try:
                    purged += channel.queue_purge(f"gristmill.{queue}") or 0
                except Exception:  # a queue never declared
                    pass
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
        return purged


class Broker:
    """What a test needs of a broker: its URL, and how to empty, stop and start it."""

    def __init__(self, kind: str, redis: PrivateRedis | None, vhost: PrivateVhost | None):
        self.kind = kind
        self.redis = redis
        self.vhost = vhost

    @property
    def url(self) -> str:
        if self.redis is not None:
            return self.redis.url
        assert self.vhost is not None
        return self.vhost.url

    def flush(self) -> None:
        if self.redis is not None:
            self.redis.flush()
        elif self.vhost is not None:
            self.vhost.flush()

    def purge(self) -> int:
        """Purge gristmill's queues mid-run: the messages waiting in them are lost; how many."""
        if self.redis is not None:
            return self.redis.purge()
        assert self.vhost is not None
        return self.vhost.purge()

    def stop(self) -> None:
        """The broker goes away for the test's clients (Redis: the server is stopped and
        loses every message; RabbitMQ: its connections are cut)."""
        if self.redis is not None:
            self.redis.stop()
        elif self.vhost is not None:
            self.vhost.relay.cut()

    def start(self) -> None:
        if self.redis is not None:
            self.redis.start()
        elif self.vhost is not None:
            self.vhost.relay.restore()


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis | str]:
    """A private redis-server, or the reason there is none."""
    if shutil.which("redis-server") is None:
        yield "redis-server is not installed"
        return
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except RuntimeError as error:
        yield str(error)
        return
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def private_vhost() -> Iterator[PrivateVhost | str]:
    """A private RabbitMQ virtual host, or the reason there is none."""
    if shutil.which("rabbitmqctl") is None:
        yield "rabbitmqctl is not installed (RabbitMQ)"
        return
    if not _answers(RABBIT_PORT):
        yield f"RabbitMQ is not reachable at {RABBIT_HOST}:{RABBIT_PORT}"
        return
    vhost = PrivateVhost()
    try:
        vhost.create()
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        yield f"cannot make a RabbitMQ virtual host: {error}"
        return
    try:
        yield vhost
    finally:
        vhost.delete()


def broker_for(kind: str, request: pytest.FixtureRequest) -> Broker:
    """The broker ``kind`` (``redis`` or ``rabbitmq``), emptied and running; skipped (or, in CI,
    failed) with the reason when it cannot be had."""
    fixture = "private_redis" if kind == "redis" else "private_vhost"
    found = request.getfixturevalue(fixture)
    if isinstance(found, str):
        service_absent(found)
    broker = Broker(
        kind,
        found if isinstance(found, PrivateRedis) else None,
        found if isinstance(found, PrivateVhost) else None,
    )
    if kind == "redis" and broker.redis is not None and broker.redis.process is None:
        broker.start()
    if kind == "rabbitmq" and broker.vhost is not None and broker.vhost.relay._server is None:
        broker.start()
    broker.flush()
    return broker
