"""ACME http-01 (RFC 8555 §8.3): BR 3.2.2.4.19 for domain names, BR 3.2.2.5.6 (RFC 8738 §4) for IP addresses.

The validator fetches ``http://{identifier}/.well-known/acme-challenge/{token}`` on TCP port 80 and nothing
else: there is deliberately no port parameter (WoSign "Incident 0", where applicants chose the port; WS-02a,
WS-02e). It follows at most 10 redirects of status 301, 302, 307 or 308, each to http on port 80 or https on
port 443 (BR 3.2.2.4.19: redirects "initiated at the HTTP protocol layer", to http or https, on Authorized
Ports); it refuses 303, does not read meta refresh or scripts, and checks every address it connects to with
the address policy, including those of redirect targets (WS-02c). An https target is fetched with SNI but
without certificate verification: the key authorization in the body is the proof of control, not the
certificate (RFC 8555 §8.3 steps 4-5; Let's Encrypt's Boulder does the same).
The final response must be 2xx and its body must equal the key authorization; only trailing whitespace is
ignored (RFC 8555 §8.3 step 4; WS-11b). The whole attempt, redirects included, has one time budget.

Problem types (RFC 8555 §6.7): ``dns`` when the name does not resolve or resolves only to refused addresses;
``rejectedIdentifier`` for an IP identifier the policy refuses or a wildcard; ``connection`` when no address
connects, the response is not HTTP, a redirect is refused or there are too many; ``tls`` when an https
target's handshake fails; ``unauthorized`` for a final status that is not 2xx (303 included);
``incorrectResponse`` for a body that is not the key authorization; ``malformed`` for a token or key
authorization that cannot be one.
"""

from __future__ import annotations

import http.client
import math
import socket
import ssl
import time

from candor.clock import Clock
from candor.policy.names import Identifier
from candor.validation._challenge import check_challenge, identifier_addresses, method_for, resolve
from candor.validation._net import (
    USER_AGENT,
    Connection,
    Deadline,
    Failure,
    connect_failure,
    connect_first,
    describe,
    insecure_tls_context,
    one_line,
    url_host,
)
from candor.validation._urls import FOLLOWED_REDIRECTS, SCHEME_PORTS, Target, challenge_target, redirect_target
from candor.validation.addresses import AddressPolicy, IPAddress, Resolver
from candor.validation.outcome import Contact, ProblemType, ValidationResult

__all__ = ["CONTACT_PORTS", "FOLLOWED_REDIRECTS", "MAX_BODY", "MAX_REDIRECTS", "validate_http01"]

CONTACT_PORTS = frozenset(SCHEME_PORTS.values())  # WS-02e: {80, 443}, and nothing a caller can change
MAX_REDIRECTS = 10  # RFC 8555 §8.3 "SHOULD follow redirects"; 10 as Let's Encrypt's Boulder does
MAX_BODY = 64 * 1024  # a key authorization is 87 characters; more than this is not read
_WHITESPACE = b" \t\r\n"  # RFC 8555 §8.3 step 4: "SHOULD ignore whitespace characters at the end of the body"


def validate_http01(
    identifier: Identifier,
    token: str,
    key_authorization: str,
    *,
    resolver: Resolver,
    policy: AddressPolicy,
    clock: Clock,
    timeout: float = 10.0,
    max_redirects: int = MAX_REDIRECTS,
    max_body: int = MAX_BODY,
) -> ValidationResult:
    """Validate an http-01 challenge; network failures are returned as a failed result, never raised."""
    method = method_for("http-01", identifier)
    if not (math.isfinite(timeout) and 0 < timeout <= 300):
        raise ValueError("timeout must be a number of seconds in (0, 300]")
    if not 0 <= max_redirects <= MAX_REDIRECTS:
        raise ValueError(f"max_redirects must be from 0 to {MAX_REDIRECTS}")
    if not 128 <= max_body <= MAX_BODY:
        raise ValueError(f"max_body must be from 128 to {MAX_BODY} bytes")
    checked_at, started = clock.now(), time.monotonic()
    records: list[Contact] = []

    def result(problem: Failure | None, detail: str) -> ValidationResult:
        elapsed = time.monotonic() - started
        problem_type = None if problem is None else problem.problem
        return ValidationResult(
            problem is None, method, problem_type, one_line(detail), tuple(records), checked_at, elapsed
        )

    try:
        check_challenge("http-01", identifier, token, key_authorization)
        deadline = Deadline(timeout)
        target = challenge_target(identifier, token)
        for hop in range(max_redirects + 1):
            status, locations, body = _fetch(
                target,
                first=hop == 0,
                identifier=identifier,
                resolver=resolver,
                policy=policy,
                deadline=deadline,
                records=records,
                max_body=max_body,
            )
            if status not in FOLLOWED_REDIRECTS:
                _check_final(target, status, body, key_authorization, max_body)
                return result(None, f"{target.url} answered with the key authorization")
            if hop == max_redirects:
                raise Failure("connection", f"RFC 8555 §8.3: more than {max_redirects} redirects from {target.url}")
            if len(locations) != 1:
                raise Failure("connection", f"{target.url}: redirect {status} with {len(locations)} Location headers")
            target = redirect_target(target, locations[0])
    except Failure as failure:
        return result(failure, failure.detail)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _check_final(target: Target, status: int, body: bytes, key_authorization: str, max_body: int) -> None:
    if 300 <= status < 400:
        raise Failure(
            "unauthorized",
            f"BR 3.2.2.4.19: {target.url} answered redirect {status}; only 301, 302, 307 and 308 are followed",
        )
    if not 200 <= status < 300:
        raise Failure("unauthorized", f"RFC 8555 §8.3: {target.url} answered HTTP {status}, not 2xx")
    if len(body) > max_body:
        raise Failure("incorrectResponse", f"RFC 8555 §8.3: the body at {target.url} is longer than {max_body} bytes")
    if body.rstrip(_WHITESPACE) != key_authorization.encode("ascii"):
        got = body[:100].decode("ascii", "backslashreplace")
        raise Failure(
            "incorrectResponse",
            f"RFC 8555 §8.3: the body at {target.url} is not the key authorization "
            f"{key_authorization!r} (trailing whitespace aside); got {got!r}",
        )


