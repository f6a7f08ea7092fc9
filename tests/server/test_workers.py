"""``[server] workers``: `candor serve` forks workers that all serve the same ports, replaces one that dies,
stops them all on SIGTERM, and gives up when workers die at start-up again and again."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

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


def test_supervisor_gives_up_on_workers_that_die_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "RESTART_PAUSE_SECONDS", 0.01)
    started = time.monotonic()
    assert workers.supervise(1, lambda _slot: 3) == 1
    assert time.monotonic() - started < 10


def _new_nonce(served: Served, trust: Path) -> tuple[str, int | None]:
    """A nonce from the ACME listener (HEAD new-nonce), and which worker gave it."""
    context = ssl.create_default_context(cafile=str(trust))
    connection = http.client.HTTPSConnection("127.0.0.1", served.acme_port, timeout=10, context=context)
    try:
        connection.request("HEAD", "/acme/new-nonce")
        response = connection.getresponse()
        response.read()
        assert response.status == 200 and connection.sock is not None
        return response.headers["Replay-Nonce"], _owner(connection.sock, served.workers())
    finally:
        connection.close()


def _stored_nonces(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as connection:
        return {value for (value,) in connection.execute("SELECT value FROM nonces")}


def test_serve_empties_the_nonce_file_when_it_starts_and_a_replaced_worker_does_not(home: Path) -> None:
    """The nonces' own file beside the SQLite database (no fsync per commit: a power loss may undo deletions) is
    emptied by `candor serve` before its workers start, so no nonce from before is accepted again; a worker the
    supervisor replaces leaves the others' live nonces alone. The CA's own database holds no nonce."""
    trust = home / "public" / "issuers" / "root-x1.pem"
    nonces = home / "candor.db.nonces"
    with serving(home) as served:
        first = served.workers()
        issued = {_new_nonce(served, trust)[0] for _ in range(8)}
        assert issued <= _stored_nonces(nonces)
        os.kill(first[1], signal.SIGKILL)
        _wait_for(lambda: len(served.workers()) == 2 and first[1] not in served.workers(), "a replacement worker")
        replacement = next(pid for pid in served.workers() if pid not in first)
        for _ in range(200):  # until the replacement has built its ACME listener and answers
            nonce, owner = _new_nonce(served, trust)
            issued.add(nonce)
            if owner == replacement:
                break
        assert owner == replacement
        assert issued <= _stored_nonces(nonces)
    assert _stored_nonces(home / "candor.db") == set()
    with serving(home) as served:  # the first run was killed (SIGKILL): a crash
        assert not issued & _stored_nonces(nonces)
        assert _new_nonce(served, trust)[0] in _stored_nonces(nonces)
