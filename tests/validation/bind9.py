"""A real authoritative DNS server (BIND 9 ``named``) on loopback serving a private, DNSSEC-signed DNS tree.

:func:`running_named` generates keys (``dnssec-keygen``), signs the zones (``dnssec-signzone``) into a
directory, starts ``named -g`` (foreground, logging to stderr, no rndc: ``controls {}``) on 127.0.0.1, port
5353 or another free one, waits until it answers (at most :data:`START_TIMEOUT` seconds) and stops it on exit.
Keys are fresh for every server (ECDSA and Ed25519 keys take milliseconds; the root's RSA keys a fraction of a
second). The tree, served authoritatively and without recursion:

- ``.`` (RSASHA256, NSEC): the test root. Its DS is the trust anchor, :attr:`Named.trust_anchors`.
  ``lame.`` is delegated to a server that does not serve it (a referral is all ``named`` can say).
- ``com`` (ECDSAP256SHA256, NSEC3 without opt-out): ``tagged CAA 128 futuretag "x"``, ``host.nocaa A`` with no
  CAA anywhere above it, ``dns01-target TXT`` (:data:`DNS01_DIGEST`), ``*.wild TXT "wildcard"``.
- ``example.com`` (ED25519, NSEC): A/AAAA records, ``CAA 0 issue "candor.test"`` at the apex, ``CAA 0 issue
  "other-ca.example"`` at ``other``, ``alias CNAME other``, ``ext CNAME tagged.com.`` (into the parent zone),
  ``*.wild A 192.0.2.40``, and dns-01 records: ``_acme-challenge.www`` (the digest), ``_acme-challenge.multi``
  (a wrong value and the digest split over two strings), ``_acme-challenge.wrong`` (two wrong values),
  ``_acme-challenge.moved CNAME dns01-target.com.`` and ``_acme-challenge.unsigned CNAME
  _acme-challenge.insecure.test.`` (from a signed zone into an unsigned one).
- ``test`` (ECDSAP256SHA256, NSEC), delegating:

  - ``bogus.test``: signed, then tampered with after signing (the RRSIGs kept): ``_acme-challenge TXT`` now
    holds the digest, ``www A`` 192.0.2.51 (signed as .50), ``caa CAA 0 issue "candor.test"`` (signed as
    "other-ca.example"); ``ok A 192.0.2.52`` is untouched.
  - ``expired.test``: signatures valid only in 2020 (``_acme-challenge TXT`` digest, ``www A``).
  - ``wrongkey.test``: signed with keys that do not match the DS ``test`` publishes for it.
  - ``optout.test`` (ECDSAP384SHA384, NSEC3 with opt-out): ``www A``, and ``island`` delegated without DS to an
    unsigned zone (``www.island.optout.test A 192.0.2.91``): Insecure through an opt-out span.
  - ``insecure.test``: unsigned, no DS in ``test``: ``www A 192.0.2.60``, ``_acme-challenge TXT`` (digest),
    ``CAA 0 issue "candor.test"``.
  - ``oddalg.test``: unsigned, its only DS names algorithm 253 (PRIVATEOID-like, unsupported): Insecure.
  - ``broken.test``: has a DS, but its zone file does not load, so ``named`` answers SERVFAIL.
  - ``dyn.test`` (:attr:`Named.dynamic_zone`): signed by ``named`` itself (``dnssec-policy``), accepts RFC 2136
    updates signed with the TSIG key :attr:`Named.tsig_key_name` (:attr:`Named.tsig_algorithm`,
    :attr:`Named.tsig_secret`); updates are signed as they are applied. :meth:`Named.set_txt` uses it.

Signatures of the zones signed here are valid from 2020-01-01 to ten years from now (the tests' fake clock
stands in 2026); ``dyn.test`` is signed by ``named`` with the real clock (inception one hour ago).
Any name outside the tree is NXDOMAIN from the root. When ``named`` or the DNSSEC tools are not installed
the caller skips (``unavailable``), or fails if ``CANDOR_REQUIRE_ALL=1``. Debian: ``apt-get install bind9
bind9-utils``.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.zone
import pytest

# named only listens on addresses configured on an interface, and this machine's lo carries 127.0.0.1 alone
# (the rest of 127.0.0.0/8 is routed to lo but not configured), so named gets 127.0.0.1 and a free port.
ADDRESS = "127.0.0.1"
PREFERRED_PORT = 5353
START_TIMEOUT = 20.0  # seconds for named to load and sign its zones and answer
STOP_TIMEOUT = 10.0
TOOL_TIMEOUT = 60.0

# dns-01 (RFC 8555 §8.4): the RFC's example token and thumbprint, and the TXT value they give.
DNS01_TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
DNS01_THUMBPRINT = "nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ"
DNS01_KEY_AUTHORIZATION = f"{DNS01_TOKEN}.{DNS01_THUMBPRINT}"
DNS01_DIGEST = base64.urlsafe_b64encode(hashlib.sha256(DNS01_KEY_AUTHORIZATION.encode()).digest()).decode().rstrip("=")

SIGNED_FROM = "20200101000000"
TSIG_KEY_NAME = "candor-tsig."
TSIG_ALGORITHM = "hmac-sha256"
DYNAMIC_ZONE = "dyn.test"

_SOA = "@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ IN NS ns.test.\n"

ROOT = """\
$TTL 300
.           IN SOA ns. hostmaster.test. 1 3600 600 86400 300
.           IN NS  ns.
ns.         IN A   127.0.0.1
com.        IN NS  ns.com.
ns.com.     IN A   127.0.0.1
test.       IN NS  ns.test.
ns.test.    IN A   127.0.0.1
lame.       IN NS  ns.
"""

COM = """\
$TTL 300
@       IN SOA  ns.example.com. hostmaster.example.com. 1 3600 600 86400 300
@       IN NS   ns.com.
ns      IN A    127.0.0.1
tagged  IN CAA  128 futuretag "x"
host.nocaa IN A 192.0.2.30
example IN NS   ns.example
ns.example IN A 127.0.0.1
dns01-target IN TXT "{digest}"
*.wild  IN TXT  "wildcard"
"""

EXAMPLE_COM = """\
$TTL 300
@       IN SOA  ns.example.com. hostmaster.example.com. 1 3600 600 86400 300
@       IN NS   ns.example.com.
ns      IN A    127.0.0.1
@       IN A    192.0.2.1
@       IN CAA  0 issue "candor.test"
www     IN A    192.0.2.10
www     IN AAAA 2001:db8::10
v4only  IN A    192.0.2.11
other   IN A    192.0.2.20
other   IN CAA  0 issue "other-ca.example"
alias   IN CNAME other
ext     IN CNAME tagged.com.
*.wild  IN A    192.0.2.40
_acme-challenge.www   IN TXT "{digest}"
_acme-challenge.multi IN TXT "not-the-digest"
_acme-challenge.multi IN TXT "{digest_head}" "{digest_tail}"
_acme-challenge.wrong IN TXT "not-the-digest"
_acme-challenge.wrong IN TXT "also-wrong"
_acme-challenge.moved IN CNAME dns01-target.com.
_acme-challenge.unsigned IN CNAME _acme-challenge.insecure.test.
"""

TEST = (
    "$TTL 300\n"
    + _SOA
    + """\
