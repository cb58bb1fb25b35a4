"""What a download may fetch and what it may be called: URL, host address, model id and file name
rules, shared by the request validation (errors name the request field) and by the transfer,
which applies the same URL and address rules again at every redirect.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Iterable

from server.errors import AddressRefused, InvalidArgument

MAX_URL_LENGTH = 4096
MAX_FILENAME_BYTES = 255
ALLOWED_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Letters, digits and a little punctuation: enough for every GGUF name on Hugging Face, nothing
# that a filesystem or a shell reads specially. A leading '.' would hide the file (or name the
# `.partial` folder), so names start with a letter or digit.
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}\Z")


@dataclass(frozen=True)
class HttpUrl:
    """A URL that passed the rules: http or https, a host, no credentials."""

    url: str
    scheme: str
    host: str
    port: int
    target: str  # path and query as sent in the request line

    @property
    def last_segment(self) -> str:
        return urllib.parse.urlsplit(self.url).path.rsplit("/", 1)[-1]


class UrlRejected(ValueError):
    """A URL breaks the rules; the message says which rule."""


def parse_http_url(url: str) -> HttpUrl:
    if not url:
        raise UrlRejected("must not be empty")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRejected(f"is longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise UrlRejected("contains spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRejected(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"'{scheme}://'" if scheme else "no scheme"
        raise UrlRejected(f"has {shown}; only http:// and https:// URLs can be downloaded")
    if not parts.hostname:
        raise UrlRejected("has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRejected("must not carry credentials (user:password@host)")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return HttpUrl(url=url, scheme=scheme, host=parts.hostname, port=port or _DEFAULT_PORTS[scheme],
                   target=target)


def check_url(url: str, field_name: str) -> HttpUrl:
    """parse_http_url() with the request field's name in the error."""
    try:
        return parse_http_url(url)
    except UrlRejected as exc:
        raise InvalidArgument.single(field_name, f"the URL {exc}", reason="INVALID_URL") from None


# -- addresses -----------------------------------------------------------------------------------


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (not private, loopback, link-local, ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever the IPv6 view says
    return ip.is_global and not ip.is_multicast


def refused_addresses(addresses: Iterable[str]) -> list[str]:
    return [a for a in addresses if not is_public_address(a)]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order (blocking)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    return addresses


# Resolver answers that the name has no address (EAI_NODATA is not defined everywhere): the same
# URL will keep failing. Any other failure (EAI_AGAIN: no answer in time; EAI_FAIL: the DNS server
# failed; no network yet) may pass.
_NAME_HAS_NO_ADDRESS = frozenset(getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA")
                                 if hasattr(socket, name))


def name_has_no_address(exc: OSError) -> bool:
    """Whether a resolve() failure is permanent: the resolver answered that the name has no
    address, so retrying the same URL cannot help (UNRESOLVABLE_HOST, at StartDownload and in the
    transfer alike). False for a failure that may pass, which callers treat as "retry later"."""
    return isinstance(exc, socket.gaierror) and exc.errno in _NAME_HAS_NO_ADDRESS


def resolve_failure_text(exc: OSError) -> str:
    """The resolver's own words for a resolve() failure, for error messages."""
    return exc.strerror or str(exc) or type(exc).__name__


def address_refusal(host: str, addresses: list[str]) -> AddressRefused | None:
    """The error for a host with non-public addresses, or None when every address is public.

    Every address counts, not only the first: a host that resolves to one public and one private
    address could otherwise be used to reach the private one.
    """
    bad = refused_addresses(addresses)
    if not bad:
        return None
    return AddressRefused(
        f"{host} resolves to a private, loopback or link-local address ({', '.join(bad)}); "
        f"downloads from such addresses are off (downloads.allow_private_addresses)",
        metadata={"host": host})


# -- names ---------------------------------------------------------------------------------------


def _traversal_problem(name: str) -> str | None:
    if "\x00" in name:
        return "contains a NUL character"
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", name):
        return "is an absolute path"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if name in (".", "..") or ".." in name:
        return "contains '..'"
    return None


def name_problem(name: str, pattern: re.Pattern, allowed: str) -> str | None:
    """Why `name` is not a safe single path component (None if it is)."""
    if not name:
        return "must not be empty"
    problem = _traversal_problem(name)
    if problem:
        return problem
    decoded = urllib.parse.unquote(name)
    if decoded != name:
        # "%2e%2e%2f" is harmless here, but it becomes "../" wherever someone decodes it later.
        inner = _traversal_problem(decoded)
        if inner:
            return f"{inner} once percent-decoded"
        return "must not be percent-encoded"
    if not pattern.match(name):
        return f"may only hold {allowed}"
    return None


def check_filename(name: str, field_name: str) -> str:
    problem = name_problem(name, _FILENAME, "letters, digits and '.', '_', '+', '-', starting "
                                            "with a letter or digit")
    if problem is None and len(name.encode()) > MAX_FILENAME_BYTES:
        problem = f"is longer than {MAX_FILENAME_BYTES} bytes"
    if problem:
        raise InvalidArgument.single(field_name, f"file name {name!r} {problem}",
                                     reason="INVALID_FILENAME")
    return name


def check_model_id(model_id: str, field_name: str) -> str:
    problem = name_problem(model_id, _MODEL_ID, "letters, digits and '.', '_', ':', '-' (at most "
                                                "128, starting with a letter or digit)")
    if problem:
        raise InvalidArgument.single(field_name, f"model id {model_id!r} {problem}",
                                     reason="INVALID_MODEL_ID")
    return model_id


def check_sha256(value: str, field_name: str) -> str:
    if not _SHA256.match(value):
        raise InvalidArgument.single(field_name, "must be 64 hexadecimal digits (a SHA-256)",
                                     reason="INVALID_SHA256")
    return value.lower()


def model_id_from_filename(filename: str) -> str:
    """The default model id for a file: its name without the extension, made id-safe."""
    stem = filename.rsplit(".", 1)[0] if "." in filename[1:] else filename
    return re.sub(r"[^A-Za-z0-9._:-]", "-", stem)[:128] or filename
