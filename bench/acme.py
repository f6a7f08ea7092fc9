"""ACME order throughput on loopback: Candor against Pebble, same client, same machine, same run (issue 4).

N concurrent asyncio clients each register an account, then loop over full http-01 orders for one unique
name (a registered domain of its own, under the reserved TLD ``example``): newOrder, fetch the authorization,
POST the http-01 challenge, poll the authorization, finalize with a fresh P-256 CSR, poll the order, download
the certificate. Polling never sleeps a fixed second: it waits
5, 10, then 20 ms between polls unless the server sends Retry-After. Only the directory URL, the trust anchor
and who answers the challenges differ between the two servers:

* Candor: ``candor init`` into a temporary directory, one worker per core, each bound to its core as on a host of
  its own (``[server] cpu_affinity = "auto"``; ``--cpu-affinity none`` leaves them to the kernel), loopback
  validation allowed, rate limits raised far
  above the bench volume, every bench name mapped (``acme.validation.hosts``) to a random 127/8 address where
  this process answers http-01 on port 80 (the validator only uses port 80, so this needs root or
  CAP_NET_BIND_SERVICE). Real validation, pkilint on the precertificate and the BR 4.3.1.2 correspondence
  check of the final certificate (``--lint-final``: pkilint on the final certificate too), and CT as the
  embedded default runs it: two SCTs per certificate from its own two logs (each verified before it is
  embedded), the final certificate queued for both and submitted in the background (``--no-ct``: without the
  logs; ``--workers N``: every worker serves them).
* Pebble (Debian ``pebble``): PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0, real validation against
  ``pebble-challtestsrv``, which resolves every name to 127.0.0.1 and serves the tokens this process adds
  through its management API.

Both servers are started, their clients registered and warmed up, and then measured in alternated slices of
load, A B B A A B B A (``--slices``, 4 per server by default): this machine's speed has moved by up to half within
minutes, and when one server was measured after the other the ratio moved with it (0.41-0.66 for the same code in
the ninth session). Each slice starts on fresh connections and ends when the server's CPU has gone quiet; that wait
counts in the slice's time, so that the work a server leaves for later is its own and not the other's. A server
idle while the other is measured is left running; the summary says how much CPU it used meanwhile (Candor's
periodic work: its OCSP pre-signer, CRL publisher and audit sequencer).

The last line printed is one JSON object: orders_per_s (Candor), pebble_orders_per_s, ratio_to_pebble,
Candor's p50/p99 order latency, each server's and the client's CPU per order and the server's context switches
per order, and what was measured. The summary also splits the server's CPU by kind of thread (main threads, which
are the serving processes' event loops; other threads; lint helpers), from /proc. The figure that held up here
when the machine's speed moved between runs is the server's CPU per order against the client's, which does the
same work for either server.

``--phases N``: where Candor's CPU goes, by request. One client makes N orders in sequence and the server's CPU
(every process of ``candor serve``, from /proc) is read around each request; the JSON line adds
phases_ms_per_order. Profilers misled here (docs/performance.md, sixth session); this does not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
POLL_WAITS = (0.005, 0.010, 0.020)  # then 0.020 for ever: the cap, unless Retry-After says otherwise
MAX_RETRY_AFTER = 10.0
# A request unanswered this long gives its order up (counted as a timeout, reported). Pebble has been seen to
# leave a newOrder unanswered for over a minute under this load, which ended the whole run.
CLIENT_TIMEOUT = 60.0
# Times a Pebble slice is measured at most, while it has requests that timed out (seen in one of six runs here:
# every client waited a minute on Pebble at once). Candor's slices are never repeated: its stalls stay in its figure.
PEBBLE_ATTEMPTS = 3
# Slices of load per server (--slices), alternated between the servers A B B A A B B A: this machine's speed has
# moved by up to half within minutes (docs/performance.md, ninth and tenth sessions), so one server measured
# after the other compared two machines, and the ratio moved with the drift (0.41-0.66 for the same code).
SLICES = 4
# After a slice, the time until the server's CPU goes quiet (under a tenth of a core over SETTLE_WINDOW s) counts
# in its slice, at most SETTLE_LIMIT s: the work its slice left for later is its own, not the other server's.
SETTLE_WINDOW = 0.1
SETTLE_LIMIT = 5.0
# Every name is a registered domain of its own under RFC 6761's reserved "example" TLD, as in a CA's real traffic
# (many subscribers' domains). Until 2026-11-27 every name was under bench.example.com: one registered domain with
# thousands of certificates a minute, whose certificates-per-registered-domain count (it stops at the limit, here
# raised to 10^8 so that the bench is not refused) read every certificate the run had issued, inside newOrder's
# write transaction: a cost that grew with the run's length, which the default limit (50 a week) caps at 50 rows.
NAME_SUFFIX = "example"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- the client ---------------------------------------------------------------------------------------------
class AcmeError(Exception):
    pass


Answer = Callable[[str, str, str], Awaitable[None]]  # (name, token, key authorization)


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    polls: int = 0
    bad_nonces: int = 0
    timeouts: int = 0  # orders given up after a request had no answer for the client's timeout
    # --phases: the server's CPU seconds spent during each kind of request, and how many there were
    phase_cpu: dict[str, float] = field(default_factory=dict)
    phase_requests: dict[str, int] = field(default_factory=dict)
    server_cpu: Callable[[], float] | None = None  # set to meter each request (one client at a time only)


class AcmeClient:
    """A minimal RFC 8555 client: ES256 account key, one connection, the nonce from the last response."""

    def __init__(self, http: httpx.AsyncClient, directory_url: str, stats: Stats) -> None:
        self.http, self.directory_url, self.stats = http, directory_url, stats
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.jwk = {
            "crv": "P-256",
            "kty": "EC",
            "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big")),
        }
        thumb = json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()
        self.thumbprint = b64(hashlib.sha256(thumb).digest())
        self.kid: str | None = None
        self.nonce: str | None = None
        self.directory: dict[str, Any] = {}

    async def start(self) -> None:
        self.directory = (await self.http.get(self.directory_url)).raise_for_status().json()
        reply = await self.post(self.directory["newAccount"], {"termsOfServiceAgreed": True}, use_jwk=True)
        self.kid = reply.headers["Location"]

    async def _fresh_nonce(self) -> str:
        reply = await self.http.head(self.directory["newNonce"])
        return reply.headers["Replay-Nonce"]

    def _jws(self, url: str, payload: dict[str, Any] | None, nonce: str, *, use_jwk: bool) -> bytes:
        header: dict[str, Any] = {"alg": "ES256", "nonce": nonce, "url": url}
        if use_jwk:
            header["jwk"] = self.jwk
        else:
            header["kid"] = self.kid
        protected = b64(json.dumps(header).encode())
        body = "" if payload is None else b64(json.dumps(payload).encode())
        der = self.key.sign(f"{protected}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return json.dumps({"protected": protected, "payload": body, "signature": signature}).encode()

    async def post(self, url: str, payload: dict[str, Any] | None, *, use_jwk: bool = False) -> httpx.Response:
        for _attempt in range(5):
            nonce = self.nonce or await self._fresh_nonce()
            self.nonce = None
            meter = self.stats.server_cpu
            before = meter() if meter is not None else 0.0
            reply = await self.http.post(
                url,
                content=self._jws(url, payload, nonce, use_jwk=use_jwk),
                headers={"Content-Type": "application/jose+json"},
            )
            if meter is not None:
                phase = _phase(url)
                self.stats.phase_cpu[phase] = self.stats.phase_cpu.get(phase, 0.0) + meter() - before
                self.stats.phase_requests[phase] = self.stats.phase_requests.get(phase, 0) + 1
            self.stats.requests += 1
            self.nonce = reply.headers.get("Replay-Nonce")
            if reply.status_code < 400:
                return reply
            problem = reply.json() if reply.headers.get("content-type", "").startswith("application/") else {}
            if problem.get("type") == "urn:ietf:params:acme:error:badNonce":
                self.stats.bad_nonces += 1
                continue
            raise AcmeError(f"{url}: HTTP {reply.status_code} {problem or reply.text[:200]}")
        raise AcmeError(f"{url}: five bad nonces in a row")

    async def poll(self, url: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        for attempt in range(2000):
            reply = await self.post(url, None)
            body: dict[str, Any] = reply.json()
            if done(body):
                return body
            if body.get("status") == "invalid":
                raise AcmeError(f"{url} became invalid: {body.get('error') or body}")
            self.stats.polls += 1
            await asyncio.sleep(_wait(reply, attempt))
        raise AcmeError(f"{url}: still {body.get('status')} after 2000 polls")

    async def order(self, name: str, answer: Answer) -> bytes:
        reply = await self.post(self.directory["newOrder"], {"identifiers": [{"type": "dns", "value": name}]})
        order_url, order = reply.headers["Location"], reply.json()
        for authz_url in order["authorizations"]:
            authz = (await self.post(authz_url, None)).json()
            if authz["status"] == "valid":
                continue
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            await answer(name, challenge["token"], f"{challenge['token']}.{self.thumbprint}")
            await self.post(challenge["url"], {})
            await self.poll(authz_url, lambda body: body["status"] not in ("pending", "processing"))
            # an authorization that ended invalid raised in poll(); "valid" is the only way on
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        reply = await self.post(order["finalize"], {"csr": b64(csr.public_bytes(serialization.Encoding.DER))})
        order = reply.json()
        if order["status"] != "valid":
            order = await self.poll(order_url, lambda body: body["status"] == "valid")
        certificate = (await self.post(order["certificate"], None)).content
        if b"BEGIN CERTIFICATE" not in certificate:
            raise AcmeError(f"{order['certificate']}: no PEM certificate")
        return certificate


def _phase(url: str) -> str:
    """The kind of an ACME request, from Candor's URL layout (--phases measures Candor only)."""
    path = url.split("/acme/", 1)[-1]
    kind = path.split("/", 1)[0]
    if path.endswith("/finalize"):
        return "finalize"
    if kind == "authz":
        return "authorization (POST-as-GET)"
    if kind == "chall":
        return "challenge"
    if kind == "order":
        return "order (POST-as-GET)"
    if kind == "cert":
        return "certificate download"
    return {"new-order": "newOrder", "new-account": "newAccount"}.get(kind, kind)