ns       IN A  127.0.0.1
bogus    IN NS ns.test.
expired  IN NS ns.test.
wrongkey IN NS ns.test.
optout   IN NS ns.test.
insecure IN NS ns.test.
oddalg   IN NS ns.test.
oddalg   IN DS 12345 253 2 {odd_digest}
broken   IN NS ns.test.
dyn      IN NS ns.test.
"""
)

BOGUS_SIGNED_TXT = "signed-value-before-tampering"
BOGUS = (
    "$TTL 300\n"
    + _SOA
    + f"""\
_acme-challenge IN TXT "{BOGUS_SIGNED_TXT}"
www  IN A   192.0.2.50
caa  IN CAA 0 issue "other-ca.example"
ok   IN A   192.0.2.52
"""
)
# (owner, type, what the test server serves instead of what was signed): the RRSIGs stay those of the signed data.
BOGUS_TAMPERING = (
    ("_acme-challenge", "TXT", '"{digest}"'),
    ("www", "A", "192.0.2.51"),
    ("caa", "CAA", '0 issue "candor.test"'),
)

EXPIRED = "$TTL 300\n" + _SOA + '_acme-challenge IN TXT "{digest}"\nwww IN A 192.0.2.70\n'
WRONGKEY = "$TTL 300\n" + _SOA + '_acme-challenge IN TXT "{digest}"\nwww IN A 192.0.2.80\n'
OPTOUT = "$TTL 300\n" + _SOA + "www IN A 192.0.2.90\nisland IN NS ns.test.\n"
ISLAND = "$TTL 300\n" + _SOA + "www IN A 192.0.2.91\n"
INSECURE = (
    "$TTL 300\n" + _SOA + 'www IN A 192.0.2.60\n_acme-challenge IN TXT "{digest}"\n@ IN CAA 0 issue "candor.test"\n'
)
ODDALG = "$TTL 300\n" + _SOA + "www IN A 192.0.2.100\n"
DYN = "$TTL 60\n" + _SOA

DNSSEC_POLICY = """\
dnssec-policy "candor-test" {
    keys { csk key-directory lifetime unlimited algorithm ecdsap256sha256; };
};
"""


def unavailable(reason: str) -> None:
    """Skip with *reason*, or fail with it when CANDOR_REQUIRE_ALL=1 asks for every test to run."""
    if os.environ.get("CANDOR_REQUIRE_ALL") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Named:
    address: str
    port: int
    directory: Path
    trust_anchors: tuple[str, ...]  # the test root's DS records, presentation form (". IN DS ...")
    tsig_secret: str  # base64, for TSIG_KEY_NAME with TSIG_ALGORITHM
    tsig_key_name: str = TSIG_KEY_NAME
    tsig_algorithm: str = TSIG_ALGORITHM
    dynamic_zone: str = DYNAMIC_ZONE

    @property
    def nameserver(self) -> tuple[str, int]:
        return (self.address, self.port)

    def update(self, update: dns.update.UpdateMessage) -> None:
        """Send an RFC 2136 update, signed with the TSIG key; fail the test unless it is applied."""
        response = dns.query.tcp(update, self.address, port=self.port, timeout=5.0)
        if response.rcode() != dns.rcode.NOERROR:
            raise AssertionError(f"RFC 2136 update refused: {dns.rcode.to_text(response.rcode())}")

    def set_txt(self, name: str, *values: str, ttl: int = 60) -> None:
        """Replace the TXT RRset at *name* (inside :attr:`dynamic_zone`) with *values*; none deletes it."""
        keyring = dns.tsigkeyring.from_text({self.tsig_key_name: (self.tsig_algorithm, self.tsig_secret)})
        update = dns.update.UpdateMessage(self.dynamic_zone, keyring=keyring, keyalgorithm=dns.tsig.HMAC_SHA256)
        update.delete(name + ".", "TXT")
        for value in values:
            update.add(name + ".", ttl, "TXT", f'"{value}"')
        self.update(update)


def _port_free(address: str, port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((address, port))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    return False
                raise
    return True


def free_port(address: str = ADDRESS) -> int:
    """A port free for both UDP and TCP on *address*: 5353 when it is, else one the kernel picks."""
    if _port_free(address, PREFERRED_PORT):
        return PREFERRED_PORT
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
            port = int(probe.getsockname()[1])
        if _port_free(address, port):
            return port
    raise RuntimeError(f"no port free for both UDP and TCP on {address}")


# --- building the signed tree ---------------------------------------------------------------------------------


def _tool(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    unavailable(f"BIND 9 {name} is not installed (apt-get install bind9 bind9-utils)")
    raise AssertionError("unreachable")


def _run(*args: str, cwd: Path) -> str:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _keygen(keys: Path, zone: str, algorithm: str, *extra: str) -> str:
    """Generate one key for *zone* into *keys*; return its file base name (Kzone.+alg+tag)."""
    bits = ("-b", "2048") if algorithm.startswith("RSA") else ()
    return _run(_tool("dnssec-keygen"), "-q", "-a", algorithm, *bits, *extra, "-K", str(keys), zone, cwd=keys).strip()


def _ds(keys: Path, key: str) -> str:
    """The SHA-256 DS record (RFC 4509) of the key file *key*, presentation form."""
    return _run(_tool("dnssec-dsfromkey"), "-2", str(keys / f"{key}.key"), cwd=keys).strip()


@dataclass(frozen=True)
class _Zone:
    name: str  # no trailing dot, "." for the root
    text: str
    algorithm: str | None = None  # None: unsigned
    nsec3: tuple[str, ...] = ()  # dnssec-signzone NSEC3 options; () for NSEC
    expires: str | None = None  # signature expiration (YYYYMMDDHHMMSS); None: ten years from now
    signed_from: str = SIGNED_FROM

    @property
    def origin(self) -> str:
        return "." if self.name == "." else self.name + "."

    @property
    def file(self) -> str:
        return "root.zone" if self.name == "." else f"{self.name}.zone"


def _sign(directory: Path, keys: Path, zone: _Zone, text: str) -> list[str]:
    """Sign *zone* (fresh KSK and ZSK) into directory/zone.file; return the DS records of its KSK."""
    assert zone.algorithm is not None
    ksk = _keygen(keys, zone.origin, zone.algorithm, "-f", "KSK")
    _keygen(keys, zone.origin, zone.algorithm)
    unsigned = directory / f"{zone.file}.unsigned"
    unsigned.write_text(text)
    expires = zone.expires or (datetime.now(UTC) + timedelta(days=3650)).strftime("%Y%m%d%H%M%S")
    _run(
        _tool("dnssec-signzone"), "-q", "-S", "-K", str(keys), "-o", zone.origin, "-f", str(directory / zone.file),
        "-s", zone.signed_from, "-e", expires, *zone.nsec3, *(("-P",) if zone.expires else ()), "-d", str(keys),
        str(unsigned),
        cwd=directory,
    )  # fmt: skip
    return [_ds(keys, ksk)]


def _build_tree(directory: Path) -> tuple[tuple[str, ...], str]:
    """Write every zone file and named.conf's includes into *directory*; return (trust anchors, TSIG secret)."""
    keys = directory / "keys"
    keys.mkdir()
    digest = DNS01_DIGEST
    fill = {
        "digest": digest,
        "digest_head": digest[:20],
        "digest_tail": digest[20:],
        "odd_digest": hashlib.sha256(b"an unsupported algorithm").hexdigest().upper(),
    }
    nsec3 = ("-3", "-", "-H", "0")
    zones = [  # children before parents: a parent's text gets its children's DS records
        _Zone("example.com", EXAMPLE_COM, "ED25519"),
        _Zone("bogus.test", BOGUS, "ECDSAP256SHA256"),
        _Zone("expired.test", EXPIRED, "ECDSAP256SHA256", expires="20210101000000"),
        _Zone("wrongkey.test", WRONGKEY, "ECDSAP256SHA256"),
        _Zone("optout.test", OPTOUT, "ECDSAP384SHA384", nsec3=(*nsec3, "-A")),
        _Zone("island.optout.test", ISLAND),
        _Zone("insecure.test", INSECURE),
        _Zone("oddalg.test", ODDALG),
        _Zone("com", COM, "ECDSAP256SHA256", nsec3=nsec3),
        _Zone("test", TEST, "ECDSAP256SHA256"),
        _Zone(".", ROOT, "RSASHA256"),
    ]
    unused = directory / "unused-keys"  # out of dnssec-signzone's sight: -S signs with every key in its -K
    unused.mkdir()
    ds: dict[str, list[str]] = {
        # a key that signs nothing: the DS the parent publishes for wrongkey.test
        "wrongkey.test": [_ds(unused, _keygen(unused, "wrongkey.test.", "ECDSAP256SHA256", "-f", "KSK"))],
        # broken.test has a DS but no zone: its file never loads
        "broken.test": [_ds(unused, _keygen(unused, "broken.test.", "ECDSAP256SHA256", "-f", "KSK"))],
    }
    policy = directory / "policy.conf"
    policy.write_text(DNSSEC_POLICY)
    dyn_key = _run(
        _tool("dnssec-keygen"), "-q", "-k", "candor-test", "-l", str(policy), "-K", str(keys), DYNAMIC_ZONE + ".",
        cwd=keys,
    ).strip()  # fmt: skip
    ds[DYNAMIC_ZONE] = [_ds(keys, dyn_key)]
    (directory / f"{DYNAMIC_ZONE}.zone").write_text(DYN)
    anchors: list[str] = []
    for zone in zones:
        text = zone.text.format(**fill)
        children = [name for name in ds if dns.name.from_text(name).parent() == dns.name.from_text(zone.origin)]
        text += "".join(record + "\n" for child in children for record in ds.pop(child))
        if zone.algorithm is None:
            (directory / zone.file).write_text(text)
            continue
        ds_records = _sign(directory, keys, zone, text)
        if zone.name == ".":
            anchors = [" ".join(record.split()) for record in ds_records]
        elif zone.name != "wrongkey.test":
            ds[zone.name] = ds_records
    assert not ds, f"DS records without a parent zone: {sorted(ds)}"
    _tamper(directory / "bogus.test.zone", "bogus.test.", fill)
    return tuple(anchors), base64.b64encode(secrets.token_bytes(32)).decode()


