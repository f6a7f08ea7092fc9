"""BR-15, BR-16, BR-17, BR-18, WS-05e: name normalisation and the name rules."""

from __future__ import annotations

import importlib.resources
import ipaddress
import random
import re
from datetime import UTC, datetime, timedelta

import idna
import pytest
from publicsuffixlist import PublicSuffixList

from candor.errors import CandorError, ErrorKind
from candor.policy.ip_ranges import RESERVED_NETWORKS, reserved_reason
from candor.policy.names import (
    MAX_IDENTIFIERS,
    Identifier,
    check_common_name,
    check_identifiers,
    is_public_suffix,
    normalize_identifier,
    registered_domain,
)
from candor.policy.psl import delegated_tlds, psl_version, public_suffix

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SC_086 = datetime(2026, 3, 15, tzinfo=UTC)
RULE = re.compile(r"^(BR \d|RFC \d|UTS #46|Candor policy)")


def accept(type_: str, value: str, now: datetime = NOW) -> Identifier:
    identifier = normalize_identifier(type_, value)
    check_identifiers([identifier], now=now)
    return identifier


def refuse(type_: str, value: str, match: str, now: datetime = NOW) -> str:
    with pytest.raises(CandorError, match=match) as caught:
        accept(type_, value, now)
    assert caught.value.kind is ErrorKind.REJECTED_IDENTIFIER
    message = str(caught.value)
    assert RULE.match(message) and "\n" not in message, message
    return message


# --- BR-16: the reject list -------------------------------------------------------------------------


