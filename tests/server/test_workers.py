"""``[server] workers``: `candor serve` forks workers that all serve the same ports, replaces one that dies,
stops them all on SIGTERM, and gives up when workers die at start-up again and again."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from candor.server import workers
from support import cli_issue, run_cli

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("workers") / "home"
    port, acme_port = _free_port(), _free_port()
    assert run_cli("--data-dir", home, "init", "--port", str(port), "--acme-port", str(acme_port)).code == 0
    config = (home / "candor.toml").read_text()
    config, replaced = re.subn(r"(?m)^workers = 1$", "workers = 2", config)
    assert replaced == 1
    # These workers log nowhere (their private issuer issues without SCTs); with the embedded default's own CT
    # logs, see test_every_worker_serves_the_embedded_ct_logs.
    config, replaced = re.subn(r"(?s)\[\[ct\.logs\]\].*?(?=\[logging\])", "", config)
    assert replaced == 1
    (home / "candor.toml").write_text(config)
    return home


def test_every_worker_serves_the_embedded_ct_logs(tmp_path: Path) -> None:
    """The embedded default's own CT logs with two workers: the primary sequences them and the other worker
    stores submissions and follows its tree heads. `candor issue` (which reaches the logs over HTTP, so through
    either worker) gets two SCTs per certificate, and each worker's get-sth soon covers every entry."""
    home = tmp_path / "home"
    port, acme_port = _free_port(), _free_port()
    assert run_cli("--data-dir", home, "init", "--port", str(port), "--acme-port", str(acme_port)).code == 0
    config = (home / "candor.toml").read_text().replace("workers = 1", "workers = 2")
    (home / "candor.toml").write_text(config)
    with serving(home) as served:
        for number in range(3):
            certificate = cli_issue(home, tmp_path / f"issue-{number}", f"w{number}.example.test")[0][0]
            scts = certificate.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps)
            assert len({sct.log_id for sct in scts.value}) == 2
        pids = served.workers()
        deadline = time.monotonic() + 30
        while True:
            sizes = {}
            for _ in range(16):
                connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
                try:
                    connection.request("GET", "/ct/log-a/ct/v1/get-sth")
                    response = connection.getresponse()
                    assert response.status == 200
                    assert connection.sock is not None
                    owner = _owner(connection.sock, pids)
                    sizes[owner] = min(sizes.get(owner, 1 << 62), json.loads(response.read())["tree_size"])
                finally:
                    connection.close()
            # 3 precertificates and their 3 final certificates, in the tree heads both workers serve
            if (set(sizes) == set(pids) and min(sizes.values()) >= 6) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert set(sizes) == set(pids) and min(sizes.values()) >= 6, (sizes, served.log.read_text()[-2000:])


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    acme_port: int
    log: Path

    def workers(self) -> list[int]:
        return _children(self.process.pid)


