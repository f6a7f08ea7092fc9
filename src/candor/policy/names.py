"""Name policy: which DNS names and IP addresses a subscriber certificate may contain.

:func:`normalize_identifier` checks syntax and produces the one form Candor stores, compares and puts in
certificates: DNS names in lower-case A-label form (IDNA 2008 with UTS #46 mapping for U-labels), IP
addresses as dotted quads or RFC 5952 text. Nothing is silently repaired: a trailing root dot, an underscore
or an invalid xn-- label is refused, not fixed. :func:`check_identifiers` applies the rules that need the
root zone, the Public Suffix List or the date. Every refusal is a CandorError(POLICY) naming its rule.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import idna

from candor.errors import CandorError, ErrorKind
from candor.policy.dated import rules_at
from candor.policy.ip_ranges import reserved_reason
from candor.policy.psl import delegated_tlds, is_public_suffix, registered_domain

__all__ = [
    "MAX_IDENTIFIERS",
    "Identifier",
    "check_common_name",
    "check_identifiers",
    "is_public_suffix",
    "normalize_identifier",
    "registered_domain",
]

MAX_IDENTIFIERS = 100  # Candor policy (the BR sets no limit; 100 is what public ACME CAs allow)
MAX_COMMON_NAME = 64  # BR 7.1.4.2 table (ub-common-name, RFC 5280 Appendix A)

# Special-use names that are never issuable, with the document that reserves them.
_SPECIAL_USE = {
    "localhost": "RFC 6761 §6.3",
    "local": "RFC 6762 §3",
    "test": "RFC 6761 §6.2",
    "example": "RFC 6761 §6.5",
    "invalid": "RFC 6761 §6.4",
    "alt": "RFC 9476",
    "home.arpa": "RFC 8375",
    "internal": "ICANN Board resolution of 2024-07-29 (reserved for private use)",
}
_REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")  # BR 1.6.1 "IP Reverse Zone Suffix"
_LDH = re.compile(r"[a-z0-9-]+")
_MAX_INPUT = 1024  # refuse absurd input before mapping it (UTS #46 can shorten a name, so not 253)


@dataclass(frozen=True)
class Identifier:
    type: Literal["dns", "ip"]
    value: str  # normalised: see normalize_identifier


def _refuse(message: str) -> CandorError:
    return CandorError(ErrorKind.REJECTED_IDENTIFIER, message)


def _check_ascii_label(label: str, name: str) -> None:
    if "_" in label:
        raise _refuse(f"BR 7.1.2.7.12 (SC-012): underscore in label {label!r} of {name!r} is not allowed")
    if not _LDH.fullmatch(label):
        raise _refuse(f"BR 7.1.2.7.12: label {label!r} of {name!r} is not an LDH label (letters, digits, hyphen)")
    if len(label) > 63:
        raise _refuse(f"RFC 1035 §2.3.4 / BR 1.6.1 LDH Label: a label of {name!r} is longer than 63 octets")
    if label.startswith("-") or label.endswith("-"):
        raise _refuse(f"BR 1.6.1 LDH Label (RFC 5890): label {label!r} of {name!r} starts or ends with '-'")
    if label[2:4] != "--":
        return
    if not label.startswith("xn--"):
        raise _refuse(f"BR 7.1.2.7.12: {label!r} is a Reserved LDH Label ('--' at positions 3-4) and not a P-Label")
    # BR 1.6.1 P-Label: valid Punycode (RFC 3492); IDNA 2008 (RFC 5891 §5.4) also requires a valid U-label.
    try:
        unicode = idna.ulabel(label)
        valid = idna.alabel(unicode).decode("ascii") == label
    except (idna.IDNAError, UnicodeError):
        valid = False
    if not valid:
        raise _refuse(f"BR 1.6.1 P-Label / RFC 5891: {label!r} of {name!r} is invalid Punycode or not IDNA 2008")


def _normalize_dns(value: str) -> str:
    if not value:
        raise _refuse("BR 7.1.2.7.12: empty DNS name")
    prefix = "*." if value.startswith("*.") else ""  # BR 1.6.1 Wildcard Domain Name: "*." + FQDN
    rest = value[len(prefix) :]
    if rest.isascii():
        mapped = rest.lower()
    else:
        try:  # UTS #46 mapping (case folding, width) with STD3 rules: no mapping may yield '.', '_' or '*'
            mapped = idna.uts46_remap(rest, std3_rules=True)
        except (idna.IDNAError, UnicodeError) as exc:
            raise _refuse(f"UTS #46 / RFC 5891: {value!r} cannot be mapped ({exc})") from None
    if mapped.endswith("."):
        raise _refuse(f"BR 7.1.2.7.12: {value!r} ends with the root label '.'; send it without the trailing dot")
    if "*" in mapped:
        raise _refuse(f"BR 1.6.1 Wildcard Domain Name: '*' is only allowed as the whole leftmost label in {value!r}")
    labels: list[str] = []
    for label in mapped.split("."):
        if not label:
            raise _refuse(f"BR 7.1.2.7.12: {value!r} has an empty label")
        if label.isascii():
            _check_ascii_label(label, value)
            labels.append(label)
            continue
        try:
            labels.append(idna.alabel(label).decode("ascii"))
        except (idna.IDNAError, UnicodeError) as exc:
            raise _refuse(f"RFC 5891 (IDNA 2008): label {label!r} of {value!r} is not valid ({exc})") from None
    if labels[-1].isdigit():
        raise _refuse(f"BR 7.1.2.7.12: {value!r} is not a domain name (numeric TLD, RFC 3696 §2)")
    name = prefix + ".".join(labels)
    if len(name) > 253:
        raise _refuse(f"RFC 1035 §2.3.4: {value!r} is longer than 253 characters")
    return name


def _normalize_ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise _refuse(f"RFC 8738 / BR 7.1.2.7.12: {value!r} is not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise _refuse(f"BR 7.1.2.7.12: {value!r} carries an IPv6 zone identifier")
    return str(address)  # dotted quad (RFC 3986 §3.2.2) or RFC 5952 §4 text


def normalize_identifier(type: str, value: str) -> Identifier:
    """Check the syntax of one requested identifier and return it in Candor's normal form."""
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise _refuse(f"BR 7.1.2.7.12: identifier {value!r} contains whitespace or is not text")
    if len(value) > _MAX_INPUT:
        raise _refuse(f"RFC 1035 §2.3.4: identifier of {len(value)} characters is far beyond 253")
    if type == "dns":
        if is_ip_address(value):
            raise _refuse(f"BR 7.1.2.7.12: {value!r} is an IP address; request it as an 'ip' identifier")
        return Identifier("dns", _normalize_dns(value))
    if type == "ip":
        return Identifier("ip", _normalize_ip(value))
    raise _refuse(f"RFC 8555 §9.7.7: identifier type {type!r} is not supported (dns or ip)")


