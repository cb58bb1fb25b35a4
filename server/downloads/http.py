"""HTTP(S) GET for downloads: redirects followed by hand, each hop's URL and addresses checked, and
the connection pinned to the address that was checked.

Why http.client and not urllib or requests: a download must connect to exactly the address it
vetted (resolving again at connect time would let a DNS answer that changes in between, "DNS
rebinding", reach a private address), must re-check every redirect before following it, and
must be abortable from another thread mid-read. http.client gives those three with a few lines;
urllib and requests resolve on their own, follow redirects on their own, and read proxy settings
from the environment.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass

from server import __version__
from server.downloads.sources import (HttpUrl, UrlRejected, name_has_no_address, parse_http_url,
                                      refused_addresses, resolve, resolve_failure_text)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = f"tokenwire/{__version__}"


class TransferError(Exception):
    """A transfer failed. `reason` is the stable code shown in Download.error_reason; `retryable`
    says whether trying again (with Range) may help."""

    def __init__(self, reason: str, message: str, *, retryable: bool = False, http_status: int = 0):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.http_status = http_status


class Aborted(Exception):
    """The transfer was stopped from outside (cancel or server shutdown)."""


class Abort:
    """Stops a transfer from another thread, also one blocked reading from the network.

    `commit()` is the transfer's point of no return (just before the rename): after it, set()
    has no effect, so whoever called set() first decides the outcome.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._committed = False
        self.why = ""

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self, why: str) -> bool:
        """Asks the transfer to stop; True if this call did (not already stopped or committed)."""
        with self._lock:
            if self._committed or self._event.is_set():
                return False
            self.why = why
            self._event.set()
            sock = self._sock
        _shutdown(sock)
        return True

    def commit(self) -> bool:
        """Marks the point of no return; False if the transfer was stopped before it."""
        with self._lock:
            if self._event.is_set():
                return False
            self._committed = True
            return True

    def wait(self, seconds: float) -> bool:
        """Sleeps up to `seconds` (a retry backoff); True if stopped meanwhile."""
        return self._event.wait(seconds)

    def watch(self, sock: socket.socket | None) -> None:
        """The socket that set() shuts down to wake a blocked read."""
        with self._lock:
            self._sock = sock
            stopped = self._event.is_set()
        if stopped:
            _shutdown(sock)

    def check(self) -> None:
        if self.is_set:
            raise Aborted(self.why)


def _shutdown(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a recv() blocked in the transfer thread
    except OSError:
        pass


class _PinnedMixin:
    """Connects to pre-vetted addresses instead of resolving the host again. The Host header and
    the TLS server name (SNI and certificate check) still use the host name."""

    addresses: list[str]

    def _pinned_connect(self, address, timeout, source_address=None):
        port = address[1]
        last: OSError | None = None
        for ip in self.addresses:
            try:
                return socket.create_connection((ip, port), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last or OSError(f"no address for {address[0]}")


class _PinnedHTTPConnection(_PinnedMixin, http.client.HTTPConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses
        self._create_connection = self._pinned_connect


class _PinnedHTTPSConnection(_PinnedMixin, http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.addresses = addresses
        self._create_connection = self._pinned_connect


@dataclass
class Opened:
    """A response whose headers have arrived; read the body from `response`."""

    response: http.client.HTTPResponse
    connection: http.client.HTTPConnection
    url: str  # the URL that answered, after redirects

    def close(self) -> None:
        self.response.close()
        self.connection.close()


def _vet(url: str, *, allow_private: bool, hop: int) -> tuple[HttpUrl, list[str]]:
    try:
        parsed = parse_http_url(url)
    except UrlRejected as exc:
        raise TransferError("REDIRECT_REFUSED", f"redirect to a URL that {exc}: {url[:200]}") from None
    try:
        addresses = resolve(parsed.host, parsed.port)
    except OSError as exc:
        if name_has_no_address(exc):  # retrying cannot make the name exist
            what = "the redirect's host" if hop else "host"
            raise TransferError("UNRESOLVABLE_HOST", f"cannot resolve {what} {parsed.host}: "
                                f"{resolve_failure_text(exc)}") from None
        raise TransferError("NETWORK_ERROR", f"cannot resolve {parsed.host}: {exc}",
                            retryable=True) from None
    if not allow_private:
        bad = refused_addresses(addresses)
        if bad:
            what = "redirect to" if hop else "host"
            raise TransferError("REDIRECT_REFUSED" if hop else "PRIVATE_ADDRESS_REFUSED",
                                f"{what} {parsed.host} resolves to a private, loopback or "
                                f"link-local address ({', '.join(bad)}); refused "
                                f"(downloads.allow_private_addresses is off)")
    return parsed, addresses


def open_get(url: str, headers: dict[str, str], *, allow_private: bool, max_redirects: int,
             timeout: float, abort: Abort) -> Opened:
    """GETs `url`, following at most `max_redirects` redirects; returns the first non-redirect
    response (any status). Raises TransferError or Aborted."""
    for hop in range(max_redirects + 1):
        abort.check()
        parsed, addresses = _vet(url, allow_private=allow_private, hop=hop)
        cls = _PinnedHTTPSConnection if parsed.scheme == "https" else _PinnedHTTPConnection
        connection = cls(parsed.host, parsed.port, addresses, timeout)
        try:
            connection.connect()
            abort.watch(connection.sock)
            connection.request("GET", parsed.target, headers={
                "User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers})
            response = connection.getresponse()
        except Aborted:
            connection.close()
            raise
        except ssl.SSLCertVerificationError as exc:
            connection.close()  # retrying cannot fix a certificate
            raise TransferError("TLS_ERROR", f"{parsed.host}: the TLS certificate is not valid "
                                f"({exc.verify_message})") from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            abort.check()
            raise TransferError("NETWORK_ERROR", f"{parsed.host}: {exc or type(exc).__name__}",
                                retryable=True) from None
        if response.status not in REDIRECT_STATUSES:
            return Opened(response, connection, url)
        location = response.getheader("Location")
        response.close()
        connection.close()
        if not location:
            raise TransferError("HTTP_ERROR", f"HTTP {response.status} redirect without a Location "
                                f"from {parsed.host}", http_status=response.status)
        url = urllib.parse.urljoin(url, location)
    raise TransferError("TOO_MANY_REDIRECTS", f"more than {max_redirects} redirects")