def _wait(reply: httpx.Response, attempt: int) -> float:
    retry_after = reply.headers.get("Retry-After", "")
    if retry_after.isdigit():
        return min(float(retry_after), MAX_RETRY_AFTER)
    return POLL_WAITS[min(attempt, len(POLL_WAITS) - 1)]


@dataclass
class Result:
    """What a server did while measured: the sum of its slices."""

    orders: int = 0
    seconds: float = 0.0
    stats: Stats = field(default_factory=Stats)
    server_cpu: float = 0.0  # CPU seconds the server process(es) used while measured (Linux /proc), 0 if unknown
    client_cpu: float = 0.0
    # the server's CPU seconds by kind of thread, and its threads' context switches, while measured (Linux /proc)
    cpu_by_role: dict[str, float] = field(default_factory=dict)
    switches: int = 0
    timeouts: int = 0  # in the slices kept
    settle_seconds: float = 0.0  # of .seconds: waiting for the server's own work to end after each slice
    idle_cpu: float = 0.0  # CPU seconds the server used while the other server was measured
    slices: int = 0

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.stats.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    def add(self, part: Result) -> None:
        self.orders += part.orders
        self.seconds += part.seconds
        self.server_cpu += part.server_cpu
        self.client_cpu += part.client_cpu
        for role, cpu in part.cpu_by_role.items():
            self.cpu_by_role[role] = self.cpu_by_role.get(role, 0.0) + cpu
        self.switches += part.switches
        self.timeouts += part.timeouts
        self.settle_seconds += part.settle_seconds
        self.slices += 1


