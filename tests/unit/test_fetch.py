"""Fetching a URL input: public addresses only, checked on each hop, pinned, capped in size, time.

Each test runs real HTTP servers on 127.0.0.1 (a loopback address, so the policy allows
``127.0.0.1/32`` where a test needs to reach them); host names go through an injected resolver,
so no test needs DNS or the internet.
"""

from __future__ import annotations

import gzip
import io
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gristmill.engine.fetcher import (
    FetchPolicy,
    FetchResult,
    check_literal_address,
    check_url,
    fetch,
    parse_networks,
)
from gristmill.errors import FetchError

KiB = 1024
MiB = 1024 * KiB

Route = Callable[[BaseHTTPRequestHandler], None]


class LocalServer:
    """An HTTP/1.1 server on 127.0.0.1 answering each path with the route registered for it."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.hosts: list[str] = []
        self.release = threading.Event()
        """Set at teardown; handlers that hang wait on it."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.hosts.append(self.headers.get("Host", ""))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients hanging up mid-answer is what several tests are about

        self.httpd = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def reply(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200, **headers: str) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str) -> Route:
    return lambda handler: reply(handler, b"", 302, Location=location)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    try:
        yield local
    finally:
        local.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for example.test, and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = (
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
        " -subj /CN=example.test -addext subjectAltName=DNS:example.test"
    )
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalServer]:
    """An HTTPS server for example.test on 127.0.0.1, its certificate trusted by fetches."""
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx's SSL contexts read it
    local = LocalServer(tls=context)
    try:
        yield local
    finally:
        local.close()


@pytest.fixture
def policy() -> FetchPolicy:
    """Reaches the test servers on 127.0.0.1 only."""
    return FetchPolicy(max_size=1 * MiB, timeout=5.0, allow=parse_networks("127.0.0.1/32"))


def fetched(url: str, policy: FetchPolicy, **options: Any) -> tuple[FetchResult, bytes]:
    body = bytearray()
    result = fetch(url, body.extend, policy, **options)
    return result, bytes(body)


def refusal(url: str, policy: FetchPolicy, **options: Any) -> str:
    """The message of the FetchError that fetching ``url`` raises."""
    with pytest.raises(FetchError) as caught:
        fetch(url, bytearray().extend, policy, **options)
    return caught.value.message


def resolving_to(*addresses: str) -> Callable[[str, int], list[str]]:
    return lambda host, port: list(addresses)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Successful fetches


def test_fetch_writes_the_body_to_the_sink_and_names_the_file_after_the_path(
    server: LocalServer, policy: FetchPolicy
) -> None:
    server.routes["/exports/data.csv"] = lambda h: reply(h, b"a,b\n1,2\n")

    result, body = fetched(server.url("/exports/data.csv"), policy)

    assert body == b"a,b\n1,2\n"
    assert result == FetchResult(
        url=server.url("/exports/data.csv"), name="data.csv", media_type=None, size=8
    )


def test_fetch_names_the_file_from_content_disposition(
    server: LocalServer, policy: FetchPolicy
) -> None:
    server.routes["/download?id=7"] = lambda h: reply(
        h, b"{}", Content_Disposition='attachment; filename="report 7.json"'
    )

    result, _ = fetched(server.url("/download?id=7"), policy)

    assert result.name == "report 7.json"


def test_fetch_reads_an_rfc_5987_content_disposition_filename(
    server: LocalServer, policy: FetchPolicy
) -> None:
    server.routes["/x"] = lambda h: reply(
        h, b"{}", Content_Disposition="attachment; filename*=UTF-8''na%C3%AFve.json"
    )

    result, _ = fetched(server.url("/x"), policy)

    assert result.name == "naïve.json"


def test_fetch_names_the_file_after_the_host_when_the_path_is_empty(
    server: LocalServer, policy: FetchPolicy
) -> None:
    server.routes["/"] = lambda h: reply(h, b"<html></html>")

    result, _ = fetched(server.url("/"), policy)

    assert result.name == "127.0.0.1"


def test_fetch_reports_the_media_type_without_parameters(
    server: LocalServer, policy: FetchPolicy
) -> None:
    server.routes["/t"] = lambda h: reply(h, b"hi", Content_Type="Text/Plain; charset=utf-8")

    result, _ = fetched(server.url("/t"), policy)

    assert result.media_type == "text/plain"


def test_fetch_writes_to_a_binary_stream(server: LocalServer, policy: FetchPolicy) -> None:
    server.routes["/b"] = lambda h: reply(h, b"\x00\x01\x02")
    stream = io.BytesIO()

    fetch(server.url("/b"), stream, policy)

    assert stream.getvalue() == b"\x00\x01\x02"