BR_16 = [
    ("dns", "host.local", r"special-use name 'local' \(RFC 6762"),
    ("dns", "server.corp", r"BR 4\.2\.2 / 1\.6\.1 Internal Name: TLD 'corp'"),
    ("dns", "example.invalid", r"special-use name 'invalid' \(RFC 6761"),
    ("dns", "localhost", r"special-use name 'localhost'"),
    ("dns", "www.localhost", r"special-use name 'localhost'"),
    ("dns", "printer.internal", "special-use name 'internal'"),
    ("dns", "x.test", "special-use name 'test'"),
    ("dns", "x.example", "special-use name 'example'"),
    ("dns", "x.alt", "special-use name 'alt'"),
    ("dns", "router.home.arpa", r"special-use name 'home\.arpa' \(RFC 8375\)"),
    ("dns", "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion", r"Onion Domain Name \(RFC 7686\)"),
    ("dns", "10.0.0.1", "is an IP address"),
    ("ip", "10.0.0.1", r"Reserved IP Address .*RFC 1918"),
    ("ip", "192.168.1.1", r"Reserved IP Address .*RFC 1918"),
    ("ip", "172.16.0.1", r"Reserved IP Address .*RFC 1918"),
    ("ip", "100.64.0.1", r"Reserved IP Address .*RFC 6598"),
    ("ip", "127.0.0.1", r"Reserved IP Address .*Loopback"),
    ("ip", "169.254.1.1", r"Reserved IP Address .*RFC 3927"),
    ("ip", "0.1.2.3", "Reserved IP Address"),
    ("ip", "192.0.2.1", "TEST-NET-1"),
    ("ip", "198.51.100.1", "TEST-NET-2"),
    ("ip", "203.0.113.1", "TEST-NET-3"),
    ("ip", "198.19.255.255", "Benchmarking"),
    ("ip", "224.0.0.1", "multicast"),
    ("ip", "240.0.0.1", "Reserved"),
    ("ip", "255.255.255.255", "Limited Broadcast"),
    ("ip", "::1", "Loopback"),
    ("ip", "::", "Unspecified"),
    ("ip", "fe80::1", r"Reserved IP Address .*Link-Local"),
    ("ip", "fc00::1", r"Reserved IP Address .*Unique-Local"),
    ("ip", "fd12:3456::1", "Unique-Local"),
    ("ip", "2001:db8::1", r"Reserved IP Address .*Documentation \(RFC 3849\)"),
    ("ip", "ff02::1", "multicast"),
    ("ip", "64:ff9b::808:808", "IPv4-IPv6 Translation"),
    ("ip", "::ffff:8.8.8.8", "IPv4-mapped"),
    ("ip", "2002:808:808::1", "6to4"),
    ("ip", "2001::1", "IETF Protocol Assignments"),
    ("ip", "3fff::1", r"Documentation \(RFC 9637\)"),
    ("ip", "4000::1", r"outside the global unicast block 2000::/3"),
    ("ip", "fe80::1%eth0", "zone identifier"),
    ("ip", "010.1.1.1", "not an IPv4 or IPv6 address"),
    ("ip", "example.com", "not an IPv4 or IPv6 address"),
    ("dns", "1.0.0.127.in-addr.arpa", r"BR 4\.2\.2 / 7\.1\.2\.7\.12 \(SC-086\): .*IP Reverse Zone Suffix"),
    ("dns", "x.ip6.arpa", r"\(SC-086\): .*IP Reverse Zone Suffix"),
    ("dns", "example.com.", r"BR 7\.1\.2\.7\.12: 'example\.com\.' ends with the root label"),
    ("dns", "ex_ample.com", r"BR 7\.1\.2\.7\.12 \(SC-012\): underscore"),
    ("dns", "_acme-challenge.example.com", r"\(SC-012\): underscore"),
    ("dns", "xn--abc.example", "invalid Punycode|special-use"),
    ("dns", "xn--abc.com", r"BR 1\.6\.1 P-Label / RFC 5891: 'xn--abc' .* invalid Punycode"),
    ("dns", "xn--bcher-kva-.com", "starts or ends with '-'"),
    ("dns", "xn--.com", "starts or ends with '-'"),
    ("dns", "xn--www-.com", "starts or ends with '-'"),
    ("dns", "xn--n3h.com", "invalid Punycode or not IDNA 2008"),  # U+2603 SNOWMAN: valid Punycode, not IDNA 2008
    ("dns", "ab--cd.example", "Reserved LDH Label|special-use"),
    ("dns", "ab--cd.example.com", r"BR 7\.1\.2\.7\.12: 'ab--cd' is a Reserved LDH Label"),
    ("dns", "*.*.example.com", r"BR 1\.6\.1 Wildcard Domain Name"),
    ("dns", "a*.example.com", r"BR 1\.6\.1 Wildcard Domain Name"),
    ("dns", "www.*.example.com", r"BR 1\.6\.1 Wildcard Domain Name"),
    ("dns", "*", r"BR 1\.6\.1 Wildcard Domain Name"),
    ("dns", "*.com", r"BR 3\.2\.2\.6: wildcard '\*\.com' covers the public suffix 'com'"),
    ("dns", "*.co.uk", r"BR 3\.2\.2\.6: wildcard '\*\.co\.uk' covers the public suffix 'co\.uk'"),
    ("dns", "*.kobe.jp", r"BR 3\.2\.2\.6"),
    ("dns", "*.foo.ck", r"BR 3\.2\.2\.6"),  # "*.ck" makes every foo.ck a public suffix
    ("dns", "*.local", "special-use"),
    ("dns", "com", "bare top-level domain"),
    ("dns", "", "empty DNS name"),
    ("dns", "a..example.com", "empty label"),
    ("dns", ".example.com", "empty label"),
    ("dns", "-a.example.com", r"BR 1\.6\.1 LDH Label \(RFC 5890\): .*starts or ends with '-'"),
    ("dns", "a-.example.com", "starts or ends with '-'"),
    ("dns", "a b.example.com", "whitespace"),
    ("dns", " example.com", "whitespace"),
    ("dns", "exa!mple.com", "not an LDH label"),
    ("dns", "example.com:8080", "not an LDH label"),
    ("dns", "1.2.3", r"numeric TLD, RFC 3696"),
    ("dns", "a" * 64 + ".com", "longer than 63 octets"),
    ("dns", ".".join(["a" * 63] * 4) + ".com", "longer than 253 characters"),
    ("dns", "x" * 5000, "far beyond 253"),
    ("dns", "a\u2603.com", r"RFC 5891 \(IDNA 2008\)"),
    ("dns", "a\u2488com", r"UTS #46 / RFC 5891"),  # DIGIT ONE FULL STOP must not become "1."
    ("dns", "ex_\u00e4mple.de", r"UTS #46 / RFC 5891"),
    ("dns", "*.*.b\u00fccher.de", r"UTS #46 / RFC 5891"),
    ("dns", "\uff0a.b\u00fccher.de", r"UTS #46 / RFC 5891"),  # FULLWIDTH ASTERISK
    ("dns", "b\u00fccher.de\u3002", "ends with the root label"),
    ("email", "a@example.com", r"RFC 8555 §9\.7\.7: identifier type 'email' is not supported"),
]


