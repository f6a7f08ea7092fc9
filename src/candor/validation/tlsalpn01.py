"""ACME tls-alpn-01 (RFC 8737): BR 3.2.2.4.20 for domain names, BR 3.2.2.5.7 (RFC 8738 §6) for IP addresses.

The validator connects to TCP port 443 and nowhere else (RFC 8737 §3 step 3; WS-02d), offers exactly one
ALPN protocol, ``acme-tls/1``, with SNI set to the domain name, or for an IP identifier to its reverse-DNS
name (RFC 8738 §6: RFC 6066 forbids IP literals in SNI). TLS 1.2 is the minimum (RFC 8737 §4). The server
must select ``acme-tls/1``; the certificate it presents must have a subjectAltName with exactly one entry,
the identifier (a case-insensitive dNSName, or an iPAddress), and a critical id-pe-acmeIdentifier
extension whose value is the DER OCTET STRING of the SHA-256 digest of the key authorization (RFC 8737 §3,
§6.1). Nothing else about the certificate is checked: it is not a certificate the CA relies on, only a
carrier for the digest (RFC 8737 §4). The connection is closed right after the handshake; no application
data is exchanged (RFC 8737 §4).

Problem types (RFC 8555 §6.7): ``dns``, ``rejectedIdentifier``, ``connection`` and ``malformed`` as for
http-01; ``tls`` when the handshake fails; ``unauthorized`` when the server does not select ``acme-tls/1``;
``incorrectResponse`` when the certificate does not carry the identifier and digest as required.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time

from cryptography import x509

from candor.clock import Clock
from candor.policy.names import Identifier
from candor.validation._challenge import check_challenge, identifier_addresses, method_for
from candor.validation._net import (
    Deadline,
    Failure,
    connect_failure,
    connect_first,
    describe,
    insecure_tls_context,
    one_line,
    url_host,
)
from candor.validation.addresses import AddressPolicy, Resolver
from candor.validation.outcome import Contact, ProblemType, ValidationResult

__all__ = ["ACME_TLS_ALPN", "CONTACT_PORTS", "ID_PE_ACME_IDENTIFIER", "validate_tlsalpn01"]

ACME_TLS_ALPN = "acme-tls/1"  # RFC 8737 §6.2 ALPN protocol ID
ID_PE_ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")  # RFC 8737 §6.1 id-pe-acmeIdentifier
TLS_ALPN_PORT = 443  # RFC 8737 §3 step 3: "This connection MUST use TCP port 443"
CONTACT_PORTS = frozenset({TLS_ALPN_PORT})  # WS-02e


def _server_name(identifier: Identifier) -> str:
    """The SNI host name: the domain, or the in-addr.arpa / ip6.arpa name of an IP address (RFC 8738 §6)."""
    if identifier.type == "ip":
        return ipaddress.ip_address(identifier.value).reverse_pointer
    return identifier.value


def validate_tlsalpn01(
    identifier: Identifier,
    token: str,
    key_authorization: str,
    *,
    resolver: Resolver,
    policy: AddressPolicy,
    clock: Clock,
    timeout: float = 10.0,
) -> ValidationResult:
    """Validate a tls-alpn-01 challenge; network failures are returned as a failed result, never raised."""
    method = method_for("tls-alpn-01", identifier)
    if not (math.isfinite(timeout) and 0 < timeout <= 300):
        raise ValueError("timeout must be a number of seconds in (0, 300]")
    checked_at, started = clock.now(), time.monotonic()
    records: list[Contact] = []

    def result(problem: Failure | None, detail: str) -> ValidationResult:
        kind = None if problem is None else problem.problem
        elapsed = time.monotonic() - started
        return ValidationResult(problem is None, method, kind, one_line(detail), tuple(records), checked_at, elapsed)

    try:
        check_challenge("tls-alpn-01", identifier, token, key_authorization)
        sni = _server_name(identifier)
        url = f"tls://{url_host(identifier.value)}:{TLS_ALPN_PORT}"
        der = _handshake(
            identifier, sni, url, resolver=resolver, policy=policy, deadline=Deadline(timeout), records=records
        )
        _check_certificate(der, identifier, key_authorization)
    except Failure as failure:
        return result(failure, failure.detail)
    return result(None, f"{url} presented the acme-tls/1 certificate for {identifier.value}")


def _handshake(
    identifier: Identifier,
    sni: str,
    url: str,
    *,
    resolver: Resolver,
    policy: AddressPolicy,
    deadline: Deadline,
    records: list[Contact],
) -> bytes:
    """Connect, complete the acme-tls/1 handshake and return the server's certificate (DER)."""
    addresses = identifier_addresses(identifier, resolver)
    start = len(records)
    connected = connect_first(addresses, TLS_ALPN_PORT, url=url, policy=policy, deadline=deadline, records=records)
    if connected is None:
        refused: ProblemType = "rejectedIdentifier" if identifier.type == "ip" else "dns"
        raise connect_failure(refused, records[start:], url, deadline=deadline)
    connection, ip = connected
    where = f"{url} ({url_host(ip)}:{TLS_ALPN_PORT})"
    with connection:
        try:
            connection.sock.settimeout(deadline.remaining())
            context = insecure_tls_context([ACME_TLS_ALPN])  # RFC 8737 §3: the single protocol name
            tls = context.wrap_socket(connection.sock, server_hostname=sni, do_handshake_on_connect=False)
            connection.replace(tls)
            tls.do_handshake()
            selected = tls.selected_alpn_protocol()
            der = tls.getpeercert(binary_form=True)
        except OSError as exc:
            outcome = "timed out" if deadline.expired() else describe(exc)
            records.append(Contact(url, str(ip), TLS_ALPN_PORT, True, True, None, outcome))
            raise Failure("connection" if isinstance(exc, TimeoutError) else "tls", f"{where}: {outcome}") from None
    records.append(Contact(url, str(ip), TLS_ALPN_PORT, True, True, None, f"TLS handshake, ALPN {selected!r}"))
    if selected != ACME_TLS_ALPN:
        raise Failure(
            "unauthorized", f"RFC 8737 §3: {where} did not negotiate ALPN {ACME_TLS_ALPN!r} (got {selected!r})"
        )
    if not der:
        raise Failure("incorrectResponse", f"RFC 8737 §3: {where} presented no certificate")
    return der


