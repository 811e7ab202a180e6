"""Fetching a user-supplied URL for a run's input, safely.

The contract (promise 9): a fetch reaches only public http(s) addresses. Every host is resolved
here, once per hop, and *every* address it resolves to must be public (or inside
:attr:`FetchPolicy.allow`); the connection then goes to one of those checked addresses and never
to a second DNS answer, so a host cannot rebind to an internal address between the check and the
connection. Redirects are followed by hand, each target checked like the first URL. The body is
counted as it is written to the sink, after decompression, and refused past
:attr:`FetchPolicy.max_size`; the whole fetch, host name lookups, redirects and streaming
included, ends by :attr:`FetchPolicy.timeout`. Every failure is a :class:`FetchError` whose
message names the URL and says what went wrong; no httpx or socket exception escapes.

:func:`check_url` is the syntax-only part, and :func:`check_literal_address` refuses an address
given as such; both need no network, for refusing a URL before anything is queued.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from typing import IO

import httpcore
import httpx

from gristmill.authoring.inputs import human_size
from gristmill.errors import FetchError, FetchTooLargeError
from gristmill.settings import Network
from gristmill.settings import parse_networks as parse_networks  # where callers look for it

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
"""Turns ``(host, port)`` into the host's addresses; the default uses ``socket.getaddrinfo``."""
Sink = Callable[[bytes], object] | IO[bytes]
"""Where the body goes: a function taking each chunk, or a binary stream."""

MAX_URL_LENGTH = 2048
_CHUNK_SIZE = 64 * 1024
_SHOWN_LENGTH = 200
# The well-known NAT64 prefix: a gateway turns 64:ff9b::a.b.c.d into a connection to a.b.c.d.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
_HEADERS = [
    (b"User-Agent", b"gristmill"),
    (b"Accept", b"*/*"),
    (b"Accept-Encoding", b"gzip, deflate"),
]
_LOOKUP_THREADS = 4
_lookups: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None
_lookups_lock = threading.Lock()
# What the network part can raise; anything else (the sink's own errors) propagates.
_NETWORK_ERRORS = (
    httpx.HTTPError,
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
)


@dataclass(frozen=True, kw_only=True)
class FetchPolicy:
    """The limits of one fetch."""

    max_size: int
    """Largest body accepted, in bytes, counted as written to the sink (after decompression)."""
    timeout: float = 30.0
    """Seconds the whole fetch may take: every hop, the transfer included."""
    max_redirects: int = 5
    """Most redirects followed."""
    allow: tuple[Network, ...] = ()
    """Networks reachable although not public (an intranet; ``127.0.0.1/32`` in tests)."""

    def __post_init__(self) -> None:
        if self.max_size < 0 or self.timeout <= 0 or self.max_redirects < 0:
            raise ValueError(
                "FetchPolicy needs max_size >= 0, timeout > 0 and max_redirects >= 0, "
                f"not {self.max_size}, {self.timeout} and {self.max_redirects}"
            )


@dataclass(frozen=True)
class FetchResult:
    """What a successful :func:`fetch` got."""

    url: str
    """The URL finally fetched, after redirects."""
    name: str
    """A file name: the Content-Disposition filename, else the last path segment, else the host.

    Not sanitised: pass it through :func:`gristmill.authoring.inputs.safe_name` before using it
    as a path.
    """
    media_type: str | None
    """The Content-Type without parameters (``text/csv``), or ``None`` if the server sent none."""
    size: int
    """Bytes written to the sink."""


def check_url(url: str) -> str:
    """Check that ``url`` could be fetched at all, by its syntax alone (no network).

    Accepts only ``http`` and ``https`` URLs with a host, without a user name or password, of at
    most :data:`MAX_URL_LENGTH` characters. Returns the URL normalised (surrounding whitespace
    removed, scheme and host in lower case, international host names in ASCII). Raises
    :class:`FetchError` saying what is wrong.
    """
    url = url.strip()
    return str(_parse(url, subject=_shown(url), original=_shown(url)))


def check_literal_address(url: str, allow: tuple[Network, ...] = ()) -> None:
    """Refuse ``url`` as :func:`fetch` would if its host is an IP address that is not public
    nor inside ``allow`` (a host name is checked when it is fetched, as looking it up may take
    long). Raises :class:`FetchError` with :func:`fetch`'s message, as :func:`check_url` does
    for a URL it refuses.
    """
    original = _shown(url.strip())
    target = _parse(url.strip(), subject=original, original=original)
    host = target.raw_host.decode("ascii")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a host name
    if not _permitted(address, allow):
        raise FetchError(
            f"{original}: {host} is not a public address; only public addresses can be fetched",
            url=original,
        )