@dataclass
class Target:
    """A server ready to be measured: where its directory is, whom to trust for its TLS, who answers its http-01
    challenges, the names to order and its processes (for their CPU)."""

    label: str
    directory_url: str
    trust: ssl.SSLContext
    answer: Answer
    names: Iterator[str]
    server_pids: Callable[[], list[int]]


@dataclass
class Fleet:
    """A target's clients, each with its account, and everything measured of the target so far."""

    target: Target
    clients: list[AcmeClient]
    result: Result


def _http(trust: ssl.SSLContext) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    return httpx.AsyncClient(verify=trust, timeout=CLIENT_TIMEOUT, limits=limits)


async def start_fleet(target: Target, *, clients: int, warmup: int, result: Result | None = None) -> Fleet:
    """*clients* clients, each registered and through *warmup* orders; with *result*, a fleet that goes on adding
    to what an earlier one measured (a stalled Pebble replaced)."""
    result = result if result is not None else Result()
    stats = result.stats
    kept = len(stats.latencies)
    acme = [AcmeClient(_http(target.trust), target.directory_url, stats) for _ in range(clients)]
    await asyncio.gather(*(client.start() for client in acme))

    async def warm(client: AcmeClient) -> None:
        try:
            await client.order(next(target.names), target.answer)
        except httpx.TimeoutException:  # a stall in the warm-up (not measured): the client goes on
            stats.timeouts += 1

    await asyncio.gather(*(warm(client) for client in acme for _ in range(warmup)))
    del stats.latencies[kept:]  # the warm-up's
    return Fleet(target, acme, result)


async def close_fleet(fleet: Fleet) -> None:
    for client in fleet.clients:
        await client.http.aclose()


async def measure(fleet: Fleet, *, duration: float, orders: int | None, phases: bool = False) -> Result:
    """One slice of load: every client loops over orders for *duration* s (or until *orders* are done); then,
    until the server's CPU goes quiet, the work it left for later (counted in the slice's time and CPU). Each slice
    starts on fresh connections and nonces, so that what the other server's slices did meanwhile (or the server's
    keep-alive timeout) changes nothing. With *phases* (one client), the server's CPU is read around each
    request."""
    target, stats = fleet.target, fleet.result.stats
    for client in fleet.clients:
        await client.http.aclose()
        client.http, client.nonce = _http(target.trust), None
    if phases:
        pids = target.server_pids()
        stats.server_cpu = lambda: sum(_cpu_by_pid(pids).values())
    timeouts_before = stats.timeouts
    cpu_before, client_before = _cpu_by_pid(target.server_pids()), time.process_time()
    threads_before = _threads(target.server_pids())
    started = time.perf_counter()
    deadline = started + duration
    budget = [orders if orders is not None else 1 << 62]
    done = [0]

    async def worker(client: AcmeClient) -> None:
        while budget[0] > 0 and (orders is not None or time.perf_counter() < deadline):
            budget[0] -= 1
            begun = time.perf_counter()
            try:
                await client.order(next(target.names), target.answer)
            except httpx.TimeoutException:  # counted and reported; the client goes on with a new order
                stats.timeouts += 1
                continue
            stats.latencies.append(time.perf_counter() - begun)
            done[0] += 1

    await asyncio.gather(*(worker(client) for client in fleet.clients))
    loaded = time.perf_counter()
    await _settle(target.server_pids)
    elapsed = time.perf_counter() - started
    cpu_after = _cpu_by_pid(target.server_pids())
    server_cpu = sum(cpu - cpu_before.get(pid, 0.0) for pid, cpu in cpu_after.items())
    client_cpu = time.process_time() - client_before
    by_role: dict[str, float] = {}
    switches = 0
    for key, (cpu, switched) in _threads(target.server_pids()).items():
        cpu_then, switched_then = threads_before.get(key, (0.0, 0))
        by_role[key[2]] = by_role.get(key[2], 0.0) + cpu - cpu_then
        switches += switched - switched_then
    stats.server_cpu = None
    return Result(
        done[0], elapsed, stats, server_cpu, client_cpu, by_role, switches,
        timeouts=stats.timeouts - timeouts_before, settle_seconds=elapsed - (loaded - started),
    )  # fmt: skip