def _check_certificate(der: bytes, identifier: Identifier, key_authorization: str) -> None:
    def wrong(rule: str) -> Failure:
        return Failure("incorrectResponse", f"RFC 8737 §3: the acme-tls/1 certificate for {identifier.value} {rule}")

    try:
        certificate = x509.load_der_x509_certificate(der)
        extensions = certificate.extensions
    except ValueError:  # x509.DuplicateExtension is a ValueError too
        raise wrong("cannot be parsed, or repeats an extension (RFC 5280 §4.2)") from None
    try:
        names = list(extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        raise wrong("has no subjectAltName") from None
    if len(names) != 1:
        raise wrong(f"has {len(names)} subjectAltName entries; exactly one, the identifier, is required")
    if not _is_identifier(names[0], identifier):
        raise wrong(f"names {_shown(names[0])} in its subjectAltName, not the identifier")
    try:
        extension = extensions.get_extension_for_oid(ID_PE_ACME_IDENTIFIER)
    except x509.ExtensionNotFound:
        raise wrong("has no acmeIdentifier extension (RFC 8737 §6.1)") from None
    if not extension.critical:
        raise wrong("has an acmeIdentifier extension that is not critical")
    # RFC 8737 §6.1: Authorization ::= OCTET STRING (SIZE (32)); the extnValue holds its DER: 04 20 || digest.
    expected = b"\x04\x20" + hashlib.sha256(key_authorization.encode("ascii")).digest()
    value = extension.value
    if not isinstance(value, x509.UnrecognizedExtension) or value.value != expected:
        raise wrong("has an acmeIdentifier that is not the SHA-256 digest of the key authorization")


def _shown(name: x509.GeneralName) -> str:
    return f"{type(name).__name__} {str(name.value)[:100]!r}"


def _is_identifier(name: x509.GeneralName, identifier: Identifier) -> bool:
    if identifier.type == "ip":
        return isinstance(name, x509.IPAddress) and name.value == ipaddress.ip_address(identifier.value)
    # RFC 8737 §3: dNSName comparison is case-insensitive (RFC 4343); ACME identifiers are A-labels.
    return isinstance(name, x509.DNSName) and name.value.lower() == identifier.value
