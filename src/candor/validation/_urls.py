"""Private: the URLs http-01 may fetch, built by the CA itself, and the redirects it may follow.

The first URL is always ``http://{identifier}/.well-known/acme-challenge/{token}`` on port 80, built here from
the identifier and the CA's own token: nothing the client sends picks the scheme, host, port or path (RFC 8555
§8.3; WS-11a, the StartEncrypt lesson). A redirect is followed only to http on port 80 or https on port 443,
explicit or default (BR 3.2.2.4.19 "redirects ... MUST be to ... Authorized Ports", narrowed to the pair RFC
8555 uses; WS-02c), never with userinfo, and only to a host that is an LDH DNS name or an IP literal.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit

from candor.policy.names import Identifier
from candor.validation._net import Failure, url_host
from candor.validation.addresses import IPAddress

SCHEME_PORTS: dict[str, int] = {"http": 80, "https": 443}  # scheme -> the only port it is fetched on
FOLLOWED_REDIRECTS = frozenset({301, 302, 307, 308})  # BR 3.2.2.4.19 (RFC 9110 §15.4, RFC 7538); not 303
CHALLENGE_PATH = "/.well-known/acme-challenge/"  # RFC 8555 §8.3
MAX_LOCATION = 2048  # a redirect target longer than this is refused, not parsed

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")  # RFC 1035 §2.3.1 LDH label


@dataclass(frozen=True)
class Target:
    """One URL to fetch, already checked: scheme, host (DNS name or IP literal), fixed port and request path."""

    scheme: Literal["http", "https"]
    host: str  # lower-case DNS name, or the IP literal's text without brackets
    ip: IPAddress | None  # set when the host is an IP literal
    path: str  # the request target: path and query

    @property
    def port(self) -> int:
        return SCHEME_PORTS[self.scheme]

    @property
    def host_header(self) -> str:
        """RFC 9110 §7.2 Host: the host, bracketed if IPv6; the port is the scheme's default and omitted."""
        return url_host(self.host) if self.ip is not None else self.host

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.path}"


def challenge_target(identifier: Identifier, token: str) -> Target:
    """The URL the CA fetches first: built from the identifier and the token only (RFC 8555 §8.3, RFC 8738 §4)."""
    path = CHALLENGE_PATH + token
    if identifier.type == "ip":
        return Target("http", identifier.value, ipaddress.ip_address(identifier.value), path)
    return Target("http", identifier.value, None, path)


def _refuse(location: str, rule: str) -> Failure:
    shown = location if len(location) <= 100 else location[:100] + "..."
    return Failure("connection", f"redirect to {shown!r} refused: {rule}")


def redirect_target(current: Target, location: str) -> Target:
    """The target of a Location header, resolved against *current*, or a Failure naming the rule it breaks."""
    if len(location) > MAX_LOCATION:
        raise _refuse(location, f"Location is longer than {MAX_LOCATION} characters")
    if not location.isascii() or any(ch <= " " or ch == "\x7f" for ch in location):
        raise _refuse(location, "RFC 3986 §2: Location holds spaces, control or non-ASCII characters")
    given = urlsplit(location)
    if given.scheme and not given.netloc and given.scheme.lower() in SCHEME_PORTS:
        # "http:///x" and "http:x" have no host (RFC 3986 §5.2.2); urljoin would quietly use the current one.
        raise _refuse(location, "RFC 3986 §3: an absolute http or https URL without a host")
    parts = urlsplit(urljoin(current.url, location))
    scheme = parts.scheme.lower()
    if scheme not in SCHEME_PORTS:
        raise _refuse(location, f"BR 3.2.2.4.19 / RFC 8555 §8.3: only http and https are followed, not {scheme!r}")
    if "@" in parts.netloc:
        raise _refuse(location, "RFC 9110 §4.2.4: a URL with userinfo is not followed")
    try:
        port = parts.port
    except ValueError:
        raise _refuse(location, "RFC 3986 §3.2.3: the port is not a number from 0 to 65535") from None
    expected = SCHEME_PORTS[scheme]
    if port is not None and port != expected:
        raise _refuse(
            location,
            f"BR 3.2.2.4.19 / WS-02: {scheme} is fetched on port {expected} only, not {port} (ports 80 and 443 only)",
        )
    host = parts.hostname or ""
    ip = _ip_literal(location, host, bracketed="[" in parts.netloc)
    if ip is None:
        host = _dns_host(location, host)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target("https" if scheme == "https" else "http", str(ip) if ip is not None else host, ip, path)


def _ip_literal(location: str, host: str, *, bracketed: bool) -> IPAddress | None:
    if bracketed:
        if "%" in host:
            raise _refuse(location, "RFC 6874: an IPv6 zone identifier is not followed")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse(location, "RFC 3986 §3.2.2: the bracketed host is not an IPv6 address") from None
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        return None


def _dns_host(location: str, host: str) -> str:
    name = host.removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _refuse(location, "RFC 1123 §2.1: the host is neither an IP literal nor an LDH DNS name")
    if labels[-1].isdigit():  # "127.1" or "2130706433": legacy IPv4 forms are not followed, nor resolved
        raise _refuse(location, "RFC 3986 §3.2.2 / RFC 1123 §2.1: the host is a non-standard IPv4 form")
    return name