@pytest.mark.parametrize(("type_", "value", "match"), BR_16, ids=[f"{t}:{v[:40]}" for t, v, _ in BR_16])
def test_br16_reject_list(type_: str, value: str, match: str) -> None:
    refuse(type_, value, match)


def test_reverse_zone_names_flip_at_2026_03_15() -> None:
    for name in ("1.0.0.127.in-addr.arpa", "x.ip6.arpa", "in-addr.arpa"):
        accept("dns", name, SC_086 - timedelta(seconds=1))
        refuse("dns", name, "SC-086", SC_086)
    accept("dns", "x.e164.arpa", SC_086)  # other .arpa names are not an IP Reverse Zone Suffix


def test_naive_time_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        check_identifiers([normalize_identifier("dns", "example.com")], now=datetime(2026, 6, 1))


# --- normal forms --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "variants", "normal"),
    [
        (
            "dns",
            [
                "example.com",
                "EXAMPLE.com",
                "Example.COM",
                "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
                "example\u3002com",
            ],
            "example.com",
        ),
        (
            "dns",
            ["bücher.de", "BÜCHER.de", "xn--bcher-kva.de", "XN--BCHER-KVA.DE", "Bu\u0308cher.de"],
            "xn--bcher-kva.de",
        ),
        ("dns", ["*.bücher.de", "*.XN--bcher-kva.de"], "*.xn--bcher-kva.de"),
        ("dns", ["faß.de", "FAß.DE"], "xn--fa-hia.de"),  # IDNA 2008: ß is kept
        ("dns", ["ελληνικά.com", "xn--hxargifdar.com"], "xn--hxargifdar.com"),
        ("dns", ["xn--nxasmq6b.com", "XN--NXASMQ6B.COM"], "xn--nxasmq6b.com"),
        (
            "ip",
            ["2606:4700:0:0:0:0:0:1111", "2606:4700::1111", "2606:4700:0000::1111", "2606:4700::1111".upper()],
            "2606:4700::1111",
        ),
        ("ip", ["2606:4700:1:0:1:1:1:1"], "2606:4700:1:0:1:1:1:1"),  # RFC 5952 §4.2.2: one 0 is not compressed
        ("ip", ["2606:0:0:1:0:0:1:1"], "2606::1:0:0:1:1"),  # RFC 5952 §4.2.3: the first of equal runs
        ("ip", ["2606:4700:0:1:0:0:0:1"], "2606:4700:0:1::1"),  # RFC 5952 §4.2.3: the longest run
        ("ip", ["8.8.8.8"], "8.8.8.8"),
    ],
)
def test_variants_normalise_to_one_form(type_: str, variants: list[str], normal: str) -> None:
    for variant in variants:
        assert accept(type_, variant) == Identifier(type_, normal), variant  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "example.com",
        "www.example.co.uk",
        "a-b.example.com",
        "x1.example.org",
        "*.example.com",
        "*.city.kobe.jp",
        "*.github.io",  # a PRIVATE-section suffix: BR 3.2.2.6 says to consult the ICANN section only
        "xn--nxasmq6b.com",
        "example.xn--fiqs8s",  # an IDN TLD (.中国)
        "1.1.1.1.example.com",
        "a" * 63 + ".com",
        ".".join(["a" * 63] * 3 + ["a" * 57]) + ".com",  # exactly 253 characters
        "example.google",  # a brand gTLD
        "x.e164.arpa",
    ],
)
def test_normal_names_accepted(name: str) -> None:
    assert accept("dns", name).value == name


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "2001:4860:4860::8888"])
def test_global_addresses_accepted(address: str) -> None:
    assert accept("ip", address) == Identifier("ip", address)