async def _settle(server_pids: Callable[[], list[int]]) -> None:
    """Wait (at most SETTLE_LIMIT s) until the server uses less than a tenth of a core over a tenth of a second:
    the background work the slice left (Candor: the final certificates' CT submissions, the audit chain, OCSP
    pre-signing) is then done, and does not run in the other server's slice."""
    give_up = time.perf_counter() + SETTLE_LIMIT
    before = sum(_cpu_by_pid(server_pids()).values())
    while time.perf_counter() < give_up:
        await asyncio.sleep(SETTLE_WINDOW)
        now = sum(_cpu_by_pid(server_pids()).values())
        if now - before < SETTLE_WINDOW / 10:
            return
        before = now


def schedule(labels: list[str], slices: int) -> list[str]:
    """The order of the slices: with two servers A and B, ABBA repeated (A B B A A B B A ...), so that a machine
    whose speed drifts during the run gives both the same share of its fast and slow minutes."""
    if len(labels) == 1:
        return labels * slices
    first, second = labels
    return [label for i in range(slices) for label in ((first, second) if i % 2 == 0 else (second, first))]


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each of *pids* and its waited-for children, from /proc. A process that
    ends during the measure (a PostgreSQL backend beyond the pool) loses what it used meanwhile."""
    found = {}
    for pid in set(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return found


def _threads(pids: list[int]) -> dict[tuple[int, int, str], tuple[float, int]]:
    """Each thread of *pids*: (pid, tid, role) -> (user + system CPU seconds, context switches), from /proc. The
    role: "lint helpers" (every thread of a lint helper process), "main threads" (the event loop of a serving
    process; in Go, the runtime's first thread), or "other threads" (request threads, background work).
    Context switches are the voluntary ones (a wait: the GIL, a lock, I/O) and the involuntary (preempted)."""
    found: dict[tuple[int, int, str], tuple[float, int]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in set(pids):
        with contextlib.suppress(OSError):
            helper = b"lint_process" in Path(f"/proc/{pid}/cmdline").read_bytes()
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    status = (task / "status").read_text()
                    counts = dict(line.split(":", 1) for line in status.splitlines() if "ctxt_switches" in line)
                    switched = sum(int(value) for value in counts.values())
                    tid = int(task.name)
                    role = "lint helpers" if helper else "main threads" if tid == pid else "other threads"
                    found[(pid, tid, role)] = ((int(fields[11]) + int(fields[12])) / tick, switched)
    return found


def _descendants(root: int) -> list[int]:
    """*root* and every process below it. ``/proc/PID/task/TID/children`` lists the children each thread started,
    so every thread's list is read: a lint helper started from a request thread is not the main thread's child
    (until 2026-11-27 this read the main thread's only, and left the lint helpers out of the server's CPU)."""
    found, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    for child in (task / "children").read_text().split():
                        if int(child) not in found:
                            found.append(int(child))
                            frontier.append(int(child))
    return found


# -- http-01 answering ----------------------------------------------------------------------------------------
class Responder:
    """A bare HTTP/1.1 server answering /.well-known/acme-challenge/<token> for Candor's validator."""

    def __init__(self) -> None:
        self.tokens: dict[str, bytes] = {}
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, host, port, reuse_address=True)

    async def answer(self, name: str, token: str, key_authorization: str) -> None:
        self.tokens[token] = key_authorization.encode("ascii")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            path = head.split(b" ", 2)[1].decode("ascii", "replace")
            token = path.rsplit("/", 1)[-1] if path.startswith("/.well-known/acme-challenge/") else ""
            body = self.tokens.pop(token, None)
            status = b"200 OK" if body is not None else b"404 Not Found"
            body = body or b"not found"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )  # fmt: skip
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, IndexError):
            pass
        finally:
            writer.close()


class ChallTestSrv:
    def __init__(self, http: httpx.AsyncClient, management: str) -> None:
        self.http, self.management = http, management

    async def answer(self, name: str, token: str, key_authorization: str) -> None:
        reply = await self.http.post(
            f"{self.management}/add-http01", json={"token": token, "content": key_authorization}
        )
        reply.raise_for_status()