def fetch(
    url: str, sink: Sink, policy: FetchPolicy, *, resolver: Resolver | None = None
) -> FetchResult:
    """Download ``url`` into ``sink`` within ``policy``, following redirects.

    Each hop's host is resolved once with ``resolver`` (default: the system's DNS); every address
    must be public or inside ``policy.allow``, and the connection goes to a checked address. TLS
    certificates are verified; proxy settings in the environment are ignored.

    Returns a :class:`FetchResult`. Raises :class:`FetchError` for a URL refused by
    :func:`check_url`, a non-public address, a failed lookup or connection, a non-2xx answer, too
    many redirects, a body over ``policy.max_size`` or a fetch past ``policy.timeout``; the sink
    may then hold part of the body, for the caller to discard. Errors raised by the sink itself
    propagate unchanged.
    """
    deadline = _Deadline(time.monotonic() + policy.timeout)
    write = sink if callable(sink) else sink.write
    resolve = resolver or _getaddrinfo
    original = _shown(url.strip())
    target = _parse(url.strip(), subject=original, original=original)
    for hop in range(policy.max_redirects + 1):
        subject = f"{original} (redirected to {_shown(str(target))})" if hop else original
        addresses = _checked_addresses(target, policy, resolve, deadline, subject, original)
        try:
            with (
                _pool(target, addresses, deadline) as pool,
                pool.stream(
                    "GET", _core_url(target), headers=_HEADERS, extensions=_timeouts(policy)
                ) as raw,
            ):
                response = httpx.Response(
                    raw.status, headers=raw.headers, content=raw.iter_stream()
                )
                if response.has_redirect_location:
                    target = _redirect_target(target, response, original)
                    continue
                if not response.is_success:
                    status = f"{response.status_code} {response.reason_phrase}".strip()
                    raise FetchError(f"{subject}: the server answered {status}", url=original)
                size = _download(response, write, policy, deadline, subject, original)
                return FetchResult(
                    str(target), _name(response, target), _media_type(response), size
                )
        except _NETWORK_ERRORS as error:
            raise FetchError(
                f"{subject}: {_network_problem(error, policy)}", url=original
            ) from error
    raise FetchError(
        f"{original}: the server redirected more than {policy.max_redirects} times; "
        "give the final URL instead",
        url=original,
    )


def post(
    url: str,
    body: bytes,
    headers: Iterable[tuple[str, str]],
    policy: FetchPolicy,
    *,
    resolver: Resolver | None = None,
) -> int:
    """Send ``body`` to ``url`` in an HTTP POST (a webhook call), under the address rules of
    :func:`fetch`: each hop's host resolved once, every address public or inside
    ``policy.allow``, the connection pinned to a checked address, redirects followed (the POST
    sent again to each checked target), the whole exchange within ``policy.timeout``. At most
    ``policy.max_size`` bytes of the answer are read, and then dropped.

    Returns the final answer's status code (any, 2xx or not). Raises :class:`FetchError` for a
    refused URL or address, a failed lookup or connection, too many redirects or a timeout.
    """
    deadline = _Deadline(time.monotonic() + policy.timeout)
    resolve = resolver or _getaddrinfo
    original = _shown(url.strip())
    target = _parse(url.strip(), subject=original, original=original)
    sent = [
        (b"User-Agent", b"gristmill"),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers),
        (b"Content-Length", str(len(body)).encode()),
    ]
    for hop in range(policy.max_redirects + 1):
        subject = f"{original} (redirected to {_shown(str(target))})" if hop else original
        addresses = _checked_addresses(target, policy, resolve, deadline, subject, original)
        try:
            with (
                _pool(target, addresses, deadline) as pool,
                pool.stream(
                    "POST",
                    _core_url(target),
                    headers=sent,
                    content=body,
                    extensions=_timeouts(policy),
                ) as raw,
            ):
                response = httpx.Response(
                    raw.status, headers=raw.headers, content=raw.iter_stream()
                )
                if response.has_redirect_location:
                    target = _redirect_target(target, response, original)
                    continue
                read = 0
                for chunk in response.iter_raw(_CHUNK_SIZE):
                    read += len(chunk)
                    if read > policy.max_size:
                        break
                    deadline.check(httpcore.ReadTimeout)
                return response.status_code
        except _NETWORK_ERRORS as error:
            if isinstance(error, httpcore.TimeoutException | httpx.TimeoutException):
                unit = "second" if policy.timeout == 1 else "seconds"
                problem = f"no answer within {policy.timeout:g} {unit}"
            else:
                problem = _network_problem(error, policy)
            raise FetchError(f"{subject}: {problem}", url=original) from error
    raise FetchError(
        f"{original}: the server redirected more than {policy.max_redirects} times",
        url=original,
    )


