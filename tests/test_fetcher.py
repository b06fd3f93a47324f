"""The SSRF-safe fetcher against real local servers: what it fetches, and what it refuses.

The servers are hand-written HTTP/1.1 on 127.0.0.1 (``asyncio.start_server``), so they
can misbehave on purpose: stall, lie about lengths, send endless or explosive bodies.
Each counts the connections it accepts, and a refusal is only believed when the server
it would have reached counted none.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import ipaddress
import shutil
import socket
import ssl
import subprocess
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from liveblog.fetcher import Fetched, Fetcher, FetchError, FetchRefused, address_allowed

pytestmark = pytest.mark.anyio

CAFE = "Café crème"
GZIPPED_TEXT = "the same sentence, over and over. " * 200


@functools.cache
def gzip_bomb() -> bytes:
    """20 MB of zeros in about 20 kB of gzip."""
    return gzip.compress(bytes(20_000_000), compresslevel=9)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes


def response(status: int, headers: dict[str, str], body: bytes = b"") -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"HTTP/1.1 {status} X\r\n{head}Connection: close\r\n\r\n".encode() + body


def redirect(status: int, location: str) -> bytes:
    return response(status, {"Location": location, "Content-Length": "0"})


@dataclass
class RawServer:
    """HTTP/1.1 by hand on 127.0.0.1; ``answer`` says what each path gets."""

    tls: ssl.SSLContext | None = None
    port: int = 0
    connections: int = 0
    seen: list[Seen] = field(default_factory=list)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:  # the stalling answers would otherwise sleep on
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    @property
    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.strip().split("\r\n")
            method, path, _ = request_line.split(" ")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen = Seen(method, path, headers, body)
            self.seen.append(seen)
            await self.answer(seen, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the fetcher hung up, as it should when it has had enough
        except asyncio.CancelledError:
            pass  # close() ends the stalling answers; asyncio would log a cancelled handler
        finally:
            self._tasks.discard(task)
            writer.close()

    async def answer(self, seen: Seen, writer: asyncio.StreamWriter) -> None:
        path = seen.path
        if path == "/hello":
            body = CAFE.encode("latin-1")
            headers = {
                "Content-Type": "Text/Plain; charset=ISO-8859-1",
                "Content-Length": str(len(body)),
                "Set-Cookie": "session=secret; Path=/",
            }
            writer.write(response(200, headers, body))
        elif path == "/echo":
            headers = {"Content-Type": "application/octet-stream"}
            writer.write(response(200, {**headers, "Content-Length": str(len(seen.body))}))
            writer.write(seen.body)
        elif path == "/redirect/hello":
            writer.write(redirect(302, "/hello"))
        elif path.startswith("/redirect/to/"):
            writer.write(redirect(302, unquote(path.removeprefix("/redirect/to/"))))
        elif path == "/redirect/slow":
            writer.write(redirect(302, "/slow-head"))
        elif path == "/redirect/metadata":
            writer.write(redirect(301, "http://169.254.169.254/latest/meta-data/"))
        elif path.startswith("/redirect/port/"):
            port = path.removeprefix("/redirect/port/")
            writer.write(redirect(307, f"http://127.0.0.1:{port}/hello"))
        elif path.startswith("/loop/"):
            number = int(path.removeprefix("/loop/"))
            writer.write(redirect(303, f"/loop/{number + 1}"))
        elif path == "/post-redirect":
            writer.write(redirect(307, "/echo"))
        elif path == "/slow-head":
            await asyncio.sleep(30)
        elif path == "/slow-body":
            writer.write(response(200, {"Content-Length": "100"}, b"0123456789"))
            await writer.drain()
            await asyncio.sleep(30)
        elif path == "/huge-length":
            # Announces 10 MB, sends 1 kB, then stalls: reading it would hit the deadline.
            writer.write(response(200, {"Content-Length": "10000000"}, bytes(1000)))
            await writer.drain()
            await asyncio.sleep(30)
        elif path == "/chunked-forever":
            writer.write(response(200, {"Transfer-Encoding": "chunked"}))
            chunk = b"%x\r\n%s\r\n" % (65536, bytes(65536))
            while True:  # until the fetcher hangs up
                writer.write(chunk)
                await writer.drain()
                # drain() returns at once while the kernel takes the bytes: without this
                # the loop would keep the event loop (the fetcher's too) to itself.
                await asyncio.sleep(0)
        elif path == "/gzip-bomb":
            bomb = gzip_bomb()
            headers = {"Content-Encoding": "gzip", "Content-Length": str(len(bomb))}
            writer.write(response(200, headers, bomb))
        elif path == "/gzip-forever":
            # A compressed stream that never ends: 1 MB of zeros per kilobyte sent.
            writer.write(
                response(200, {"Content-Encoding": "gzip", "Transfer-Encoding": "chunked"})
            )
            packer = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
            while True:  # until the fetcher hangs up
                data = packer.compress(bytes(1_000_000)) + packer.flush(zlib.Z_SYNC_FLUSH)
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                await writer.drain()
                await asyncio.sleep(0)
        elif path == "/gzip":
            body = gzip.compress(GZIPPED_TEXT.encode())
            writer.write(response(200, {"Content-Encoding": "gzip"}, body))
        elif path == "/raw-deflate":
            packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            body = packer.compress(GZIPPED_TEXT.encode()) + packer.flush()
            writer.write(response(200, {"Content-Encoding": "deflate"}, body))
        elif path == "/brotli":
            writer.write(response(200, {"Content-Encoding": "br"}, b"\x0b\x02\x80hi\x03"))
        elif path == "/garbage":
            writer.write(b"this is not HTTP at all\r\n\r\n")
        else:
            writer.write(response(404, {"Content-Length": "0"}))
        await writer.drain()


ServerFactory = Callable[..., Awaitable[RawServer]]
FetcherFactory = Callable[..., Fetcher]


@pytest.fixture
async def servers() -> AsyncIterator[ServerFactory]:
    started: list[RawServer] = []

    async def start(tls: ssl.SSLContext | None = None) -> RawServer:
        server = RawServer(tls=tls)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.close()


@pytest.fixture
async def server(servers: ServerFactory) -> RawServer:
    return await servers()


@pytest.fixture
async def fetchers() -> AsyncIterator[FetcherFactory]:
    made: list[Fetcher] = []

    def make(**options: Any) -> Fetcher:
        fetcher = Fetcher(**options)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        await fetcher.aclose()


def free_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


# What is fetched


async def test_an_allowed_local_server_is_fetched(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers(allow_hosts=[server.host])

    fetched = await fetcher.get(server.url("/hello"), headers={"Accept": "text/plain"})

    assert fetched.url == server.url("/hello")
    assert fetched.status == 200
    assert fetched.body == CAFE.encode("latin-1")
    assert fetched.content_type == "text/plain"
    assert fetched.text() == CAFE  # decoded as latin-1, as the header says, not UTF-8
    [seen] = server.seen
    assert seen.headers["host"] == server.host
    assert seen.headers["accept"] == "text/plain"
    assert seen.headers["user-agent"] == "liveblog (+https://github.com/liveblog)"

    # The cookie the server set is not sent back: nothing is kept between calls.
    await fetcher.get(server.url("/hello"))
    assert "cookie" not in server.seen[1].headers


async def test_an_allowed_name_is_resolved_and_sent_as_host(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers(allow_hosts=[f"LocalHost:{server.port}"], user_agent="tests/1")

    fetched = await fetcher.get(f"http://localhost:{server.port}/hello")

    assert fetched.status == 200
    assert fetched.url == f"http://localhost:{server.port}/hello"
    # Connected to the address, but the server is told the name.
    assert server.seen[0].headers["host"] == f"localhost:{server.port}"
    assert server.seen[0].headers["user-agent"] == "tests/1"


async def test_compressed_answers_are_decoded(server: RawServer, fetchers: FetcherFactory) -> None:
    fetcher = fetchers(allow_hosts=[server.host])

    assert (await fetcher.get(server.url("/gzip"))).text() == GZIPPED_TEXT
    # Raw deflate where a zlib stream is due: what some servers send, and browsers read.
    assert (await fetcher.get(server.url("/raw-deflate"))).text() == GZIPPED_TEXT
    assert server.seen[0].headers["accept-encoding"] == "gzip, deflate"
    with pytest.raises(FetchError, match="encoding we do not read"):
        await fetcher.get(server.url("/brotli"))


def test_fetched_text_and_content_type() -> None:
    def fetched(content_type: str | None, body: bytes) -> Fetched:
        headers = httpx.Headers({} if content_type is None else {"Content-Type": content_type})
        return Fetched(url="http://example.com/", status=200, headers=headers, body=body)

    assert fetched(None, b"x").content_type == ""
    assert fetched(None, "é".encode()).text() == "é"  # UTF-8 by default
    assert fetched('text/html;charset="windows-1252"', b"\x80").text() == "€"
    assert fetched("text/html; charset=no-such-charset", "é".encode()).text() == "é"
    assert fetched("text/html; charset=utf-8", b"\xff ok").text() == "\ufffd ok"
    assert fetched(" Application/JSON ; q=1", b"{}").content_type == "application/json"


# What is refused before anything is sent


async def test_local_addresses_are_refused_without_connecting(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers()  # the server is not allowed
    port = server.port
    urls = [
        server.url("/hello"),
        f"http://localhost:{port}/hello",
        f"http://127.1:{port}/hello",  # inet_aton's shorthand for 127.0.0.1
        f"http://2130706433:{port}/hello",  # and as one number
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::1]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://0.0.0.0:{port}/",
        "https://[fd00:ec2::254]/latest/meta-data/",
    ]
    for url in urls:
        clock = Stopwatch()
        with pytest.raises(FetchRefused, match="private or local address") as refused:
            await fetcher.get(url)
        assert clock.elapsed < 1, url
        assert str(refused.value).startswith("refused: "), url
    assert server.connections == 0


async def test_a_name_is_refused_for_its_address_and_a_literal_for_itself(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers()
    with pytest.raises(FetchRefused) as by_name:
        await fetcher.get(f"http://localhost:{server.port}/")
    assert str(by_name.value) == "refused: localhost resolves to a private or local address"
    with pytest.raises(FetchRefused) as literal:
        await fetcher.get("http://10.0.0.1/")
    assert str(literal.value) == "refused: 10.0.0.1 is a private or local address"


async def test_allowing_a_host_allows_that_port_only(
    servers: ServerFactory, fetchers: FetcherFactory
) -> None:
    allowed, other = await servers(), await servers()
    fetcher = fetchers(allow_hosts=[allowed.host])
    assert (await fetcher.get(allowed.url("/hello"))).status == 200
    with pytest.raises(FetchRefused):
        await fetcher.get(other.url("/hello"))
    with pytest.raises(FetchRefused):  # the address, by another name: not the same host
        await fetcher.get(f"http://localhost:{allowed.port}/hello")
    assert (allowed.connections, other.connections) == (1, 0)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://{host}/_GET%20/hello",
        "ftp://{host}/",
        "data:text/plain,hello",
        "javascript:alert(1)",
        "http://user:pw@{host}/hello",
        "http://user@{host}/hello",
        "{host}/hello",  # no scheme
        "//{host}/hello",
        "http:///hello",  # no host
        "http://{host}\\@example.com/",
        "http://{host}/hello world",
        "http://{host}/hello\r\nX-Injected: 1",
        "http://{host}/\x00",
        "http://127.0.0.1:99999/",
    ],
)
async def test_urls_we_do_not_fetch_are_refused(
    url: str, server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers(allow_hosts=[server.host])  # even the allowed server
    with pytest.raises(FetchRefused, match=r"^refused: "):
        await fetcher.get(url.format(host=server.host))
    assert server.connections == 0


def test_allow_hosts_must_be_host_and_port() -> None:
    with pytest.raises(ValueError, match="host:port"):
        Fetcher(allow_hosts=["example.com"])
    with pytest.raises(TypeError):
        Fetcher(allow_hosts="example.com:80")


# Redirects


async def test_a_redirect_is_followed_and_the_final_url_reported(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers(allow_hosts=[server.host])
    fetched = await fetcher.get(server.url("/redirect/hello"))
    assert fetched.status == 200
    assert fetched.url == server.url("/hello")
    assert fetched.text() == CAFE
    assert server.paths == ["/redirect/hello", "/hello"]


async def test_a_redirect_is_checked_like_a_typed_url(
    servers: ServerFactory, fetchers: FetcherFactory
) -> None:
    allowed, other = await servers(), await servers()
    fetcher = fetchers(allow_hosts=[allowed.host])

    with pytest.raises(FetchRefused, match=r"169\.254\.169\.254 is a private or local address"):
        await fetcher.get(allowed.url("/redirect/metadata"))
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.1 is a private or local address"):
        await fetcher.get(allowed.url(f"/redirect/port/{other.port}"))

    assert allowed.paths == ["/redirect/metadata", f"/redirect/port/{other.port}"]
    assert other.connections == 0


@pytest.mark.parametrize(
    "location",
    [
        "http://user:pw@{host}/hello",
        "gopher://{host}/_hello",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        # httpx itself refuses this one, as a malformed answer (it parses every Location,
        # followed or not): a FetchError, but not a FetchRefused.
        "http://{host}\\hello",
    ],
)
async def test_a_redirect_to_a_url_we_do_not_fetch_is_not_followed(
    location: str, server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers(allow_hosts=[server.host])
    redirecting = "/redirect/to/" + quote(location.format(host=server.host), safe="")
    with pytest.raises(FetchError):
        await fetcher.get(server.url(redirecting))
    assert server.paths == [redirecting]


async def test_credentials_are_not_sent_on_to_another_origin(
    servers: ServerFactory, fetchers: FetcherFactory
) -> None:
    first, second = await servers(), await servers()
    fetcher = fetchers(allow_hosts=[first.host, second.host])
    headers = {"Authorization": "Bearer t0ken", "Accept": "text/plain"}

    fetched = await fetcher.get(first.url(f"/redirect/port/{second.port}"), headers=headers)

    assert fetched.url == second.url("/hello")
    assert first.seen[0].headers["authorization"] == "Bearer t0ken"
    assert "authorization" not in second.seen[0].headers
    assert second.seen[0].headers["accept"] == "text/plain"
    assert second.seen[0].headers["host"] == second.host


async def test_too_many_redirects(server: RawServer, fetchers: FetcherFactory) -> None:
    fetcher = fetchers(allow_hosts=[server.host], max_redirects=3)
    with pytest.raises(FetchError, match="redirects more than 3 times"):
        await fetcher.get(server.url("/loop/0"))
    assert server.paths == ["/loop/0", "/loop/1", "/loop/2", "/loop/3"]


async def test_post_sends_body_and_headers_and_does_not_follow_redirects(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers(allow_hosts=[server.host])
    payload = b'{"event": "update.published"}'
    headers = {"Content-Type": "application/json", "X-Liveblog-Signature": "sha256=abc"}

    fetched = await fetcher.post(server.url("/echo"), content=payload, headers=headers)
    assert (fetched.status, fetched.body) == (200, payload)
    [seen] = server.seen
    assert (seen.method, seen.body) == ("POST", payload)
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-liveblog-signature"] == "sha256=abc"

    moved = await fetcher.post(server.url("/post-redirect"), content=payload)
    assert moved.status == 307
    assert moved.headers["location"] == "/echo"
    assert moved.url == server.url("/post-redirect")
    assert server.paths == ["/echo", "/post-redirect"]


# Bounded: time, size, rate


async def test_a_server_that_does_not_answer_hits_the_deadline(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers(allow_hosts=[server.host], timeout=0.5)
    clock = Stopwatch()
    with pytest.raises(FetchError, match=r"^127\.0\.0\.1 did not answer within 0\.5 s$"):
        await fetcher.get(server.url("/slow-head"))
    assert 0.4 < clock.elapsed < 1.5

    # A body that stops halfway, and the per-call deadline over the fetcher's.
    slow = fetchers(allow_hosts=[server.host], timeout=30)
    clock = Stopwatch()
    with pytest.raises(FetchError, match=r"did not answer within 0\.3 s"):
        await slow.get(server.url("/slow-body"), timeout=0.3)
    assert clock.elapsed < 1.3


async def test_the_deadline_covers_the_whole_redirect_chain(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers(allow_hosts=[server.host], timeout=0.5)
    clock = Stopwatch()
    with pytest.raises(FetchError, match=r"did not answer within 0\.5 s"):
        await fetcher.get(server.url("/redirect/slow"))
    assert clock.elapsed < 1.5
    assert server.paths == ["/redirect/slow", "/slow-head"]


async def test_a_body_over_the_cap_is_refused(server: RawServer, fetchers: FetcherFactory) -> None:
    fetcher = fetchers(allow_hosts=[server.host], max_bytes=1_000_000, timeout=5)

    clock = Stopwatch()  # refused on the announced length, without waiting for the body
    with pytest.raises(FetchError, match="larger than 1000000 bytes"):
        await fetcher.get(server.url("/huge-length"))
    assert clock.elapsed < 1

    clock = Stopwatch()
    with pytest.raises(FetchError, match="larger than 1000000 bytes"):
        await fetcher.get(server.url("/chunked-forever"))
    assert clock.elapsed < 2

    # About 20 kB on the wire, 20 MB inflated.
    assert len(gzip_bomb()) < 1_000_000
    with pytest.raises(FetchError, match="larger than 1000000 bytes"):
        await fetcher.get(server.url("/gzip-bomb"))

    # A compressed stream without end: stopped once the inflated bytes pass the cap, long
    # before the compressed ones do (1 MB of those would inflate to 1 GB).
    clock = Stopwatch()
    with pytest.raises(FetchError, match="larger than 1000000 bytes"):
        await fetcher.get(server.url("/gzip-forever"))
    assert clock.elapsed < 1

    # The per-call cap over the fetcher's.
    with pytest.raises(FetchError, match="larger than 5 bytes"):
        await fetcher.get(server.url("/hello"), max_bytes=5)
    assert (await fetcher.get(server.url("/hello"), max_bytes=10)).text() == CAFE


async def test_requests_to_one_host_are_rate_limited(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers(allow_hosts=[server.host, f"localhost:{server.port}"], per_host_per_minute=3)
    for _ in range(3):
        assert (await fetcher.get(server.url("/hello"))).status == 200
    with pytest.raises(
        FetchError, match=r"too many requests to 127\.0\.0\.1; try again in a minute"
    ):
        await fetcher.get(server.url("/hello"))
    assert server.connections == 3
    # Per host: the same server by another name has its own count.
    assert (await fetcher.get(f"http://localhost:{server.port}/hello")).status == 200


async def test_every_hop_counts_against_the_rate(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    fetcher = fetchers(allow_hosts=[server.host], per_host_per_minute=2)
    assert (await fetcher.get(server.url("/redirect/hello"))).status == 200
    with pytest.raises(FetchError, match="too many requests"):
        await fetcher.get(server.url("/hello"))
    assert server.paths == ["/redirect/hello", "/hello"]


# Failures of the other side


async def test_network_failures_are_fetch_errors_naming_the_host(
    server: RawServer, fetchers: FetcherFactory
) -> None:
    closed = free_port()
    fetcher = fetchers(allow_hosts=[server.host, f"127.0.0.1:{closed}"])
    with pytest.raises(FetchError, match=r"^could not connect to 127\.0\.0\.1$"):
        await fetcher.get(f"http://127.0.0.1:{closed}/")
    with pytest.raises(FetchError, match=r"^127\.0\.0\.1 sent an answer that is not valid HTTP$"):
        await fetcher.get(server.url("/garbage"))
    with pytest.raises(FetchError, match=r"^could not find the host no-such-host\.invalid$"):
        await fetchers().get("http://no-such-host.invalid/")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (so not one the fetcher trusts)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_uses_the_name_while_connecting_to_the_address(
    servers: ServerFactory, fetchers: FetcherFactory, certificate: tuple[Path, Path]
) -> None:
    names: list[str | None] = []
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(*certificate)

    def record_sni(_: Any, name: str | None, __: ssl.SSLContext) -> None:
        names.append(name)

    tls.sni_callback = record_sni
    server = await servers(tls)
    fetcher = fetchers(allow_hosts=[f"localhost:{server.port}"])

    # The certificate is checked (and refused: self-signed), for the name that was typed.
    with pytest.raises(FetchError, match=r"^could not connect to localhost: its certificate"):
        await fetcher.get(f"https://localhost:{server.port}/hello")
    assert names == ["localhost"]
    assert server.seen == []


# address_allowed


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),  # mapped, of a public address
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("127.0.0.1", False),
        ("127.255.255.254", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("172.31.255.255", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
        ("169.254.169.254", False),  # cloud metadata
        ("0.0.0.0", False),
        ("0.1.2.3", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.1", False),  # documentation
        ("198.51.100.7", False),
        ("203.0.113.9", False),
        ("198.18.0.1", False),  # benchmarking
        ("::1", False),
        ("::", False),
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated)
        ("fe80::1", False),
        ("fec0::1", False),  # site-local (deprecated)
        ("fc00::1", False),
        ("fd00:ec2::254", False),  # AWS metadata over IPv6
        ("ff02::1", False),
        ("ff0e::1", False),  # global-scope multicast
        ("2001:db8::1", False),  # documentation
        ("::ffff:10.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("2002:7f00:0001::", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b:1::a00:1", False),  # local-use NAT64
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo (of 127.0.0.1)
    ],
)
def test_address_allowed(address: str, allowed: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address)) is allowed


def test_teredo_example_wraps_loopback() -> None:
    # The Teredo row above really is one, and of 127.0.0.1 (client bits inverted).
    teredo = ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:80ff:fffe").teredo
    assert teredo is not None and teredo[1] == ipaddress.IPv4Address("127.0.0.1")
