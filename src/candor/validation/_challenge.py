"""Private checks shared by the ACME validators: challenge values, method ids and the identifier's addresses."""

from __future__ import annotations

import ipaddress
import re

from candor.errors import CandorError
from candor.policy.names import Identifier
from candor.validation._net import Failure
from candor.validation.addresses import IPAddress, Resolver

# RFC 8555 §8.3 / §8.4 / RFC 8737 §3: a token is base64url without padding, with at least 128 bits of
# entropy (22 characters). Candor's own tokens are 43 characters; 128 is a sanity bound, not a rule.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,128}")
# RFC 8555 §8.1: keyAuthorization = token || '.' || base64url(JWK_Thumbprint(accountKey)); the RFC 7638
# SHA-256 thumbprint is 32 bytes, 43 base64url characters.
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")

# BR method identifiers (BR 3.2.2.4 for domain names, 3.2.2.5 for IP addresses).
METHODS = {
    ("http-01", "dns"): "3.2.2.4.19",  # BR 3.2.2.4.19 Agreed-Upon Change to Website - ACME
    ("http-01", "ip"): "3.2.2.5.6",  # BR 3.2.2.5.6 ACME "http-01" method for IP Addresses (RFC 8738 §4)
    ("tls-alpn-01", "dns"): "3.2.2.4.20",  # BR 3.2.2.4.20 TLS Using ALPN (RFC 8737)
    ("tls-alpn-01", "ip"): "3.2.2.5.7",  # BR 3.2.2.5.7 ACME "tls-alpn-01" method for IP Addresses (RFC 8738 §6)
}


def method_for(challenge: str, identifier: Identifier) -> str:
    """The BR method id of *challenge* for *identifier*; a wrong type is a programming error."""
    if not isinstance(identifier, Identifier) or identifier.type not in ("dns", "ip"):
        raise TypeError(f"expected a candor.policy.names.Identifier of type dns or ip, not {identifier!r}")
    return METHODS[(challenge, identifier.type)]


def check_challenge(challenge: str, identifier: Identifier, token: str, key_authorization: str) -> None:
    """Refuse values that cannot belong to a well-formed challenge, before anything is sent."""
    if identifier.value.startswith("*."):
        raise Failure(
            "rejectedIdentifier",
            f"BR 3.2.2.4.19/.20: {challenge} is not suitable for validating the wildcard {identifier.value!r}",
        )
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise Failure("malformed", f"RFC 8555 §8.3: the {challenge} token is not 22-128 base64url characters")
    if not isinstance(key_authorization, str) or not (
        key_authorization.startswith(token + ".") and _THUMBPRINT.fullmatch(key_authorization[len(token) + 1 :])
    ):
        raise Failure("malformed", "RFC 8555 §8.1: the key authorization is not token '.' base64url(thumbprint)")


def identifier_addresses(identifier: Identifier, resolver: Resolver) -> list[IPAddress]:
    """The addresses to try: the identifier itself for an IP (RFC 8738 §4), else the resolver's answer."""
    if identifier.type == "ip":
        try:
            return [ipaddress.ip_address(identifier.value)]
        except ValueError:
            raise Failure("malformed", f"RFC 8738 §3: {identifier.value!r} is not an IP address") from None
    return resolve(identifier.value, resolver)


def resolve(name: str, resolver: Resolver) -> list[IPAddress]:
    """The resolver's addresses for *name*; a resolution failure or an empty answer is a ``dns`` problem."""
    try:
        found = resolver.addresses(name)
    except CandorError as exc:
        raise Failure("dns", exc.message) from None
    if not found:
        raise Failure("dns", f"DNS: no A or AAAA records found for {name!r}")
    return list(found)