def test_fetch_decompresses_a_gzip_body(server: LocalServer, policy: FetchPolicy) -> None:
    server.routes["/z"] = lambda h: reply(h, gzip.compress(b"x" * 1000), Content_Encoding="gzip")

    result, body = fetched(server.url("/z"), policy)

    assert body == b"x" * 1000
    assert result.size == 1000


def test_fetch_follows_a_relative_redirect_and_reports_the_final_url(
    server: LocalServer, policy: FetchPolicy
) -> None:
    server.routes["/old/data.csv"] = redirect("../new/data.csv")
    server.routes["/new/data.csv"] = lambda h: reply(h, b"moved")

    result, body = fetched(server.url("/old/data.csv"), policy)

    assert body == b"moved"
    assert result.url == server.url("/new/data.csv")


def test_fetch_resolves_each_hop_once_and_connects_to_the_resolved_address(
    server: LocalServer, policy: FetchPolicy
) -> None:
    # Given a name only the injected resolver knows, and a redirect to a second path on it
    server.routes["/start"] = redirect("/final")
    server.routes["/final"] = lambda h: reply(h, b"pinned")
    lookups: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return ["127.0.0.1"]

    # When it is fetched
    result, body = fetched(server.url("/start", host="example.test"), policy, resolver=resolver)

    # Then each hop looked the name up once, connected to the address it gave, and kept the name
    # in the Host header
    assert body == b"pinned"
    assert lookups == [("example.test", server.port), ("example.test", server.port)]
    assert server.hosts == [f"example.test:{server.port}"] * 2
    assert result.url == server.url("/final", host="example.test")


# Addresses refused


def test_loopback_is_refused_by_default(server: LocalServer) -> None:
    server.routes["/"] = lambda h: reply(h, b"secret")
    url = server.url("/")

    message = refusal(url, FetchPolicy(max_size=MiB))

    assert message == (
        f"{url}: 127.0.0.1 is not a public address; only public addresses can be fetched"
    )
    assert server.hosts == []


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://10.0.0.1/data.csv", "10.0.0.1"),
        ("http://192.168.1.20/data.csv", "192.168.1.20"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::1]/data.csv", "::1"),
        ("http://[::ffff:127.0.0.1]/data.csv", "::ffff:127.0.0.1"),
        ("http://0.0.0.0/data.csv", "0.0.0.0"),
        ("http://[fd00::1]/data.csv", "fd00::1"),
        ("http://224.0.0.1/data.csv", "224.0.0.1"),
    ],
)
def test_a_non_public_address_in_the_url_is_refused(url: str, address: str) -> None:
    message = refusal(url, FetchPolicy(max_size=MiB))

    assert message == (
        f"{url}: {address} is not a public address; only public addresses can be fetched"
    )


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.4",
        "100.64.0.1",
        "169.254.169.254",
        "127.0.0.1",
        "::1",
        "::ffff:10.0.0.1",
        "fe80::1",
        "0.0.0.0",
        "2002:a00:1::",
        "64:ff9b::a00:1",
        "233.252.0.1",
    ],
)
def test_a_host_name_resolving_to_a_non_public_address_is_refused(address: str) -> None:
    url = "http://files.example.test/data.csv"

    message = refusal(url, FetchPolicy(max_size=MiB), resolver=resolving_to(address))

    assert message == (
        f"{url}: files.example.test has the address {address}, which is not a public address; "
        "only public addresses can be fetched"
    )


def test_a_host_name_is_refused_when_any_of_its_addresses_is_not_public() -> None:
    url = "http://files.example.test/data.csv"

    message = refusal(
        url, FetchPolicy(max_size=MiB), resolver=resolving_to("93.184.215.14", "10.0.0.7")
    )

    assert message == (
        f"{url}: files.example.test has the address 10.0.0.7, which is not a public address; "
        "only public addresses can be fetched"
    )


def test_a_host_name_too_long_for_dns_is_reported_as_not_found() -> None:
    url = f"http://{'a' * 64}.example.com/"

    message = refusal(url, FetchPolicy(max_size=MiB))

    assert message == (
        f"{url}: the host name {'a' * 64}.example.com could not be found; check the URL"
    )


def test_a_host_name_that_cannot_be_resolved_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    message = refusal("http://nowhere.example.test/x", FetchPolicy(max_size=MiB), resolver=resolver)

    assert message == (
        "http://nowhere.example.test/x: the host name nowhere.example.test could not be found; "
        "check the URL"
    )


def test_a_host_name_lookup_that_hangs_ends_at_the_fetch_deadline() -> None:
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(60)  # a resolver that never answers, until the test ends
        return ["93.184.215.14"]

    try:
        url = "http://slow-dns.example.test/x"
        message = refusal(url, FetchPolicy(max_size=MiB, timeout=0.2), resolver=hanging)
    finally:
        release.set()
    assert message == f"{url}: looking up slow-dns.example.test took longer than 0.2 seconds"