# --- sets of identifiers ---------------------------------------------------------------------------


def test_one_hundred_names_accepted_and_101_refused() -> None:
    names = [normalize_identifier("dns", f"host{i}.example.com") for i in range(101)]
    check_identifiers(names[:MAX_IDENTIFIERS], now=NOW)
    with pytest.raises(CandorError, match="Candor policy MAX_IDENTIFIERS: 101 identifiers, at most 100"):
        check_identifiers(names, now=NOW)


def test_empty_set_refused() -> None:
    with pytest.raises(CandorError, match=r"BR 7\.1\.2\.7\.12: at least one"):
        check_identifiers([], now=NOW)


def test_duplicates_after_normalisation_refused() -> None:
    """WS-05e: case, IDN and width variants do not count as different names."""
    for pair in (("example.com", "EXAMPLE.com"), ("bücher.de", "xn--bcher-kva.de")):
        identifiers = [normalize_identifier("dns", value) for value in pair]
        with pytest.raises(CandorError, match="requested twice"):
            check_identifiers(identifiers, now=NOW)
    addresses = [normalize_identifier("ip", "2606:4700::1111"), normalize_identifier("ip", "2606:4700:0::1111")]
    with pytest.raises(CandorError, match="requested twice"):
        check_identifiers(addresses, now=NOW)


def test_identifiers_not_in_normal_form_refused() -> None:
    for forged in (Identifier("dns", "EXAMPLE.com"), Identifier("dns", "example.com."), Identifier("ip", "10.0.0.1")):
        with pytest.raises(CandorError):
            check_identifiers([forged], now=NOW)


# --- BR-15: commonName --------------------------------------------------------------------------------


def test_common_name_rules() -> None:
    sans = [
        normalize_identifier("dns", "bücher.de"),
        normalize_identifier("dns", "*.example.com"),
        normalize_identifier("ip", "8.8.8.8"),
        normalize_identifier("ip", "2606:4700:0:0::1111"),
        normalize_identifier("dns", "a" * 63 + ".com"),
    ]
    for cn in (None, "xn--bcher-kva.de", "*.example.com", "8.8.8.8", "2606:4700::1111"):
        check_common_name(cn, sans)
    for cn in ("bücher.de", "XN--BCHER-KVA.DE", "www.example.com", "2606:4700:0:0::1111", "example.org", ""):
        with pytest.raises(CandorError, match=r"BR 7\.1\.4\.3: commonName .* not a character-for-character copy"):
            check_common_name(cn, sans)
    with pytest.raises(CandorError, match=r"BR 7\.1\.4\.2: commonName of 67 characters exceeds 64"):
        check_common_name("a" * 63 + ".com", sans)


# --- PSL: registered domains and public suffixes ---------------------------------------------------------


def test_registered_domain_and_public_suffix() -> None:
    assert registered_domain("www.example.co.uk") == "example.co.uk"
    assert registered_domain("*.a.b.example.com") == "example.com"
    assert registered_domain("a.b.city.kobe.jp") == "city.kobe.jp"
    assert registered_domain("user.github.io") == "github.io"  # ICANN section only
    assert public_suffix("www.example.co.uk") == "co.uk"
    for suffix in ("com", "co.uk", "kobe.jp", "anything.ck", "xn--fiqs8s"):
        assert is_public_suffix(suffix)
        with pytest.raises(CandorError, match=r"BR 3\.2\.2\.6 / PSL: .* is a public suffix"):
            registered_domain(suffix)
    for name in ("example.com", "www.ck", "city.kobe.jp", "github.io"):
        assert not is_public_suffix(name)
    with pytest.raises(ValueError, match="normalised"):
        registered_domain("WWW.Example.com")