def _parse(url: str, *, subject: str, original: str) -> httpx.URL:
    def refuse(problem: str) -> FetchError:
        return FetchError(f"{subject}: {problem}", url=original)

    if not url:
        raise FetchError("no URL given: give an http:// or https:// URL", url=original)
    if len(url) > MAX_URL_LENGTH:
        raise refuse(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise refuse("this is not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise refuse("only http:// and https:// URLs can be fetched")
    if not parsed.raw_host:
        raise refuse("the URL has no host name")
    if parsed.userinfo:
        raise refuse("URLs with a user name or password are not accepted; upload the file instead")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise refuse("the port must be a number from 1 to 65535")
    return parsed


def _shown(url: str) -> str:
    # Messages are shown and logged: never repeat a password, nor pages of URL.
    url = _USERINFO.sub(r"\1***@", url)
    return url if len(url) <= _SHOWN_LENGTH else url[:_SHOWN_LENGTH] + "…"


def _redirect_target(current: httpx.URL, response: httpx.Response, original: str) -> httpx.URL:
    location = response.headers["location"].strip()
    if not _SCHEME.match(location):
        # A location that cannot be joined stays as sent, for _parse to refuse and show.
        with contextlib.suppress(httpx.InvalidURL):
            location = str(current.join(location))
    subject = f"{original} (redirected to {_shown(location)})"
    return _parse(location, subject=subject, original=original)


def _checked_addresses(
    url: httpx.URL,
    policy: FetchPolicy,
    resolve: Resolver,
    deadline: _Deadline,
    subject: str,
    original: str,
) -> list[str]:
    host = url.raw_host.decode("ascii")
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if literal:
        addresses = [host]
    else:
        port = url.port or (443 if url.scheme == "https" else 80)
        lookup = _lookup_pool().submit(resolve, host, port)
        try:
            addresses = lookup.result(timeout=max(0.0, deadline.at - time.monotonic()))
        except concurrent.futures.TimeoutError:
            lookup.cancel()  # if it has not started; a lookup under way ends on its own
            unit = "second" if policy.timeout == 1 else "seconds"
            raise FetchError(
                f"{subject}: looking up {url.host} took longer than {policy.timeout:g} {unit}",
                url=original,
            ) from None
        except (OSError, UnicodeError):  # UnicodeError: a label too long for DNS
            addresses = []
        if not addresses:
            raise FetchError(
                f"{subject}: the host name {url.host} could not be found; check the URL",
                url=original,
            )
    for address in addresses:
        if not _permitted(ipaddress.ip_address(address), policy.allow):
            where = address if literal else f"{url.host} has the address {address}, which"
            raise FetchError(
                f"{subject}: {where} is not a public address; only public addresses can be fetched",
                url=original,
            )
    return addresses


def _permitted(address: Address, allow: tuple[Network, ...]) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # These connect to the IPv4 address inside, so that address is the one to judge.
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in network for network in allow):
        return True
    if not _is_public(address):
        return False
    # 6to4 and Teredo tunnel to an IPv4 address that must be public too.
    if isinstance(address, ipaddress.IPv6Address):
        inner = [address.sixtofour, address.teredo[1] if address.teredo else None]
        return all(_is_public(ipv4) for ipv4 in inner if ipv4 is not None)
    return True


def _is_public(address: Address) -> bool:
    # is_global alone has changed between Python versions; the other flags make sure.
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
    )


