"""The one way the server fetches a URL that a user typed: link embeds now, webhooks later.

Fetching a URL on someone's behalf lets them aim our server at addresses they cannot
reach themselves (server-side request forgery): the cloud metadata service at
169.254.169.254 that hands out credentials, an admin port on localhost, a database on the
private network. So every such fetch goes through ``Fetcher``, which refuses:

- schemes other than http and https, URLs with credentials, and URLs with backslashes,
  whitespace or control characters (parsers disagree about those, and a disagreement
  between the check and the fetch is a way around the check);
- hosts that resolve to any address that is not public (``address_allowed``), unless
  the operator listed that ``host:port`` in ``allow_hosts``.

The name is resolved once per request, every address is checked, and the connection is
made to a checked address, with the name only in the ``Host`` header and in TLS (SNI and
the certificate check). Resolving again when connecting would let a name answer a public
address to the check and 127.0.0.1 to the connection (DNS rebinding). Redirects are
followed by hand, each new URL checked as if it had been typed.

A fetch is also bounded in what it costs: one deadline for the whole call (DNS,
connecting, redirects, reading), a cap on the body (decoded: a small gzip can inflate to
gigabytes, so we inflate it ourselves, never past the cap), and a per-host rate so that
editors (or a loop of webhooks) cannot make us hammer someone else's server.

Every failure is a ``FetchError`` whose message can be shown to an editor as it is.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
import socket
import ssl
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import anyio
import httpx

from liveblog.ratelimit import MemoryLimiter

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Hosts whose request counts are remembered at once; past it the idle ones are forgotten.
MAX_HOSTS = 10_000
# Browsers read a backslash as a slash and drop tabs and newlines; other parsers do not.
_UNSAFE = re.compile(r"[\\\s\x00-\x1f\x7f]")
# NAT64 (RFC 6052): the last 32 bits are an IPv4 address, reached through a gateway.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Headers that carry the caller's credentials: not sent on to another origin by a redirect.
_CREDENTIALS = ("authorization", "proxy-authorization", "cookie")


class FetchError(Exception):
    """Any failure; str(exc) is a short sentence fit to show an editor."""


class FetchRefused(FetchError):
    """The URL or an address it resolves to is not one we fetch (scheme, credentials,
    private address)."""


@dataclass(frozen=True)
class Fetched:
    url: str  # final URL after redirects
    status: int
    headers: httpx.Headers  # as received (Content-Encoding included, though body is decoded)
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type, lowercased and without parameters; "" if none was sent."""
        media_type: str = self.headers.get("content-type", "")
        return media_type.partition(";")[0].strip().lower()

    def text(self) -> str:
        """The body decoded with the charset from Content-Type, else UTF-8."""
        charset = "utf-8"
        for parameter in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset":
                charset = value.strip().strip("\"'") or charset
        try:
            codecs.lookup(charset)
        except LookupError:  # a charset Python does not know: UTF-8 is the best guess
            charset = "utf-8"
        return self.body.decode(charset, errors="replace")