def is_ip_address(value: str) -> bool:
    """Whether *value* is an IPv4 or IPv6 address literal."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _check_ip(value: str) -> None:
    address = ipaddress.ip_address(value)
    reason = reserved_reason(address)
    if reason is not None:
        raise _refuse(f"BR 4.2.2 / 7.1.2.7.12: {address} is a Reserved IP Address ({reason})")


def _check_dns_name(name: str, *, reverse_zones_forbidden: bool, private: bool) -> None:
    fqdn = name.removeprefix("*.")
    labels = fqdn.split(".")
    if private:
        # A private hierarchy names its own hosts: Internal Names are what it is for (BR 4.2.2 is about
        # publicly-trusted certificates). A wildcard over a real public suffix is still refused.
        if name.startswith("*.") and labels[-1] in delegated_tlds() and is_public_suffix(fqdn):
            raise _refuse(f"BR 3.2.2.6: wildcard {name!r} covers the public suffix {fqdn!r} (PSL ICANN section)")
        return
    for count in range(1, len(labels) + 1):
        suffix = ".".join(labels[-count:])
        if suffix in _SPECIAL_USE:
            raise _refuse(
                f"BR 4.2.2 Internal Name: {name!r} is under the special-use name {suffix!r} ({_SPECIAL_USE[suffix]})"
            )
    if labels[-1] == "onion":
        raise _refuse(f"Candor policy: {name!r} is an Onion Domain Name (RFC 7686); BR Appendix B is not offered")
    if labels[-1] not in delegated_tlds():
        raise _refuse(f"BR 4.2.2 / 1.6.1 Internal Name: TLD {labels[-1]!r} of {name!r} is not in the IANA root zone")
    if reverse_zones_forbidden and any(fqdn == z or fqdn.endswith("." + z) for z in _REVERSE_ZONES):
        raise _refuse(f"BR 4.2.2 / 7.1.2.7.12 (SC-086): {name!r} ends in an IP Reverse Zone Suffix")
    if name.startswith("*.") and is_public_suffix(fqdn):
        raise _refuse(f"BR 3.2.2.6: wildcard {name!r} covers the public suffix {fqdn!r} (PSL ICANN section)")
    if len(labels) == 1:
        raise _refuse(f"Candor policy: {name!r} is a bare top-level domain")


def check_identifiers(identifiers: Sequence[Identifier], *, now: datetime, private: bool = False) -> None:
    """Refuse a set of requested identifiers that a certificate issued at *now* may not contain.

    *private* is for an issuer marked private (outside the Web PKI): it may certify Internal Names and
    Reserved IP Addresses (BR 4.2.2 governs publicly-trusted certificates only); syntax, the 100-name limit
    and the public-suffix wildcard rule still apply."""
    if not identifiers:
        raise _refuse("BR 7.1.2.7.12: at least one dNSName or iPAddress is required")
    if len(identifiers) > MAX_IDENTIFIERS:
        raise _refuse(f"Candor policy MAX_IDENTIFIERS: {len(identifiers)} identifiers, at most {MAX_IDENTIFIERS}")
    rules = rules_at(now)
    seen: set[Identifier] = set()
    for identifier in identifiers:
        if normalize_identifier(identifier.type, identifier.value) != identifier:
            raise _refuse(f"Candor policy: identifier {identifier.value!r} is not in normal form")
        if identifier in seen:
            raise _refuse(f"Candor policy: identifier {identifier.value!r} is requested twice")
        seen.add(identifier)
        if identifier.type == "dns":
            _check_dns_name(
                identifier.value, reverse_zones_forbidden=rules.reverse_zone_names_forbidden, private=private
            )
        elif not private:
            _check_ip(identifier.value)


def check_common_name(cn: str | None, identifiers: Sequence[Identifier]) -> None:
    """BR 7.1.4.3: a commonName, if present, is a character-for-character copy of one SAN entry."""
    if cn is None:
        return
    if cn not in {identifier.value for identifier in identifiers}:
        raise _refuse(f"BR 7.1.4.3: commonName {cn!r} is not a character-for-character copy of a SAN entry")
    if len(cn) > MAX_COMMON_NAME:
        raise _refuse(f"BR 7.1.4.2: commonName of {len(cn)} characters exceeds {MAX_COMMON_NAME}")


def rate_limit_key(identifier: Identifier) -> str:
    """What per-domain rate limits count: the registered domain (eTLD+1, PSL ICANN section), or the name
    itself where there is none (a private name, an IP address)."""
    if identifier.type == "ip":
        return identifier.value
    name = identifier.value.removeprefix("*.")
    try:
        return registered_domain(name)
    except CandorError:
        return name