def test_a_redirect_to_an_address_outside_the_allowed_networks_is_refused(
    server: LocalServer, policy: FetchPolicy
) -> None:
    # 127.0.0.2 would reach this very server (Linux routes all of 127/8 to loopback), but the
    # policy allows 127.0.0.1 only
    other = server.url("/", host="127.0.0.2")
    server.routes["/start"] = redirect(other)

    message = refusal(server.url("/start"), policy)

    assert message == (
        f"{server.url('/start')} (redirected to {other}): 127.0.0.2 is not a public address; "
        "only public addresses can be fetched"
    )
    assert server.hosts == [f"127.0.0.1:{server.port}"]


def test_a_redirect_to_a_file_url_is_refused(server: LocalServer, policy: FetchPolicy) -> None:
    server.routes["/start"] = redirect("file:///etc/passwd")

    message = refusal(server.url("/start"), policy)

    assert message == (
        f"{server.url('/start')} (redirected to file:///etc/passwd): "
        "only http:// and https:// URLs can be fetched"
    )


def test_more_redirects_than_the_policy_allows_are_refused(
    server: LocalServer, policy: FetchPolicy
) -> None:
    for hop in range(3):
        server.routes[f"/{hop}"] = redirect(f"/{hop + 1}")
    server.routes["/3"] = lambda h: reply(h, b"too far")
    strict = FetchPolicy(max_size=MiB, max_redirects=2, allow=policy.allow)

    message = refusal(server.url("/0"), strict)

    assert message == (
        f"{server.url('/0')}: the server redirected more than 2 times; give the final URL instead"
    )


# Size and time caps


def test_a_content_length_over_the_limit_is_refused_before_the_transfer(
    server: LocalServer, policy: FetchPolicy
) -> None:
    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(MiB + 1))
        handler.end_headers()
        handler.wfile.flush()
        server.release.wait(10)  # sends no body: reading any would run into the timeout

    server.routes["/big"] = huge

    message = refusal(server.url("/big"), policy)

    assert message == f"{server.url('/big')}: the file is larger than the limit of 1 MiB"


def test_a_chunked_body_is_stopped_once_it_passes_the_limit(
    server: LocalServer, policy: FetchPolicy
) -> None:
    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"x" * KiB
        try:
            while not server.release.is_set():
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the client hung up, as it should

    server.routes["/endless"] = endless
    small = FetchPolicy(max_size=64 * KiB, timeout=5.0, allow=policy.allow)
    body = bytearray()

    with pytest.raises(FetchError) as caught:
        fetch(server.url("/endless"), body.extend, small)

    assert caught.value.message == (
        f"{server.url('/endless')}: the file is larger than the limit of 64 KiB"
    )
    assert len(body) <= 64 * KiB


def test_the_limit_counts_decompressed_bytes(server: LocalServer, policy: FetchPolicy) -> None:
    bomb = gzip.compress(b"\0" * (4 * MiB))
    server.routes["/bomb"] = lambda h: reply(h, bomb, Content_Encoding="gzip")
    body = bytearray()

    with pytest.raises(FetchError) as caught:
        fetch(server.url("/bomb"), body.extend, policy)

    assert caught.value.message == (
        f"{server.url('/bomb')}: the file is larger than the limit of 1 MiB"
    )
    assert len(bomb) < 64 * KiB
    assert len(body) <= MiB


def test_a_slow_drip_body_is_stopped_by_the_total_timeout(
    server: LocalServer, policy: FetchPolicy
) -> None:
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"x")
        handler.wfile.flush()
        server.release.wait(10)

    server.routes["/drip"] = drip
    quick = FetchPolicy(max_size=MiB, timeout=0.5, allow=policy.allow)
    started = time.monotonic()

    message = refusal(server.url("/drip"), quick)

    assert message == f"{server.url('/drip')}: the download did not finish within 0.5 seconds"
    assert time.monotonic() - started < 1.5


# Failures reported


def test_an_error_status_is_reported_with_its_code_and_reason(
    server: LocalServer, policy: FetchPolicy
) -> None:
    message = refusal(server.url("/missing.csv"), policy)

    assert message == f"{server.url('/missing.csv')}: the server answered 404 Not Found"


def test_a_refused_connection_is_reported(policy: FetchPolicy) -> None:
    url = f"http://127.0.0.1:{closed_port()}/data.csv"

    message = refusal(url, policy)

    assert message == f"{url}: could not connect to the server; check the URL or try again later"