def _fetch(
    target: Target,
    *,
    first: bool,
    identifier: Identifier,
    resolver: Resolver,
    policy: AddressPolicy,
    deadline: Deadline,
    records: list[Contact],
    max_body: int,
) -> tuple[int, list[str], bytes]:
    """One GET of *target*: (status, Location headers, body if 2xx)."""
    if first:
        addresses = identifier_addresses(identifier, resolver)
        refused: ProblemType = "rejectedIdentifier" if identifier.type == "ip" else "dns"
    else:
        addresses = [target.ip] if target.ip is not None else resolve(target.host, resolver)
        refused = "connection"
    start = len(records)
    connected = connect_first(addresses, target.port, url=target.url, policy=policy, deadline=deadline, records=records)
    if connected is None:
        raise connect_failure(refused, records[start:], target.url, deadline=deadline)
    connection, ip = connected
    with connection:
        try:
            if target.scheme == "https":
                _start_tls(connection, target, deadline)
            status, locations, body = _exchange(connection.sock, ip, target, deadline, max_body)
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired():
                outcome = "timed out"
            elif isinstance(exc, http.client.HTTPException):
                outcome = f"not a valid HTTP response ({type(exc).__name__})"
            else:
                outcome = describe(exc)
            records.append(Contact(target.url, str(ip), target.port, True, True, None, outcome))
            problem: ProblemType = "tls" if isinstance(exc, ssl.SSLError) else "connection"
            raise Failure(problem, f"{target.url} ({url_host(ip)}:{target.port}): {outcome}") from None
    records.append(Contact(target.url, str(ip), target.port, True, True, status, f"HTTP {status}"))
    return status, locations, body


def _start_tls(connection: Connection, target: Target, deadline: Deadline) -> None:
    """TLS with SNI for a DNS host (RFC 6066 §3 has no SNI for IP literals), without certificate checks."""
    context = insecure_tls_context(["http/1.1"])
    connection.sock.settimeout(deadline.remaining())
    server_hostname = None if target.ip is not None else target.host
    tls = context.wrap_socket(connection.sock, server_hostname=server_hostname, do_handshake_on_connect=False)
    connection.replace(tls)
    tls.do_handshake()


class _OneShot(http.client.HTTPConnection):
    """An HTTPConnection on a socket it does not own: the Connection closes it, under its watchdog's lock."""

    def close(self) -> None:  # http.client calls this itself once a "Connection: close" response arrives
        self.sock = None


def _exchange(
    sock: socket.socket, ip: IPAddress, target: Target, deadline: Deadline, max_body: int
) -> tuple[int, list[str], bytes]:
    client = _OneShot(str(ip), target.port)  # the checked address, never the name
    client.sock = sock  # already connected: http.client must neither resolve nor connect
    client.auto_open = 0  # and must not reconnect on its own if the connection drops
    sock.settimeout(deadline.remaining())
    client.putrequest("GET", target.path, skip_host=True)
    client.putheader("Host", target.host_header)
    client.putheader("User-Agent", USER_AGENT)
    client.putheader("Accept", "*/*")
    client.putheader("Connection", "close")
    client.endheaders()
    sock.settimeout(deadline.remaining())
    response = client.getresponse()
    try:
        locations = response.headers.get_all("Location") or []
        body = b""
        if 200 <= response.status < 300:
            sock.settimeout(deadline.remaining())
            body = response.read(max_body + 1)
        return response.status, [str(location) for location in locations], body
    finally:
        response.close()
