"""ACME http-01 against real sockets on loopback (RFC 8555 §8.3; BR 3.2.2.4.19; WS-02a/c, WS-11a-c)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from validation_fakes import (
    CHALLENGE_PATH,
    KEY_AUTHORIZATION,
    THUMBPRINT,
    TOKEN,
    FakeWebServer,
    LoopbackPool,
    Route,
    ipv6_loopback_free,
    server_context,
    write_certificate,
)

from candor.clock import FakeClock
from candor.policy.names import Identifier
from candor.validation import AddressPolicy, StaticResolver, ValidationResult, validate_http01

DOMAIN = "shop.example.net"
OTHER = "cdn.example.net"
TESTING = AddressPolicy(allow_loopback=True)


def ok_route(body: bytes = KEY_AUTHORIZATION.encode()) -> dict[str, Route]:
    return {CHALLENGE_PATH: Route(200, body)}


def run(
    clock: FakeClock,
    resolver: StaticResolver,
    identifier: Identifier | None = None,
    *,
    policy: AddressPolicy = TESTING,
    key_authorization: str = KEY_AUTHORIZATION,
    timeout: float = 5.0,
) -> ValidationResult:
    result = validate_http01(
        identifier or Identifier("dns", DOMAIN),
        TOKEN,
        key_authorization,
        resolver=resolver,
        policy=policy,
        clock=clock,
        timeout=timeout,
    )
    assert "\n" not in result.detail and "Traceback" not in result.detail
    return result


@pytest.fixture(scope="module")
def https_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_certificate(tmp_path_factory.mktemp("https"), [x509.DNSName(OTHER)])


# --- the fetch itself ---------------------------------------------------------------------------------------


def test_http01_fetches_the_challenge_path_on_port_80_with_the_domain_as_host(
    clock: FakeClock, loopback: LoopbackPool, connections: list[tuple[str, int]]
) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, ok_route()) as server:
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert result.ok, result.detail
    assert (result.method, result.problem_type, result.problem_urn) == ("3.2.2.4.19", None, None)
    assert result.checked_at == clock.now()
    assert 0 <= result.elapsed < 5
    assert server.log.requests == [(CHALLENGE_PATH, DOMAIN)]
    assert connections == [(ip, 80)]
    [record] = result.records
    assert (record.url, record.ip, record.port, record.connected, record.status) == (
        f"http://{DOMAIN}{CHALLENGE_PATH}",
        ip,
        80,
        True,
        200,
    )


@pytest.mark.parametrize("suffix", [b"\n", b"\r\n", b" \t \r\n\n"])
def test_trailing_whitespace_after_the_key_authorization_is_ignored(
    clock: FakeClock, loopback: LoopbackPool, suffix: bytes
) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, ok_route(KEY_AUTHORIZATION.encode() + suffix)):
        assert run(clock, StaticResolver({DOMAIN: [ip]})).ok


@pytest.mark.parametrize(
    "body",
    [
        b" " + KEY_AUTHORIZATION.encode(),  # leading whitespace is not ignored
        b"junk" + KEY_AUTHORIZATION.encode(),
        b"<html><body>" + KEY_AUTHORIZATION.encode() + b"</body></html>",  # WS-11b: containing is not equal
        KEY_AUTHORIZATION.encode() + b"x",
        KEY_AUTHORIZATION.encode() + b"\x00",
        TOKEN.encode(),
        b"",
        f"{TOKEN}.{THUMBPRINT[::-1]}".encode(),  # WS-11c: the key authorization of another account key
    ],
)
def test_a_body_that_is_not_exactly_the_key_authorization_is_refused(
    clock: FakeClock, loopback: LoopbackPool, body: bytes
) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, ok_route(body)):
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert (result.ok, result.problem_type) == (False, "incorrectResponse")
    assert "RFC 8555 §8.3" in result.detail


def test_a_body_longer_than_the_cap_is_refused_even_if_only_whitespace_follows(
    clock: FakeClock, loopback: LoopbackPool
) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, ok_route(KEY_AUTHORIZATION.encode() + b" " * 70_000)):
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert (result.ok, result.problem_type) == (False, "incorrectResponse")
    assert "longer than" in result.detail


@pytest.mark.parametrize("status", [404, 403, 500, 503, 201, 204])
def test_the_final_status_must_be_2xx_with_the_key_authorization(
    clock: FakeClock, loopback: LoopbackPool, status: int
) -> None:
    ip = loopback.take()
    body = b"" if status == 204 else KEY_AUTHORIZATION.encode()
    with FakeWebServer(ip, 80, {CHALLENGE_PATH: Route(status, body)}):
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    if status == 201:
        assert result.ok  # any 2xx with the right body
    elif status == 204:
        assert (result.ok, result.problem_type) == (False, "incorrectResponse")
    else:
        assert (result.ok, result.problem_type) == (False, "unauthorized")
        assert str(status) in result.detail


def test_ip_identifier_is_fetched_on_its_own_address_with_the_address_as_host(
    clock: FakeClock, loopback: LoopbackPool
) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, ok_route()) as server:
        result = run(clock, StaticResolver({}), Identifier("ip", ip))
    assert result.ok, result.detail
    assert result.method == "3.2.2.5.6"  # BR 3.2.2.5.6: ACME http-01 for IP addresses (RFC 8738 §4)
    assert server.log.requests == [(CHALLENGE_PATH, ip)]


def test_ipv6_identifier_is_fetched_with_a_bracketed_host(clock: FakeClock) -> None:
    if not ipv6_loopback_free():
        pytest.skip("::1 is unavailable or its port 80/443 is taken on this machine")
    with FakeWebServer("::1", 80, ok_route()) as server:
        result = run(clock, StaticResolver({}), Identifier("ip", "::1"))
    assert result.ok, result.detail
    assert server.log.requests == [(CHALLENGE_PATH, "[::1]")]


def test_addresses_are_tried_in_order_until_one_connects(
    clock: FakeClock, loopback: LoopbackPool, connections: list[tuple[str, int]]
) -> None:
    closed, open_ = loopback.take(), loopback.take()
    with FakeWebServer(open_, 80, ok_route()):
        result = run(clock, StaticResolver({DOMAIN: [closed, open_]}))
    assert result.ok, result.detail
    assert connections == [(closed, 80), (open_, 80)]
    assert [(r.ip, r.attempted, r.connected, r.status) for r in result.records] == [
        (closed, True, False, None),
        (open_, True, True, 200),
    ]
    assert result.records[0].outcome == "connection refused"


def test_an_address_refused_by_policy_is_skipped_without_contact(
    clock: FakeClock, loopback: LoopbackPool, connections: list[tuple[str, int]]
) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, ok_route()):
        result = run(clock, StaticResolver({DOMAIN: ["10.0.0.1", ip]}))
    assert result.ok, result.detail
    assert connections == [(ip, 80)]
    assert (result.records[0].ip, result.records[0].attempted) == ("10.0.0.1", False)


# --- WS-02a: no port but 80 ---------------------------------------------------------------------------------


def test_ws02a_key_authorization_served_only_on_high_ports_fails_and_they_are_never_contacted(
    clock: FakeClock, loopback: LoopbackPool, connections: list[tuple[str, int]]
) -> None:
    ip = loopback.take()  # port 80 on it is closed
    with FakeWebServer(ip, 8080, ok_route()) as alt, FakeWebServer(ip, 50001, ok_route()) as high:
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert (result.ok, result.problem_type) == (False, "connection")
    assert f"{ip}:80" in result.detail and "connection refused" in result.detail
    assert alt.log.connections == 0 and alt.log.requests == []
    assert high.log.connections == 0 and high.log.requests == []
    assert connections == [(ip, 80)]


# --- the address policy before any connection ---------------------------------------------------------------


def test_loopback_is_refused_by_the_default_policy_before_any_connection(
    clock: FakeClock, loopback: LoopbackPool, connections: list[tuple[str, int]]
) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, ok_route()) as server:
        by_name = run(clock, StaticResolver({DOMAIN: [ip]}), policy=AddressPolicy())
        by_ip = run(clock, StaticResolver({}), Identifier("ip", ip), policy=AddressPolicy())
    assert (by_name.ok, by_name.problem_type) == (False, "dns")
    assert (by_ip.ok, by_ip.problem_type) == (False, "rejectedIdentifier")
    for result in (by_name, by_ip):
        assert "BR 1.6.1" in result.detail
        assert [(r.attempted, r.connected) for r in result.records] == [(False, False)]
    assert server.log.connections == 0
    assert connections == []


def test_a_name_that_does_not_resolve_is_a_dns_problem(clock: FakeClock, connections: list[tuple[str, int]]) -> None:
    result = run(clock, StaticResolver({}))
    assert (result.ok, result.problem_type, result.records) == (False, "dns", ())
    assert connections == []


# --- WS-02c: the redirect matrix ----------------------------------------------------------------------------


@pytest.fixture
def two_hosts(loopback: LoopbackPool) -> tuple[str, str, StaticResolver]:
    first, second = loopback.take(), loopback.take()
    return first, second, StaticResolver({DOMAIN: [first], OTHER: [second]})


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("location", [f"http://{OTHER}/final", f"http://{OTHER}:80/final"])
def test_redirects_to_http_on_port_80_are_followed(
    clock: FakeClock,
    two_hosts: tuple[str, str, StaticResolver],
    connections: list[tuple[str, int]],
    status: int,
    location: str,
) -> None:
    first, second, resolver = two_hosts
    redirect = {CHALLENGE_PATH: Route(status, b"moved", (("Location", location),))}
    with (
        FakeWebServer(first, 80, redirect),
        FakeWebServer(second, 80, {"/final": Route(200, KEY_AUTHORIZATION.encode())}) as b,
    ):
        result = run(clock, resolver)
    assert result.ok, result.detail
    assert b.log.requests == [("/final", OTHER)]
    assert connections == [(first, 80), (second, 80)]
    assert [r.status for r in result.records] == [status, 200]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("location", [f"https://{OTHER}/final", f"https://{OTHER}:443/final"])
def test_redirects_to_https_on_port_443_are_followed_without_certificate_checks(
    clock: FakeClock,
    two_hosts: tuple[str, str, StaticResolver],
    https_cert: tuple[Path, Path],
    connections: list[tuple[str, int]],
    status: int,
    location: str,
) -> None:
    first, second, resolver = two_hosts
    redirect = {CHALLENGE_PATH: Route(status, b"", (("Location", location),))}
    final = {"/final": Route(200, KEY_AUTHORIZATION.encode())}
    with FakeWebServer(first, 80, redirect), FakeWebServer(second, 443, final, tls=server_context(*https_cert)) as b:
        result = run(clock, resolver)
    assert result.ok, result.detail
    assert b.log.requests == [("/final", OTHER)]
    assert b.log.server_names == [OTHER]  # SNI is sent even though the certificate is not verified
    assert connections == [(first, 80), (second, 443)]


def test_a_relative_redirect_on_the_same_host_is_followed(
    clock: FakeClock, loopback: LoopbackPool, connections: list[tuple[str, int]]
) -> None:
    ip = loopback.take()
    routes = {
        CHALLENGE_PATH: Route(302, b"", (("Location", "/elsewhere?x=1"),)),
        "/elsewhere?x=1": Route(200, KEY_AUTHORIZATION.encode()),
    }
    with FakeWebServer(ip, 80, routes) as server:
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert result.ok, result.detail
    assert server.log.requests == [(CHALLENGE_PATH, DOMAIN), ("/elsewhere?x=1", DOMAIN)]


@pytest.mark.parametrize(
    "location",
    [
        f"http://{OTHER}:8443/final",
        f"https://{OTHER}:8443/final",
        f"http://{OTHER}:8080/final",
        f"http://{OTHER}:50001/final",
        f"http://{OTHER}:443/final",  # http is fetched on 80 only
        f"https://{OTHER}:80/final",  # https on 443 only
        f"http://{OTHER}:0/final",
        f"http://{OTHER}:99999/final",
        f"ftp://{OTHER}/final",
        "file:///etc/passwd",
        f"data:text/plain,{KEY_AUTHORIZATION}",
        f"gopher://{OTHER}/final",
        f"//{OTHER}:8080/final",  # scheme-relative
        f"http://user:secret@{OTHER}/final",
        f"http://user@{OTHER}/final",
        f"http://{OTHER}@10.0.0.1/final",
        "http://10.0.0.1/final",  # RFC 1918: refused by the policy before any connection
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/final",
        "http://[fd00::1]/final",
        "http://[fe80::1%25eth0]/final",
        "http://127.1/final",  # legacy IPv4 forms are not resolved
        "http://2130706433/final",
        "http://0x7f.0.0.1/final",
        "http://internal.example.net/final",  # resolves to 10.0.0.1
        "http://under_score.example.net/final",
        "http:///final",
        "http:final",
        f"http://{OTHER}/final with space",
    ],
)
def test_refused_redirect_targets_are_never_contacted(
    clock: FakeClock,
    two_hosts: tuple[str, str, StaticResolver],
    connections: list[tuple[str, int]],
    location: str,
) -> None:
    first, second, _ = two_hosts
    resolver = StaticResolver({DOMAIN: [first], OTHER: [second], "internal.example.net": ["10.0.0.1"]})
    redirect = {CHALLENGE_PATH: Route(302, b"", (("Location", location),))}
    final = {"/final": Route(200, KEY_AUTHORIZATION.encode())}
    with (
        FakeWebServer(first, 80, redirect),
        FakeWebServer(second, 80, final) as on_80,
        FakeWebServer(second, 8443, final) as on_8443,
        FakeWebServer(second, 8080, final) as on_8080,
    ):
        result = run(clock, resolver)
    assert (result.ok, result.problem_type) == (False, "connection")
    assert "redirect" in result.detail or "BR 1.6.1" in result.detail
    assert connections == [(first, 80)]
    assert on_80.log.connections == on_8443.log.connections == on_8080.log.connections == 0


@pytest.mark.parametrize("status", [303, 300, 304, 305])
def test_other_3xx_statuses_are_not_followed(
    clock: FakeClock, two_hosts: tuple[str, str, StaticResolver], connections: list[tuple[str, int]], status: int
) -> None:
    first, second, resolver = two_hosts
    redirect = {CHALLENGE_PATH: Route(status, b"", (("Location", f"http://{OTHER}/final"),))}
    with (
        FakeWebServer(first, 80, redirect),
        FakeWebServer(second, 80, {"/final": Route(200, KEY_AUTHORIZATION.encode())}),
    ):
        result = run(clock, resolver)
    assert (result.ok, result.problem_type) == (False, "unauthorized")
    assert str(status) in result.detail
    assert connections == [(first, 80)]


def test_meta_refresh_is_not_followed(
    clock: FakeClock, two_hosts: tuple[str, str, StaticResolver], connections: list[tuple[str, int]]
) -> None:
    first, second, resolver = two_hosts
    page = f'<html><head><meta http-equiv="refresh" content="0; url=http://{OTHER}/final"></head></html>'
    final = {"/final": Route(200, KEY_AUTHORIZATION.encode())}
    with FakeWebServer(first, 80, ok_route(page.encode())), FakeWebServer(second, 80, final) as b:
        result = run(clock, resolver)
    assert (result.ok, result.problem_type) == (False, "incorrectResponse")
    assert b.log.connections == 0
    assert connections == [(first, 80)]


def test_two_location_headers_are_refused(clock: FakeClock, loopback: LoopbackPool) -> None:
    ip = loopback.take()
    headers = (("Location", "/a"), ("Location", "/b"))
    with FakeWebServer(ip, 80, {CHALLENGE_PATH: Route(302, b"", headers)}):
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert (result.ok, result.problem_type) == (False, "connection")


def _chain(hops: int) -> dict[str, Route]:
    """A challenge path that takes *hops* redirects to reach the key authorization."""
    paths = [CHALLENGE_PATH] + [f"/hop/{n}" for n in range(1, hops + 1)]
    routes = {path: Route(302, b"", (("Location", paths[n + 1]),)) for n, path in enumerate(paths[:-1])}
    routes[paths[-1]] = Route(200, KEY_AUTHORIZATION.encode())
    return routes


def test_ten_redirects_are_followed(clock: FakeClock, loopback: LoopbackPool) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, _chain(10)) as server:
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert result.ok, result.detail
    assert len(server.log.requests) == 11


def test_more_than_ten_redirects_are_refused(clock: FakeClock, loopback: LoopbackPool) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, _chain(11)) as server:
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert (result.ok, result.problem_type) == (False, "connection")
    assert "more than 10 redirects" in result.detail
    assert len(server.log.requests) == 11  # the 11th redirect is not followed


def test_a_redirect_loop_ends_after_ten_hops(clock: FakeClock, loopback: LoopbackPool) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, {CHALLENGE_PATH: Route(301, b"", (("Location", CHALLENGE_PATH),))}) as server:
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert (result.ok, result.problem_type) == (False, "connection")
    assert len(server.log.requests) == 11


def test_an_https_target_that_does_not_speak_tls_is_a_tls_problem(
    clock: FakeClock, two_hosts: tuple[str, str, StaticResolver]
) -> None:
    first, second, resolver = two_hosts
    redirect = {CHALLENGE_PATH: Route(302, b"", (("Location", f"https://{OTHER}/final"),))}
    with FakeWebServer(first, 80, redirect), FakeWebServer(second, 443, {"/final": Route(200, b"plain")}):
        result = run(clock, resolver)
    assert (result.ok, result.problem_type) == (False, "tls")


# --- one time budget ------------------------------------------------------------------------------------------


@pytest.fixture
def stalling_server(loopback: LoopbackPool) -> Iterator[tuple[str, threading.Event]]:
    """Port 80 on a fresh address: answers with one header byte every 0.1 s, for ever (until the test ends)."""
    ip = loopback.take()
    stop = threading.Event()
    listener = socket.create_server((ip, 80))
    listener.settimeout(0.05)

    def drip() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while not stop.wait(0.1):
                        conn.sendall(b"a")
                except OSError:
                    continue

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield ip, stop
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_the_time_budget_bounds_a_server_that_drips_its_response(
    clock: FakeClock, stalling_server: tuple[str, threading.Event]
) -> None:
    ip, _ = stalling_server
    started = time.monotonic()
    result = run(clock, StaticResolver({DOMAIN: [ip]}), timeout=1.0)
    assert time.monotonic() - started < 3
    assert (result.ok, result.problem_type) == (False, "connection")
    assert "timed out" in result.detail


# --- inputs -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "key_authorization"),
    [
        ("../../etc/passwd", KEY_AUTHORIZATION),  # the path is the CA's, never steered (WS-11a)
        ("short", "short." + THUMBPRINT),
        (TOKEN + "=", TOKEN + "=." + THUMBPRINT),
        (TOKEN, TOKEN + "." + THUMBPRINT[:-1]),
        (TOKEN, "other." + THUMBPRINT),
        (TOKEN, TOKEN + "." + THUMBPRINT + "\n"),
    ],
)
def test_a_malformed_token_or_key_authorization_sends_nothing(
    clock: FakeClock, connections: list[tuple[str, int]], token: str, key_authorization: str
) -> None:
    result = validate_http01(
        Identifier("dns", DOMAIN),
        token,
        key_authorization,
        resolver=StaticResolver({DOMAIN: ["127.0.0.1"]}),
        policy=TESTING,
        clock=clock,
    )
    assert (result.ok, result.problem_type, result.records) == (False, "malformed", ())
    assert connections == []


def test_a_wildcard_cannot_be_validated_by_http01(clock: FakeClock, connections: list[tuple[str, int]]) -> None:
    result = run(clock, StaticResolver({}), Identifier("dns", "*." + DOMAIN))
    assert (result.ok, result.problem_type) == (False, "rejectedIdentifier")
    assert connections == []


@pytest.mark.parametrize(
    "kwargs", [{"timeout": 0}, {"timeout": float("nan")}, {"timeout": 301}, {"max_redirects": 11}, {"max_body": 10}]
)
def test_out_of_range_settings_are_programming_errors(clock: FakeClock, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        validate_http01(
            Identifier("dns", DOMAIN),
            TOKEN,
            KEY_AUTHORIZATION,
            resolver=StaticResolver({}),
            policy=TESTING,
            clock=clock,
            **kwargs,  # type: ignore[arg-type]
        )


def test_the_recorded_addresses_parse(clock: FakeClock, loopback: LoopbackPool) -> None:
    ip = loopback.take()
    with FakeWebServer(ip, 80, ok_route()):
        result = run(clock, StaticResolver({DOMAIN: [ip]}))
    assert all(ipaddress.ip_address(record.ip) for record in result.records)
