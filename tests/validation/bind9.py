"""A real authoritative DNS server (BIND 9 ``named``) on loopback, for the DNS resolver tests.

:func:`running_named` writes a named.conf and zone files into a directory, starts ``named -g`` (foreground,
logging to stderr, no rndc: ``controls {}``) on 127.0.0.1, port 5353 or another free one, waits until it
answers (at most :data:`START_TIMEOUT` seconds) and stops it on exit. It serves, authoritatively and without recursion:

- ``example.com``: A/AAAA records, ``CAA 0 issue "candor.test"`` at the apex, ``CAA 0 issue
  "other-ca.example"`` at ``other``, ``alias CNAME other``, ``ext CNAME tagged.com.`` (into the next zone);
- ``com``: ``tagged CAA 128 futuretag "x"`` and ``host.nocaa A`` with no CAA anywhere above it.

Any other name is REFUSED. When ``named`` is not installed the caller skips (``unavailable``), or fails if
``CANDOR_REQUIRE_ALL=1``. Debian: ``apt-get install bind9 bind9-utils``.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

# named only listens on addresses configured on an interface, and this machine's lo carries 127.0.0.1 alone
# (the rest of 127.0.0.0/8 is routed to lo but not configured), so named gets 127.0.0.1 and a free port.
ADDRESS = "127.0.0.1"
PREFERRED_PORT = 5353
START_TIMEOUT = 20.0  # seconds for named to load its zones and answer
STOP_TIMEOUT = 10.0

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
"""

COM = """\
$TTL 300
@       IN SOA  ns.example.com. hostmaster.example.com. 1 3600 600 86400 300
@       IN NS   ns.com.
ns      IN A    127.0.0.1
tagged  IN CAA  128 futuretag "x"
host.nocaa IN A 192.0.2.30
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

    @property
    def nameserver(self) -> tuple[str, int]:
        return (self.address, self.port)


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


def _config(directory: Path, address: str, port: int) -> str:
    return f"""\
options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    managed-keys-directory "{directory}";
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
zone "example.com" {{ type primary; file "{directory}/example.com.zone"; }};
zone "com" {{ type primary; file "{directory}/com.zone"; }};
"""


def _answers(address: str, port: int) -> bool:
    query = dns.message.make_query("example.com", "SOA")
    try:
        response = dns.query.udp(query, address, port=port, timeout=0.5)
    except (dns.exception.DNSException, OSError):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)


@contextmanager
def running_named(directory: Path) -> Iterator[Named]:
    """Start named serving the test zones from *directory*; stop it on exit."""
    named = shutil.which("named") or ("/usr/sbin/named" if Path("/usr/sbin/named").exists() else None)
    if named is None:
        unavailable("BIND 9 named is not installed (apt-get install bind9 bind9-utils)")
        raise AssertionError("unreachable")
    address, port = ADDRESS, free_port()
    (directory / "example.com.zone").write_text(EXAMPLE_COM)
    (directory / "com.zone").write_text(COM)
    conf = directory / "named.conf"
    conf.write_text(_config(directory, address, port))
    log = (directory / "named.log").open("w")
    process = subprocess.Popen([named, "-g", "-n", "1", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(address, port):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (directory / "named.log").read_text()[-2000:]
                pytest.fail(f"named did not start answering on {address}:{port}:\n{tail}", pytrace=False)
            time.sleep(0.1)
        yield Named(address, port, directory)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        log.close()