@contextmanager
def serving(home: Path) -> Iterator[Served]:
    config = (home / "candor.toml").read_text()
    port = int(re.search(r"(?m)^port = (\d+)$", config).group(1))  # type: ignore[union-attr]
    acme_port = int(re.search(r"(?m)^https_port = (\d+)$", config).group(1))  # type: ignore[union-attr]
    log = home / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "candor", "--data-dir", str(home), "serve"],
            stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for(lambda: "worker processes" in log.read_text() or process.poll() is not None, "candor serve")
        assert process.poll() is None, log.read_text()
        served = Served(process, port, acme_port, log)
        _wait_for(lambda: len(served.workers()) == 2, "two workers")
        yield served
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _owner(connection: socket.socket, candidates: list[int]) -> int | None:
    """Which of *candidates* holds the server end of *connection* (matched by socket inode via /proc)."""
    local = connection.getsockname()[1]
    remote = connection.getpeername()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == remote and int(fields[2].split(":")[1], 16) == local:
            inode = fields[9]
    for pid in candidates:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def _health(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status
    finally:
        connection.close()


def test_two_workers_serve_connections_on_both_listeners(home: Path) -> None:
    with serving(home) as served, ExitStack() as stack:
        pids = served.workers()
        owners = set()
        for _ in range(24):
            connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
            stack.callback(connection.close)
            connection.request("GET", "/health")
            response = connection.getresponse()
            assert response.status == 200
            response.read()
            assert connection.sock is not None
            owners.add(_owner(connection.sock, pids))
        assert owners == set(pids)  # each worker took some of the connections
        context = ssl.create_default_context(cafile=str(home / "public" / "issuers" / "root-x1.pem"))
        acme = http.client.HTTPSConnection("127.0.0.1", served.acme_port, timeout=10, context=context)
        acme.request("GET", "/acme/directory")
        assert acme.getresponse().status == 200  # the certificate the parent issued, presented by a worker
        acme.close()


def test_a_killed_worker_is_replaced_and_sigterm_stops_everything(home: Path) -> None:
    with serving(home) as served:
        first = served.workers()
        os.kill(first[1], signal.SIGKILL)
        _wait_for(lambda: len(served.workers()) == 2 and first[1] not in served.workers(), "a replacement worker")
        replaced = served.workers()
        assert first[0] in replaced
        assert all(_health(served.port) == 200 for _ in range(8))
        os.killpg(served.process.pid, signal.SIGTERM)
        assert served.process.wait(30) == 0
        for pid in replaced:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.parametrize(("allowed", "cores"), [({0, 1}, [0, 1, 0]), ({5, 2, 7}, [2, 5, 7, 2]), ({3}, [3, 3])])
def test_workers_take_the_allowed_cores_in_order_and_in_turn(allowed: set[int], cores: list[int]) -> None:
    assert [workers.core_for(slot, allowed) for slot in range(len(cores))] == cores
    with pytest.raises(ValueError, match="no core"):
        workers.core_for(0, set())


def test_auto_cpu_affinity_binds_each_worker_and_its_lint_helpers_to_its_core(home: Path, tmp_path: Path) -> None:
    bound = tmp_path / "home"
    shutil.copytree(home, bound)
    config = (bound / "candor.toml").read_text()
    config, replaced = re.subn(r'(?m)^cpu_affinity = "none"$', 'cpu_affinity = "auto"', config)
    assert replaced == 1
    (bound / "candor.toml").write_text(config)
    expected = sorted(workers.core_for(slot, os.sched_getaffinity(0)) for slot in range(2))
    with serving(bound) as served:
        assert "2 worker processes, each bound to a core" in served.log.read_text()
        first = served.workers()
        # a worker binds itself as it starts, right after the fork: wait for that
        _wait_for(lambda: all(len(os.sched_getaffinity(pid)) == 1 for pid in first), "the workers' binding")
        assert sorted(min(os.sched_getaffinity(pid)) for pid in first) == expected
        # each worker warms its lint helper at start: the helper runs on its worker's core
        _wait_for(lambda: all(_children(pid) for pid in first), "the workers' lint helpers")
        for pid in first:
            helpers = {core for child in _children(pid) for core in os.sched_getaffinity(child)}
            assert helpers == os.sched_getaffinity(pid)
        # a replacement takes its slot's core again
        killed = os.sched_getaffinity(first[1])
        os.kill(first[1], signal.SIGKILL)
        _wait_for(lambda: len(served.workers()) == 2 and first[1] not in served.workers(), "a replacement worker")
        replacement = next(pid for pid in served.workers() if pid != first[0])
        _wait_for(lambda: len(os.sched_getaffinity(replacement)) == 1, "the replacement's binding")
        assert os.sched_getaffinity(replacement) == killed
        assert _health(served.port) == 200


def test_a_worker_that_cannot_be_bound_to_a_core_serves_unbound(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(_pid: int, _cores: object) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(workers, "RESTART_PAUSE_SECONDS", 0.01)
    monkeypatch.setattr(workers.os, "sched_setaffinity", refuse)  # the forked worker inherits the patch
    ran = tmp_path / "ran"

    def run_worker(slot: int) -> int:
        ran.write_text(str(slot))
        return 3  # then it dies at start, and the supervisor gives up (as below)

    assert workers.supervise(1, run_worker, bind_cores=True) == 1
    assert ran.read_text() == "0"  # the worker ran, unbound, instead of dying at the binding


def test_supervisor_gives_up_on_workers_that_die_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "RESTART_PAUSE_SECONDS", 0.01)
    started = time.monotonic()
    assert workers.supervise(1, lambda _slot: 3) == 1
    assert time.monotonic() - started < 10


def _acme_connection(served: Served, trust: Path, owner: int | None = None) -> tuple[http.client.HTTPSConnection, int]:
    """A connection to the ACME listener, and the worker that holds it: *owner*'s if given (the kernel chooses
    a worker per connection: connect again until it is that one)."""
    context = ssl.create_default_context(cafile=str(trust))
    for _ in range(200):
        connection = http.client.HTTPSConnection("127.0.0.1", served.acme_port, timeout=10, context=context)
        connection.connect()
        assert connection.sock is not None
        holder = _owner(connection.sock, served.workers())
        if holder is not None and owner in (None, holder):
            return connection, holder
        connection.close()
    raise AssertionError(f"no connection to worker {owner}")


def _new_nonce(served: Served, trust: Path, owner: int | None = None) -> tuple[str, int]:
    """A nonce from the ACME listener (HEAD new-nonce), and which worker gave it."""
    connection, holder = _acme_connection(served, trust, owner)
    try:
        connection.request("HEAD", "/acme/new-nonce")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        return response.headers["Replay-Nonce"], holder
    finally:
        connection.close()


_ACCOUNT_KEY = ec.generate_private_key(ec.SECP256R1())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _use_nonce(served: Served, trust: Path, nonce: str, owner: int) -> str:
    """POST new-account (onlyReturnExisting: no account is made) with *nonce* to worker *owner*: the problem
    type of the answer, which is badNonce only if the nonce was refused (RFC 8555 6.5)."""
    numbers = _ACCOUNT_KEY.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }
    url = f"https://127.0.0.1:{served.acme_port}/acme/new-account"
    protected = _b64(json.dumps({"alg": "ES256", "jwk": jwk, "nonce": nonce, "url": url}).encode())
    payload = _b64(json.dumps({"onlyReturnExisting": True}).encode())
    r, s = decode_dss_signature(_ACCOUNT_KEY.sign(f"{protected}.{payload}".encode(), ec.ECDSA(hashes.SHA256())))
    body = {
        "protected": protected,
        "payload": payload,
        "signature": _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
    }
    connection, _ = _acme_connection(served, trust, owner)
    try:
        connection.request("POST", "/acme/new-account", json.dumps(body), {"Content-Type": "application/jose+json"})
        response = connection.getresponse()
        problem: str = json.loads(response.read())["type"]
        return problem.removeprefix("urn:ietf:params:acme:error:")
    finally:
        connection.close()