def _lookup_pool() -> concurrent.futures.ThreadPoolExecutor:
    """Where host names are looked up, so that a fetch can stop waiting for a lookup at its
    deadline (the system resolver cannot be interrupted). A few threads, so that stuck lookups
    stay few; one pool per process, as a forked child inherits none of its parent's threads."""
    global _lookups
    with _lookups_lock:
        if _lookups is None or _lookups[0] != os.getpid():
            pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=_LOOKUP_THREADS, thread_name_prefix="gristmill-dns"
            )
            _lookups = (os.getpid(), pool)
        return _lookups[1]


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _download(
    response: httpx.Response,
    write: Callable[[bytes], object],
    policy: FetchPolicy,
    deadline: _Deadline,
    subject: str,
    original: str,
) -> int:
    too_large = FetchTooLargeError(
        f"{subject}: the file is larger than the limit of {human_size(policy.max_size)}",
        url=original,
    )
    # A compressed body's Content-Length says nothing of its decoded size, so only a plain one
    # allows refusing before the transfer.
    length = response.headers.get("content-length", "")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "identity" and length.isdigit() and int(length) > policy.max_size:
        raise too_large
    size = 0
    for chunk in response.iter_bytes(_CHUNK_SIZE):
        size += len(chunk)
        if size > policy.max_size:
            raise too_large
        deadline.check(httpcore.ReadTimeout)
        write(chunk)
    return size


def _name(response: httpx.Response, url: httpx.URL) -> str:
    disposition = response.headers.get("content-disposition")
    if disposition:
        # The email package reads RFC 2231 filename* parameters as well as plain ones.
        header = Message()
        header["content-disposition"] = disposition
        filename = header.get_filename()
        if filename:
            return filename
    return url.path.rsplit("/", 1)[-1] or url.host


def _media_type(response: httpx.Response) -> str | None:
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type or None


def _network_problem(error: Exception, policy: FetchPolicy) -> str:
    if isinstance(error, httpcore.TimeoutException | httpx.TimeoutException):
        unit = "second" if policy.timeout == 1 else "seconds"
        return f"the download did not finish within {policy.timeout:g} {unit}"
    if isinstance(error, _TLSError) and error.unverified:
        return "the server's TLS certificate could not be verified; check the URL"
    if isinstance(error, _TLSError):
        return "a secure (TLS) connection to the server could not be made; check the URL"
    if isinstance(error, httpcore.ConnectError):
        return "could not connect to the server; check the URL or try again later"
    if isinstance(error, httpcore.ProtocolError | httpx.DecodingError):
        return "the server sent a response that could not be read"
    return "the connection to the server broke off; try again later"


def _core_url(url: httpx.URL) -> httpcore.URL:
    return httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )


def _timeouts(policy: FetchPolicy) -> dict[str, object]:
    # Each network operation is also cut to what is left of the deadline (_DeadlineStream).
    return {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), policy.timeout)}


def _pool(url: httpx.URL, addresses: list[str], deadline: _Deadline) -> httpcore.ConnectionPool:
    # httpx's context, unlike httpcore's, honours SSL_CERT_FILE (for an intranet's own CA); made
    # only for https, as loading the CA bundle takes a while.
    return httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context() if url.scheme == "https" else None,
        network_backend=_PinnedBackend(addresses, deadline),
        max_connections=1,
        retries=0,
    )


class _Deadline:
    def __init__(self, at: float):
        self.at = at

    def check(self, expired: type[httpcore.TimeoutException]) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise expired("the fetch deadline has passed")
        return remaining

    def clamp(self, timeout: float | None, expired: type[httpcore.TimeoutException]) -> float:
        remaining = self.check(expired)
        return remaining if timeout is None else min(timeout, remaining)


class _PinnedBackend(httpcore.NetworkBackend):
    # The URL keeps its host name, so the Host header, SNI and certificate checks use it, while
    # the socket goes to an address checked for this hop rather than to a fresh DNS answer.
    def __init__(self, addresses: list[str], deadline: _Deadline):
        self._addresses = addresses
        self._deadline = deadline
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | None = None
        # Try each checked address in turn, as a client would: a host's IPv6 address may be
        # unreachable from here while its IPv4 one works.
        for address in self._addresses:
            budget = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._backend.connect_tcp(
                    address, port, budget, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                failure = error
                continue
            return _DeadlineStream(stream, self._deadline)
        assert failure is not None  # _checked_addresses never returns an empty list
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("fetches never use Unix sockets")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    # Cuts every read and write to the time left, so that a server sending a byte now and then
    # cannot stretch the fetch past its deadline.
    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline):
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        budget = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        try:
            tls = self._stream.start_tls(ssl_context, server_hostname, budget)
        except httpcore.ConnectError as error:
            raise _TLSError(error) from error
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _TLSError(httpcore.ConnectError):
    # Marks a failed handshake here, where its cause is still known: the connection pool
    # re-raises errors "from None", dropping it.
    def __init__(self, error: httpcore.ConnectError):
        super().__init__(*error.args)
        self.unverified = isinstance(error.__cause__, ssl.SSLCertVerificationError)