def address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """False for loopback, private (RFC 1918, fc00::/7), link-local (incl. 169.254.169.254
    metadata), shared 100.64/10, multicast, unspecified, reserved, documentation,
    6to4/Teredo/NAT64 wrapping a refused v4, IPv4-mapped IPv6 of a refused v4, and the AWS
    IPv6 metadata fd00:ec2::254. Essentially: is_global and not multicast, after
    unwrapping mapped/embedded v4."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that IPv4 address (the kernel,
        # a 6to4 relay or a NAT64 gateway translates), so it is judged by it.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_allowed(embedded)
        if address.teredo is not None:  # a tunnel to a client we cannot check
            return False
        if address.is_site_local:  # fec0::/10: deprecated, but still not public
            return False
    # is_global alone lets multicast through, and (for IPv6) reserved ranges such as the
    # IPv4-compatible ::a.b.c.d.
    return address.is_global and not address.is_multicast and not address.is_reserved


def _host_port(entry: str) -> tuple[str, int]:
    """An ``allow_hosts`` entry, ``host:port`` (``[v6]:port`` or ``v6:port``), as a key."""
    host, separator, port = entry.strip().lower().rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"allow_hosts entries are host:port, not {entry!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _checked_url(url: str | httpx.URL) -> httpx.URL:
    """``url`` parsed, if it is one we may fetch; checks the URL alone, not its address."""
    if _UNSAFE.search(str(url)):
        raise FetchRefused(
            "refused: the address contains spaces, backslashes or control characters"
        )
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except httpx.InvalidURL:
        raise FetchRefused("refused: that is not a valid web address") from None
    if parsed.scheme not in DEFAULT_PORTS:
        if not parsed.scheme:
            raise FetchRefused("refused: the address must start with http:// or https://")
        raise FetchRefused(
            f"refused: only http and https addresses are fetched, not {parsed.scheme}:"
        )
    if not parsed.raw_host:
        raise FetchRefused("refused: the address has no host")
    if parsed.userinfo:
        raise FetchRefused("refused: addresses with a user name or password are not fetched")
    if not 0 < _port(parsed) < 65536:
        raise FetchRefused("refused: the address has an invalid port")
    return parsed


def _host(url: httpx.URL) -> str:
    # The ASCII form (punycode for international names): what DNS, Host and SNI use.
    return url.raw_host.decode("ascii").lower()


def _port(url: httpx.URL) -> int:
    return url.port or DEFAULT_PORTS[url.scheme]


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, _host(url), _port(url)


class _Inflater:
    """gzip or deflate, inflated never past the room left under the body's cap.

    Not httpx's decoders: they inflate a whole network read at once, and 64 KiB of
    gzip can hold 64 MB (far more for brotli, which we therefore do not accept).
    """

    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        # gzip: the gzip header; deflate: a zlib header (servers that send raw deflate
        # instead are caught on the first chunk, as httpx and browsers do).
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | (0 if self._deflate else 16))
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        # One byte more than fits is enough to know the body is too large.
        try:
            out = self._zlib.decompress(data, room + 1)
        except zlib.error:
            if not (self._deflate and not self._started):
                raise
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._zlib.decompress(data, room + 1)
        self._started = True
        return out

    def flush(self) -> bytes:
        return self._zlib.flush()


class Fetcher:
    """Fetches http(s) URLs typed by users, refusing private addresses (module docstring).

    One per process (it holds an httpx client); ``aclose`` it on shutdown.
    """

    def __init__(
        self,
        *,
        allow_hosts: Collection[str] = (),
        timeout: float = 5.0,
        max_bytes: int = 2_000_000,
        max_redirects: int = 5,
        per_host_per_minute: int = 60,
        user_agent: str = "liveblog (+https://github.com/liveblog)",
    ) -> None:
        if isinstance(allow_hosts, str):  # "a:1" would be taken as hosts "a", ":", "1"
            raise TypeError("allow_hosts is a collection of host:port strings")
        self.allow_hosts = frozenset(_host_port(entry) for entry in allow_hosts)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._per_host = MemoryLimiter(limit=per_host_per_minute, window=60, max_keys=MAX_HOSTS)
        self._client = httpx.AsyncClient(
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            # A jar that refuses every cookie: nothing one fetch receives goes with the next.
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
            follow_redirects=False,
            trust_env=False,  # no HTTP_PROXY or .netrc from the environment
            verify=True,
            # No connection is reused: the pool knows connections by IP address, and a
            # TLS connection checked for one name must not carry a request for another
            # name at the same address.
            limits=httpx.Limits(max_keepalive_connections=0),
            # The deadline is anyio.fail_after's, one for the whole call.
            timeout=httpx.Timeout(None),
        )

    async def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (applied with anyio.fail_after)
    ) -> Fetched:
        """GET ``url``, following up to ``max_redirects`` redirects, each checked anew."""
        return await self._call("GET", url, None, headers, max_bytes, timeout)

    async def post(
        self,
        url: str,
        *,
        content: bytes,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (applied with anyio.fail_after)
    ) -> Fetched:
        """POST ``content`` to ``url``. A redirect is returned as it is, not followed:
        sending the body on to wherever a server points is not what the caller asked."""
        return await self._call("POST", url, content, headers, max_bytes, timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        max_bytes: int | None,
        seconds: float | None,
    ) -> Fetched:
        cap = self.max_bytes if max_bytes is None else max_bytes
        deadline = self.timeout if seconds is None else seconds
        target = _checked_url(url)
        sent = httpx.Headers(headers or {})
        redirects = 0
        try:
            with anyio.fail_after(deadline):
                while True:
                    fetched = await self._hop(method, target, content, sent, cap)
                    location = fetched.headers.get("location")
                    if method != "GET" or fetched.status not in REDIRECTS or location is None:
                        return fetched
                    if redirects == self.max_redirects:
                        raise FetchError(
                            f"{_host(target)} redirects more than {self.max_redirects} times"
                        )
                    redirects += 1
                    following = _redirect(target, location)
                    if _origin(following) != _origin(target):
                        for name in _CREDENTIALS:
                            sent.pop(name, None)
                    target = following
        except TimeoutError:
            raise FetchError(f"{_host(target)} did not answer within {deadline:g} s") from None

    async def _hop(
        self,
        method: str,
        url: httpx.URL,
        content: bytes | None,
        headers: httpx.Headers,
        cap: int,
    ) -> Fetched:
        """One request and its response, to an address checked and pinned."""
        host, port = _host(url), _port(url)
        # Counted before anything is looked up or sent, so that refused calls count too:
        # each one costs a DNS lookup.
        if await self._per_host.hit(host) is not None:
            raise FetchError(f"too many requests to {host}; try again in a minute")
        addresses = await _resolve(host, port)
        if (host, port) not in self.allow_hosts and not all(map(address_allowed, addresses)):
            if _literal(host) is not None:
                raise FetchRefused(f"refused: {host} is a private or local address")
            raise FetchRefused(f"refused: {host} resolves to a private or local address")
        request_headers = httpx.Headers(headers)
        request_headers["Host"] = url.netloc.decode("ascii")  # host[:port], as typed
        # TLS checks the certificate against the name, not the address we connect to.
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        failure: httpx.HTTPError | None = None
        # Each address in turn, as a browser would, until one accepts the connection
        # (localhost may answer ::1 first to a server listening on 127.0.0.1 only).
        for address in addresses:
            try:
                request = self._client.build_request(
                    method,
                    url.copy_with(host=str(address)),
                    headers=request_headers,
                    content=content,
                    extensions=extensions,
                )
                response = await self._client.send(request, stream=True)
            except httpx.ConnectError as exc:  # nothing was sent: the next address may do
                failure = exc
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise _failure(exc, host) from None
            try:
                body = await _read(response, cap, host)
            except (httpx.HTTPError, httpx.StreamError) as exc:
                raise _failure(exc, host) from None
            finally:
                await response.aclose()
            return Fetched(str(url), response.status_code, response.headers, body)
        assert failure is not None  # _resolve returns at least one address
        raise _failure(failure, host) from None


def _redirect(current: httpx.URL, location: str) -> httpx.URL:
    """Where a redirect from ``current`` leads, checked as if it had been typed."""
    if _UNSAFE.search(location):  # checked before join() normalises some of it away
        return _checked_url(location)  # raises
    try:
        return _checked_url(current.join(location))
    except httpx.InvalidURL:
        raise FetchRefused(f"refused: {_host(current)} redirects to an invalid address") from None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` has (itself, for an IP literal), each once, in DNS order."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        # Bytes, already ASCII: anyio would re-encode a str with IDNA 2008, which refuses
        # some names that resolve (underscores).
        infos = await anyio.getaddrinfo(host.encode("ascii"), port, type=socket.SOCK_STREAM)
    except OSError:
        raise FetchError(f"could not find the host {host}") from None
    addresses: dict[IPAddress, None] = {}
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            addresses[ipaddress.ip_address(sockaddr[0])] = None
    if not addresses:
        raise FetchError(f"could not find the host {host}")
    return list(addresses)


async def _read(response: httpx.Response, cap: int, host: str) -> bytes:
    """The body, decoded, refused as soon as it is known to exceed ``cap`` bytes."""
    too_large = FetchError(f"the answer from {host} is larger than {cap} bytes")
    length = response.headers.get("content-length", "").strip()
    if length.isdigit() and int(length) > cap:
        raise too_large
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        inflater = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflater = _Inflater("deflate" if encoding == "deflate" else "gzip")
    else:  # we asked for gzip or deflate only
        raise FetchError(f"{host} sent its answer in an encoding we do not read ({encoding})")
    parts: list[bytes] = []
    received = size = 0
    try:
        # Raw bytes (chunked framing removed, content encoding not): we inflate them.
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > cap:  # also bounds a compressed stream that inflates to nothing
                raise too_large
            data = chunk if inflater is None else inflater.feed(chunk, cap - size)
            size += len(data)
            if size > cap:
                raise too_large
            parts.append(data)
        if inflater is not None:
            parts.append(inflater.flush())
    except zlib.error:
        raise FetchError(f"{host} sent a damaged compressed answer") from None
    body = b"".join(parts)
    if len(body) > cap:
        raise too_large
    return body


def _failure(exc: Exception, host: str) -> FetchError:
    """An httpx exception as a sentence for an editor."""
    cause: BaseException | None = exc
    while cause is not None:  # the ssl error is a few causes down
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or "not trusted"
            return FetchError(f"could not connect to {host}: its certificate is invalid ({reason})")
        if isinstance(cause, ssl.SSLError):
            return FetchError(f"could not connect to {host}: the TLS handshake failed")
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return FetchError(f"{host} did not answer in time")
    if isinstance(exc, httpx.ConnectError):
        return FetchError(f"could not connect to {host}")
    if isinstance(exc, httpx.ProtocolError):
        return FetchError(f"{host} sent an answer that is not valid HTTP")
    if isinstance(exc, httpx.NetworkError):
        return FetchError(f"the connection to {host} broke off")
    return FetchError(f"fetching from {host} failed")