def test_a_failed_tls_handshake_is_reported(server: LocalServer, policy: FetchPolicy) -> None:
    # The test server speaks plain HTTP, so the TLS handshake fails
    url = f"https://127.0.0.1:{server.port}/"

    message = refusal(url, policy)

    assert message == (
        f"{url}: a secure (TLS) connection to the server could not be made; check the URL"
    )


def test_https_checks_the_certificate_against_the_host_name_while_connecting_to_the_address(
    tls_server: LocalServer, policy: FetchPolicy
) -> None:
    tls_server.routes["/data.csv"] = lambda h: reply(h, b"secure")
    url = f"https://example.test:{tls_server.port}/data.csv"

    result, body = fetched(url, policy, resolver=resolving_to("127.0.0.1"))

    assert body == b"secure"
    assert result.url == url


def test_https_refuses_a_certificate_for_another_host_name(
    tls_server: LocalServer, policy: FetchPolicy
) -> None:
    # Given a name resolving to the example.test server, whose certificate does not name it
    url = f"https://other.test:{tls_server.port}/data.csv"

    message = refusal(url, policy, resolver=resolving_to("127.0.0.1"))

    assert message == f"{url}: the server's TLS certificate could not be verified; check the URL"


# URL syntax


def test_check_url_normalises_the_scheme_and_host() -> None:
    assert check_url("  HTTPS://Example.COM/Data.csv?x=1 ") == "https://example.com/Data.csv?x=1"


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/data.csv", "gopher://example.com:70/1", "data:,hi"],
)
def test_check_url_refuses_schemes_other_than_http_and_https(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        check_url(url)

    assert caught.value.message == f"{url}: only http:// and https:// URLs can be fetched"


def test_check_url_refuses_credentials_without_repeating_them() -> None:
    with pytest.raises(FetchError) as caught:
        check_url("http://alice:s3cret@example.com/data.csv")

    assert caught.value.message == (
        "http://***@example.com/data.csv: URLs with a user name or password are not accepted; "
        "upload the file instead"
    )
    assert caught.value.url == "http://***@example.com/data.csv"


def test_check_url_refuses_a_url_without_a_host() -> None:
    with pytest.raises(FetchError) as caught:
        check_url("http:///data.csv")

    assert caught.value.message == "http:///data.csv: the URL has no host name"


def test_check_url_refuses_an_empty_url() -> None:
    with pytest.raises(FetchError) as caught:
        check_url("  ")

    assert caught.value.message == "no URL given: give an http:// or https:// URL"


def test_check_url_refuses_a_url_over_2048_characters() -> None:
    url = "https://example.com/" + "a" * 2029
    assert check_url(url[:-1]) == url[:-1]

    with pytest.raises(FetchError) as caught:
        check_url(url)

    assert caught.value.message == f"{url[:200]}…: the URL is longer than 2048 characters"


def test_check_url_refuses_port_zero() -> None:
    with pytest.raises(FetchError) as caught:
        check_url("http://example.com:0/")

    assert caught.value.message == (
        "http://example.com:0/: the port must be a number from 1 to 65535"
    )


def test_fetch_checks_the_url_syntax_first() -> None:
    message = refusal("ftp://example.com/data.csv", FetchPolicy(max_size=MiB))

    assert message == "ftp://example.com/data.csv: only http:// and https:// URLs can be fetched"


# Policy


def test_parse_networks_reads_networks_and_single_addresses() -> None:
    assert [str(n) for n in parse_networks(" 10.1.0.0/16, 127.0.0.1 ,,fd00::/8")] == [
        "10.1.0.0/16",
        "127.0.0.1/32",
        "fd00::/8",
    ]


def test_parse_networks_names_the_item_that_is_not_a_network() -> None:
    with pytest.raises(ValueError, match=r"^'intranet' is not a network like 10\.1\.0\.0/16$"):
        parse_networks("10.0.0.0/8, intranet")


# -- refusing an address before anything is queued ------------------------------------------


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8000/x.csv", "127.0.0.1"),
        ("http://10.1.2.3/x.csv", "10.1.2.3"),
        ("http://[::1]/x.csv", "::1"),
    ],
)
def test_a_literal_address_that_is_not_public_is_refused_without_the_network(
    url: str, address: str
) -> None:
    with pytest.raises(FetchError) as refused:
        check_literal_address(url)
    assert refused.value.message == (
        f"{url}: {address} is not a public address; only public addresses can be fetched"
    )


def test_a_literal_address_inside_an_allowed_network_is_accepted() -> None:
    check_literal_address("http://10.1.2.3/x.csv", parse_networks("10.1.0.0/16"))


def test_a_host_name_is_left_for_the_fetch_to_check() -> None:
    check_literal_address("http://localhost/x.csv")