def test_workers_share_their_nonces_a_replacement_too_and_a_restart_refuses_the_earlier_runs(home: Path) -> None:
    """On SQLite the nonces are in memory that `candor serve` makes before its workers fork: a nonce one worker
    issued is good once at the other (and then at neither), a worker the supervisor replaces shares them, and
    after a restart (a new key) none of the earlier run's is accepted. Nothing is written beside the database."""
    trust = home / "public" / "issuers" / "root-x1.pem"
    with serving(home) as served:
        first, second = served.workers()
        for issuer, user in ((first, second), (second, first)):
            nonce = _new_nonce(served, trust, issuer)[0]
            assert _use_nonce(served, trust, nonce, user) == "accountDoesNotExist"
            assert _use_nonce(served, trust, nonce, user) == "badNonce"
            assert _use_nonce(served, trust, nonce, issuer) == "badNonce"
        kept = _new_nonce(served, trust, first)[0]
        old = _new_nonce(served, trust, first)[0]
        os.kill(second, signal.SIGKILL)
        _wait_for(lambda: len(served.workers()) == 2 and second not in served.workers(), "a replacement worker")
        replacement = next(pid for pid in served.workers() if pid != first)
        _wait_for(lambda: _health(served.port) == 200, "the replacement")
        assert _use_nonce(served, trust, kept, replacement) == "accountDoesNotExist"
        assert _use_nonce(served, trust, kept, first) == "badNonce"
        nonce = _new_nonce(served, trust, replacement)[0]
        assert _use_nonce(served, trust, nonce, first) == "accountDoesNotExist"
    assert not list(home.glob("*.nonces"))
    with serving(home) as served:  # the first run was killed (SIGKILL): a crash
        for worker in served.workers():
            assert _use_nonce(served, trust, old, worker) == "badNonce"
            assert _use_nonce(served, trust, _new_nonce(served, trust, worker)[0], worker) == "accountDoesNotExist"