def _tamper(path: Path, origin: str, fill: dict[str, str]) -> None:
    """Replace the data of BOGUS_TAMPERING in the signed zone file at *path*, keeping the RRSIGs."""
    zone = dns.zone.from_file(str(path), origin, relativize=False, check_origin=True)
    for owner, rdtype, value in BOGUS_TAMPERING:
        name = dns.name.from_text(owner, dns.name.from_text(origin))
        node = zone.find_node(name)
        signed = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
        forged = dns.rdataset.from_text("IN", rdtype, signed.ttl, value.format(**fill))
        node.replace_rdataset(forged)
    zone.to_file(str(path), relativize=False)


def _config(directory: Path, address: str, port: int, tsig_secret: str) -> str:
    served = [
        ".", "com", "example.com", "test", "bogus.test", "expired.test", "wrongkey.test", "optout.test",
        "island.optout.test", "insecure.test", "oddalg.test",
    ]  # fmt: skip
    zones = "".join(
        f'zone "{name}" {{ type primary; file "{directory}/{"root" if name == "." else name}.zone"; }};\n'
        for name in served
    )
    return f"""\
options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    managed-keys-directory "{directory}";
    key-directory "{directory}/keys";
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
include "{directory}/policy.conf";
key "{TSIG_KEY_NAME}" {{ algorithm {TSIG_ALGORITHM}; secret "{tsig_secret}"; }};
{zones}zone "broken.test" {{ type primary; file "{directory}/broken.test.zone.missing"; }};
zone "{DYNAMIC_ZONE}" {{
    type primary;
    file "{directory}/{DYNAMIC_ZONE}.zone";
    dnssec-policy "candor-test";
    allow-update {{ key "{TSIG_KEY_NAME}"; }};
}};
"""