# -- the servers --------------------------------------------------------------------------------------------
def _wait_for_line(process: subprocess.Popen[str], pattern: str, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line.rstrip())
        match = re.search(pattern, line)
        if match:
            return match.group(1) if match.groups() else line
    raise SystemExit(f"{what} did not start:\n" + "\n".join(seen[-30:]))


@contextlib.contextmanager
def _process(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd, start_new_session=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _drain(process: subprocess.Popen[str]) -> None:
    """Keep reading a child's output in the background so it never blocks on a full pipe."""
    import threading

    def run() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if os.environ.get("BENCH_VERBOSE"):
                print("  |", line.rstrip(), file=sys.stderr)

    threading.Thread(target=run, daemon=True).start()


def _without_ct(config: str) -> str:
    """candor.toml without its [[ct.logs]] and [ct.submit] tables: no CT logs served, no SCTs obtained (a data
    directory serving CT logs is refused with several workers)."""
    kept, skipping = [], False
    for line in config.splitlines(keepends=True):
        header = line.strip()
        if header.startswith("["):
            skipping = header in ("[[ct.logs]]", "[ct.submit]")
        if not skipping:
            kept.append(line)
    return "".join(kept)


def _toml_string(value: str) -> str:
    return json.dumps(value)


def prepare_candor(
    home: Path,
    names: list[str],
    address: str,
    *,
    workers: int,
    database_url: str | None,
    ct: bool = True,
    cpu_affinity: str = "auto",
    lint_final: bool = False,
) -> tuple[int, int]:
    port, acme_port = free_port(), free_port()
    candor = str(ROOT / ".venv" / "bin" / "candor")
    subprocess.run(
        [candor, "--data-dir", str(home), "init", "--port", str(port), "--acme-port", str(acme_port)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    config = (home / "candor.toml").read_text()
    config = config.replace("allow_loopback = false", "allow_loopback = true")
    config, replaced = re.subn(r"(?m)^workers = \d+$", f"workers = {workers}", config)
    if replaced != 1:
        raise SystemExit("candor.toml has no [server] workers; the bench needs updating")
    config, replaced = re.subn(r'(?m)^cpu_affinity = "none"$', f"cpu_affinity = {_toml_string(cpu_affinity)}", config)
    if replaced != 1:
        raise SystemExit("candor.toml has no [server] cpu_affinity; the bench needs updating")
    if database_url is not None:  # the same ceremony again, into the fresh PostgreSQL database
        config, replaced = re.subn(r'(?m)^url = "sqlite:///candor.db"$', f"url = {_toml_string(database_url)}", config)
        if replaced != 1:
            raise SystemExit("candor.toml has no [database] url; the bench needs updating")
        (home / "candor.toml").write_text(config)
        shutil.rmtree(home / "keys")  # new keys under the same labels
        subprocess.run(
            [candor, "--data-dir", str(home), "ceremony", "--config", str(home / "ceremony.toml")],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    for key in (
        "orders_per_account_per_3h", "pending_authorizations_per_account",
        "certificates_per_registered_domain_per_week", "failed_validations_per_name_per_hour",
        "accounts_per_address_per_3h",
    ):  # fmt: skip
        config, replaced = re.subn(rf"(?m)^{key} = \d+$", f"{key} = 100000000", config)
        if replaced != 1:
            raise SystemExit(f"candor.toml has no [acme.limits] {key}; the bench needs updating")
    hosts = "\n".join(f"{_toml_string(name)} = [{_toml_string(address)}]" for name in names)
    config += f"\n[acme.validation.hosts]\n{hosts}\n"
    if not ct:
        config = _without_ct(config)
    if lint_final:
        config, replaced = re.subn(r"(?m)^lint_final_certificate = false$", "lint_final_certificate = true", config)
        if replaced != 1:
            raise SystemExit("candor.toml has no [issuance] lint_final_certificate; the bench needs updating")
    (home / "candor.toml").write_text(config)
    return port, acme_port


def pebble_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble bench")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@contextlib.contextmanager
def _postgres_database(args: argparse.Namespace) -> Iterator[tuple[str | None, Callable[[], list[int]]]]:
    """A fresh PostgreSQL database for one run (dropped afterwards) and a function listing its backends' pids
    (their CPU is Candor's too); nothing for SQLite."""
    if args.database != "postgres":
        yield None, list
        return
    name = f"candor_bench_{random.getrandbits(32):08x}"
    server = ["-h", args.pg_host, "-p", str(args.pg_port), "-U", args.pg_user]
    subprocess.run(["createdb", *server, name], check=True)

    def backends() -> list[int]:
        query = f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}'"  # noqa: S608 (our own name)
        out = subprocess.run(["psql", *server, "-d", name, "-Atc", query], capture_output=True, text=True).stdout
        return [int(line) for line in out.split() if line.isdigit()]

    try:
        yield f"postgresql+psycopg://{args.pg_user}@{args.pg_host}:{args.pg_port}/{name}", backends
    finally:
        subprocess.run(["dropdb", *server, "--force", name], check=False)


@contextlib.contextmanager
def _profiler(args: argparse.Namespace, pid: int) -> Iterator[None]:
    """With ``--profile``: py-spy attached to ``candor serve`` (and its workers) for the duration of the block,
    raw folded stacks written when it is stopped."""
    if not args.profile:
        yield
        return
    # --nonblocking: with py-spy pausing the threads of two workers to sample them, runs ended on a dropped
    # keep-alive connection (cause not found); sampling without pausing does not disturb them
    spy = [str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--rate", "250", "-f", "raw", "-o", args.profile]
    spy += ["--nonblocking", "--pid", str(pid), *(["--subprocesses"] if args.workers > 1 else [])]
    spy += ["--gil"] if args.gil else ["--idle"]
    recorder = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its profile and exits
        try:
            recorder.wait(60)
        except subprocess.TimeoutExpired:
            recorder.kill()


def _wait_for_first_crls(database_url: str, timeout: float = 180.0) -> None:
    """Wait until a fresh ``candor serve`` has published every CRL shard once (BR 4.9.7: at once for a shard never
    published; the 16 shards of each TLS issuer and the TSA CA's one, each linted). That is start-up work a CA does
    once in its life, not per order: measured inside the window it cost a tenth of the server's CPU there."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                wanted = connection.execute(
                    text(
                        "SELECT coalesce(sum(CASE WHEN kind = 'tsa' THEN 1 ELSE crl_shards END), 0) FROM issuers "
                        "WHERE kind IN ('tls', 'tsa')"
                    )
                ).scalar_one()
                published = connection.execute(
                    text("SELECT count(*) FROM crl_shards WHERE published_at IS NOT NULL")
                ).scalar_one()
            if wanted and published >= wanted:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"candor serve published {published} of {wanted} CRL shards in {timeout:.0f} s")
            time.sleep(0.2)
    finally:
        engine.dispose()


@contextlib.asynccontextmanager
async def candor_target(args: argparse.Namespace) -> AsyncIterator[Target]:
    names = _names("c", args)
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    with (
        tempfile.TemporaryDirectory(prefix="candor-bench-") as scratch,
        _postgres_database(args) as (database_url, backends),
    ):
        home = Path(scratch) / "home"
        _port, _acme_port = prepare_candor(
            home,
            names,
            address,
            workers=args.workers,
            database_url=database_url,
            ct=not args.no_ct,
            cpu_affinity=args.cpu_affinity,
            lint_final=args.lint_final,
        )
        responder = Responder()
        await responder.start(address, 80)
        try:
            command = [str(PYTHON), "-m", "candor", "--data-dir", str(home), "serve"]
            with _process(command) as server:
                directory_url = _wait_for_line(server, r"ACME directory: (\S+)", 120, "candor serve")
                _drain(server)
                _wait_for_first_crls(database_url or f"sqlite:///{home / 'candor.db'}")
                trust = ssl.create_default_context(cafile=str(home / "public" / "issuers" / "root-x1.pem"))
                yield Target(
                    "candor", directory_url, trust, responder.answer, iter(names),
                    server_pids=lambda: _descendants(server.pid) + backends(),
                )  # fmt: skip
        finally:
            assert responder.server is not None
            responder.server.close()


@contextlib.asynccontextmanager
async def pebble_target(args: argparse.Namespace) -> AsyncIterator[Target]:
    for tool in ("pebble", "pebble-challtestsrv"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (Debian package pebble)")
    with tempfile.TemporaryDirectory(prefix="pebble-bench-") as scratch:
        directory = Path(scratch)
        cert, key = pebble_certificate(directory)
        listen, management, http01, dns = free_port(), free_port(), free_port(), free_port()
        challtest_management = free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{listen}",
                "managementListenAddress": f"127.0.0.1:{management}",
                "certificate": str(cert),
                "privateKey": str(key),
                "httpPort": http01,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (directory / "pebble.json").write_text(json.dumps(config))
        challtest = [
            "pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-http01", f"127.0.0.1:{http01}",
            "-https01", "", "-tlsalpn01", "", "-dns01", f"127.0.0.1:{dns}",
            "-management", f"127.0.0.1:{challtest_management}",
        ]  # fmt: skip
        env = {
            **os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_VA_ALWAYS_VALID": "0",
        }  # fmt: skip
        with _process(challtest) as challtestsrv:
            _wait_for_line(challtestsrv, r"(Starting management server)", 30, "pebble-challtestsrv")
            _drain(challtestsrv)
            pebble_command = ["pebble", "-config", str(directory / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns}"]
            with _process(pebble_command, env=env) as pebble:
                _wait_for_line(pebble, r"(Listening on)", 30, "pebble")
                _drain(pebble)
                trust = ssl.create_default_context(cafile=str(cert))
                async with httpx.AsyncClient(timeout=30.0) as manager:
                    answerer = ChallTestSrv(manager, f"http://127.0.0.1:{challtest_management}")
                    yield Target(
                        "pebble", f"https://127.0.0.1:{listen}/dir", trust, answerer.answer, iter(_names("p", args)),
                        server_pids=lambda: [pebble.pid, challtestsrv.pid],
                    )  # fmt: skip


async def run_bench(args: argparse.Namespace) -> tuple[Result | None, Result | None, int]:
    """Start the servers asked for, then measure them in alternated slices (:func:`schedule`); (Candor's result,
    Pebble's, how many Pebble slices were measured again because Pebble stalled)."""
    labels = [label for label in ("candor", "pebble") if args.only in (None, label)]
    starts = {"candor": candor_target, "pebble": pebble_target}
    servers: dict[str, contextlib.AsyncExitStack] = {}  # each server's processes and its fleet's connections
    fleets: dict[str, Fleet] = {}

    async def start(label: str, result: Result | None = None) -> Fleet:
        server = contextlib.AsyncExitStack()
        try:
            target = await server.enter_async_context(starts[label](args))
            fleet = await start_fleet(target, clients=args.clients, warmup=args.warmup, result=result)
            server.push_async_callback(close_fleet, fleet)
        except BaseException:
            await server.aclose()
            raise
        servers[label] = server
        return fleet

    stalls = 0
    try:
        for label in labels:
            fleets[label] = await start(label)
        with contextlib.ExitStack() as profiling:
            if "candor" in fleets:
                profiling.enter_context(_profiler(args, fleets["candor"].target.server_pids()[0]))
            slices = 1 if args.orders is not None else args.slices
            for label in schedule(labels, slices):
                others = [other for name, other in fleets.items() if name != label]
                idle_before = [sum(_cpu_by_pid(other.target.server_pids()).values()) for other in others]
                for attempt in range(PEBBLE_ATTEMPTS if label == "pebble" else 1):
                    fleet = fleets[label]
                    kept = len(fleet.result.stats.latencies)
                    part = await measure(
                        fleet, duration=args.duration / slices, orders=args.orders, phases=args.phases is not None
                    )
                    if not (label == "pebble" and part.timeouts and attempt + 1 < PEBBLE_ATTEMPTS):
                        break
                    # Pebble stopped answering for the client's timeout: that slice measured the stall, not Pebble.
                    # A stalled Pebble has stayed stalled here, so the slice is measured again on a fresh one.
                    stalls += 1
                    del fleet.result.stats.latencies[kept:]
                    print("pebble: requests went unanswered for the client's timeout; that slice again, fresh Pebble")
                    await servers.pop(label).aclose()
                    fleets[label] = await start(label, result=fleet.result)
                fleet.result.add(part)
                for other, before in zip(others, idle_before, strict=True):
                    other.result.idle_cpu += sum(_cpu_by_pid(other.target.server_pids()).values()) - before
    finally:
        for server in reversed(list(servers.values())):
            await server.aclose()
    return (
        fleets["candor"].result if "candor" in fleets else None,
        fleets["pebble"].result if "pebble" in fleets else None,
        stalls,
    )


def _names(prefix: str, args: argparse.Namespace) -> list[str]:
    """Every name the run may use, unique per order (so no authorization is ever reused), each its own registered
    domain."""
    cap = args.orders if args.orders is not None else int(args.duration * args.max_rate)
    run = f"{random.getrandbits(32):08x}"
    return [f"{prefix}{i}-{run}.{NAME_SUFFIX}" for i in range(cap + args.clients * (args.warmup + 1))]


def _summary(label: str, result: Result) -> None:
    print(
        f"{label}: {result.orders} orders in {result.seconds:.1f} s = {result.rate:.1f} orders/s; latency p50 "
        f"{result.percentile(0.5) * 1000:.0f} ms, p99 {result.percentile(0.99) * 1000:.0f} ms; "
        f"{result.stats.requests} JWS POSTs, {result.stats.polls} poll waits, {result.stats.bad_nonces} badNonce, "
        f"{result.timeouts} orders given up on a {CLIENT_TIMEOUT:g} s timeout"
    )
    print(
        f"  {result.slices} slice{'s' if result.slices != 1 else ''}; of the {result.seconds:.1f} s, "
        f"{result.settle_seconds:.1f} s waiting for its CPU to go quiet after its slices; "
        f"{result.idle_cpu:.2f} s of CPU while the other server was measured"
    )
    if result.orders:
        server = ""
        if result.server_cpu:
            roles = ", ".join(
                f"{role} {cpu / result.orders * 1000:.1f}" for role, cpu in sorted(result.cpu_by_role.items())
            )
            server = f"server {result.server_cpu / result.orders * 1000:.1f} ms ({roles}), "
        print(f"  CPU per order: {server}client {result.client_cpu / result.orders * 1000:.1f} ms")
        if result.switches:
            print(f"  server context switches per order: {result.switches / result.orders:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent ACME clients (default 8)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of measured load per server")
    parser.add_argument("--orders", type=int, default=None, help="a fixed number of orders instead of --duration")
    parser.add_argument(
        "--slices",
        type=int,
        default=SLICES,
        help=f"slices of load per server, alternated A B B A A B B A between the two (default {SLICES}; with "
        "--orders or --phases one)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="orders per client before measuring (default 1)")
    parser.add_argument("--only", choices=("candor", "pebble"), default=None)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="candor serve's [server] workers (default: one per core, as Pebble's Go runtime uses every core; "
        "one Python worker is bound to one core by its interpreter lock)",
    )
    parser.add_argument(
        "--cpu-affinity",
        choices=("auto", "none"),
        default="auto",
        help='candor serve\'s [server] cpu_affinity (default "auto": as configured for a host of its own, each worker '
        "and its lint helper bound to a core)",
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite", help="Candor's database")
    parser.add_argument("--pg-host", default="127.0.0.1", help="PostgreSQL for --database postgres (trust auth)")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--max-rate", type=float, default=400.0, help=argparse.SUPPRESS)  # sizes the hosts table
    parser.add_argument("--no-ct", action="store_true", help="Candor without its CT logs and SCTs")
    parser.add_argument(
        "--lint-final",
        action="store_true",
        help="[issuance] lint_final_certificate = true: pkilint on the final certificate too (by default it is "
        "admitted by its BR 4.3.1.2 correspondence to the linted precertificate)",
    )
    parser.add_argument("--profile", default=None, help="py-spy raw profile of candor serve to this path")
    parser.add_argument("--gil", action="store_true", help="with --profile: sample only the thread holding the GIL")
    parser.add_argument(
        "--phases",
        type=int,
        default=None,
        metavar="ORDERS",
        help="Candor only: ORDERS orders in sequence by one client, with the server's CPU (all its processes, from "
        "/proc) read around each request, printed per kind of request; background work lands in the request it "
        "overlaps, and /proc counts in 10 ms ticks, so use a few hundred orders",
    )
    args = parser.parse_args()
    if args.phases is not None:  # one client, orders in sequence, Candor only: each request's server CPU apart
        args.only, args.clients, args.orders = "candor", 1, args.phases
    report: dict[str, Any] = {}
    candor, pebble, pebble_stalls = asyncio.run(run_bench(args))
    for label, result in (("candor", candor), ("pebble", pebble)):
        if result is not None:
            _summary(label, result)
    if candor is not None and args.phases is not None:
        stats = candor.stats
        print("server CPU per order, by request (one client, orders in sequence):")
        for phase, seconds in sorted(stats.phase_cpu.items(), key=lambda item: -item[1]):
            per_order, requests = seconds / max(candor.orders, 1) * 1000, stats.phase_requests[phase]
            print(f"  {phase}: {per_order:.2f} ms over {requests / max(candor.orders, 1):.2f} requests")
        metered = sum(stats.phase_cpu.values())
        print(f"  between requests: {(candor.server_cpu - metered) / max(candor.orders, 1) * 1000:.2f} ms")
        report["phases_ms_per_order"] = {
            phase: round(seconds / max(candor.orders, 1) * 1000, 2) for phase, seconds in stats.phase_cpu.items()
        }
    if candor is not None:
        report.update(
            orders_per_s=round(candor.rate, 1),
            candor_p50_ms=round(candor.percentile(0.5) * 1000, 1),
            candor_p99_ms=round(candor.percentile(0.99) * 1000, 1),
            candor_cpu_ms_per_order=round(candor.server_cpu / max(candor.orders, 1) * 1000, 1),
            candor_client_cpu_ms_per_order=round(candor.client_cpu / max(candor.orders, 1) * 1000, 1),
            candor_switches_per_order=round(candor.switches / max(candor.orders, 1)),
            candor_timeouts=candor.timeouts,
        )
    if pebble is not None:
        report.update(
            pebble_orders_per_s=round(pebble.rate, 1),
            pebble_p50_ms=round(pebble.percentile(0.5) * 1000, 1),
            pebble_cpu_ms_per_order=round(pebble.server_cpu / max(pebble.orders, 1) * 1000, 1),
            pebble_client_cpu_ms_per_order=round(pebble.client_cpu / max(pebble.orders, 1) * 1000, 1),
            pebble_switches_per_order=round(pebble.switches / max(pebble.orders, 1)),
            pebble_timeouts=pebble.timeouts,
            pebble_stalled_runs=pebble_stalls,
        )
    if candor is not None and pebble is not None:
        ratio = candor.rate / pebble.rate if pebble.rate else 0.0
        report["ratio_to_pebble"] = round(ratio, 2)
        print(f"ratio Candor / Pebble: {ratio:.2f}")
    ct = "two SCTs from its own two CT logs and the final certificate sent to both" if not args.no_ct else "no CT"
    final = "pkilint on it too" if args.lint_final else "no second pkilint run"
    print(
        "note: Candor's figure includes real http-01 validation, pkilint on the precertificate, the BR 4.3.1.2 "
        f"correspondence check of the final certificate ({final}), and {ct}"
    )
    report.update(
        clients=args.clients,
        workers=args.workers,
        cpu_affinity=args.cpu_affinity,
        database=args.database,
        cores=os.cpu_count(),
        measure=f"{args.orders} orders" if args.orders is not None else f"{args.duration:g} s",
        slices_per_server=1 if args.orders is not None else args.slices,
        candor_ct=not args.no_ct,
        candor_lint_final=args.lint_final,
        validation="http-01, real",
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