def _official_vectors() -> list[tuple[str, str | None]]:
    text = importlib.resources.files("publicsuffixlist").joinpath("test_psl.txt").read_text("utf-8")
    vectors = []
    lines = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    for match in re.finditer(r"checkPublicSuffix\('([^']*)', (null|'[^']*')\);", lines):
        domain, expected = match.group(1), match.group(2)
        if domain.startswith(".") or "uk.com" in domain:  # empty labels; uk.com is a PRIVATE-section rule
            continue
        vectors.append((domain, None if expected == "null" else expected.strip("'")))
    return vectors


def test_official_psl_vectors_icann_section() -> None:
    vectors = _official_vectors()
    assert len(vectors) > 50
    for domain, expected in vectors:
        name = idna.encode(domain, uts46=True).decode()
        if expected is None:
            assert is_public_suffix(name), domain
        else:
            assert registered_domain(name) == idna.encode(expected, uts46=True).decode(), domain


def test_matches_the_publicsuffixlist_library() -> None:
    library = PublicSuffixList(only_icann=True)
    rng = random.Random(5)
    rules = sorted(delegated_tlds())
    samples = ["www.example.co.uk", "a.b.c.kobe.jp", "city.kobe.jp", "x.www.ck", "foo.bar.ck", "s.sch.uk"]
    samples += [f"host.example.{rng.choice(rules)}" for _ in range(300)]
    for name in samples:
        ours = None if is_public_suffix(name) else registered_domain(name)
        assert ours == library.privatesuffix(name, accept_unknown=True), name


def test_root_zone_snapshot() -> None:
    tlds = delegated_tlds()
    assert len(tlds) > 1000
    assert {"com", "de", "uk", "arpa", "google", "xn--fiqs8s"} <= tlds
    assert not {"corp", "home", "mail", "lan", "local", "localhost", "internal", "test", "invalid"} & tlds
    assert psl_version() >= datetime(2026, 1, 1, tzinfo=UTC)


# --- IP ranges, cross-checked with Python -------------------------------------------------------------


def test_every_python_private_network_is_reserved() -> None:
    constants = (ipaddress._IPv4Constants, ipaddress._IPv6Constants)  # type: ignore[attr-defined]
    for network in [n for c in constants for n in c._private_networks]:
        for address in (network.network_address, network.broadcast_address):
            assert reserved_reason(address) is not None, address


def test_accepted_addresses_are_global_for_python_too() -> None:
    rng = random.Random(7)
    accepted = 0
    for _ in range(20000):
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        if reserved_reason(address) is None:
            accepted += 1
            assert address.is_global, address
    assert accepted > 15000
    for _ in range(2000):
        v6 = ipaddress.IPv6Address(rng.getrandbits(128))
        if reserved_reason(v6) is None:
            assert v6.is_global, v6


def test_reserved_table_is_well_formed() -> None:
    for network, source in RESERVED_NETWORKS:
        assert re.search(r"\(RFC \d+", source), source
        assert reserved_reason(network.network_address) is not None


@pytest.mark.parametrize(
    ("type_", "value"),
    [("dns", "localhost"), ("dns", "printer.local"), ("dns", "intranet.corp"), ("dns", "*.corp"),
     ("ip", "127.0.0.1"), ("ip", "10.1.2.3"), ("ip", "::1"), ("ip", "fd00::5")],
)  # fmt: skip
def test_a_private_issuer_may_name_internal_hosts(type_: str, value: str) -> None:
    identifier = normalize_identifier(type_, value)
    check_identifiers([identifier], now=NOW, private=True)
    with pytest.raises(CandorError):
        check_identifiers([identifier], now=NOW)  # ...and a public one may not


@pytest.mark.parametrize("value", ["*.com", "*.co.uk", "ex_ample.com", "a*.example.com"])
def test_a_private_issuer_still_refuses_public_suffix_wildcards_and_bad_syntax(value: str) -> None:
    with pytest.raises(CandorError):
        check_identifiers([normalize_identifier("dns", value)], now=NOW, private=True)