def _answers(address: str, port: int) -> bool:
    """True once named answers for a static zone and has signed the dynamic one."""
    for name, rdtype in (("example.com", "SOA"), (DYNAMIC_ZONE, "DNSKEY")):
        query = dns.message.make_query(name, rdtype, want_dnssec=True)
        try:
            response = dns.query.udp(query, address, port=port, timeout=0.5)
        except (dns.exception.DNSException, OSError):
            return False
        signed = any(rrset.rdtype == dns.rdatatype.RRSIG for rrset in response.answer)
        if response.rcode() != dns.rcode.NOERROR or not signed:
            return False
    return True


@contextmanager
def running_named(directory: Path) -> Iterator[Named]:
    """Build and sign the test tree in *directory*, start named serving it; stop it on exit."""
    named = _tool("named")
    anchors, tsig_secret = _build_tree(directory)
    address, port = ADDRESS, free_port()
    conf = directory / "named.conf"
    conf.write_text(_config(directory, address, port, tsig_secret))
    log = (directory / "named.log").open("w")
    process = subprocess.Popen([named, "-g", "-n", "1", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(address, port):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (directory / "named.log").read_text()[-3000:]
                pytest.fail(f"named did not start answering on {address}:{port}:\n{tail}", pytrace=False)
            time.sleep(0.1)
        yield Named(address, port, directory, anchors, tsig_secret)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        log.close()
