"""`candor serve` watches its clock: the first verdict before anything is signed, then a poll every
poll_seconds in the primary worker, published for the other workers and `candor clock status`, each change in
the audit log (TSA-03, WS-08e); with two workers, every one of them refuses time-stamps while the clock drifts
(issue 7, acceptance 4, through the whole server and a real NTP exchange)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from ntp_server import NtpServer
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tsa"))

from tsa_support import post, read_reply, request

from candor.config import database_url, load_config
from candor.defaults import CLOCK_CHRONY, CLOCK_SYSTEM
from candor.storage import Database
from candor.storage.models import AuditEvent
from candor.timekeeping import VERDICT_FILE
from support import assert_one_line_error, run_cli

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def published_state(home: Path) -> str | None:
    try:
        return str(json.loads((home / VERDICT_FILE).read_text())["state"])
    except (OSError, ValueError):
        return None


def clock_actions(home: Path) -> list[str]:
    db = Database(database_url(load_config(home).database, home))
    try:
        with db.session() as session:
            query = select(AuditEvent.action).where(AuditEvent.action.like("clock.%")).order_by(AuditEvent.seq)
            return list(session.scalars(query))
    finally:
        db.dispose()


@dataclass(frozen=True)
class Serving:
    home: Path
    ntp: NtpServer
    log: Path

    def output(self) -> str:
        return self.log.read_text()


@contextmanager
def serving(tmp_path: Path, *, workers: int = 1) -> Iterator[Serving]:
    """`candor init`, then `candor serve` with [clock] asking the test NTP server every second."""
    home = tmp_path / "home"
    assert run_cli("--data-dir", home, "init", "--port", str(free_port()), "--acme-port", str(free_port())).code == 0
    with NtpServer() as ntp:
        config = (home / "candor.toml").read_text()
        source = CLOCK_CHRONY if CLOCK_CHRONY in config else CLOCK_SYSTEM
        ntp_lines = f'sources = ["ntp"]\nntp_servers = ["{ntp.address}"]\nntp_timeout_seconds = 1'
        config = config.replace(source, ntp_lines).replace("poll_seconds = 16", "poll_seconds = 1")
        if workers > 1:
            config = config.replace("workers = 1", f"workers = {workers}")
            # a private hierarchy without CT: candor serve's own logs are a single-process matter
            start, end = config.index("# Certificate Transparency (RFC 6962)"), config.index("# The OCSP responder")
            config = config[:start] + config[end:]
        (home / "candor.toml").write_text(config)
        log = tmp_path / "serve.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "candor", "--data-dir", str(home), "serve"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            running = Serving(home, ntp, log)
            wait_for(lambda: "ACME directory" in running.output() or process.poll() is not None, "candor serve")
            assert process.poll() is None, running.output()
            yield running
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    assert process.returncode == 0, log.read_text()


def test_serve_distrusts_a_drifting_clock_and_trusts_it_again(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        home, ntp = served.home, served.ntp
        assert published_state(home) == "trusted"
        assert clock_actions(home)[:1] == ["clock.trusted"]  # the first verdict, before the listener's certificate

        ntp.behaviour.offset = 5.0
        wait_for(lambda: published_state(home) == "offset", "the published verdict to distrust the clock", 15)
        status = run_cli("--data-dir", home, "clock", "status")
        found = re.search(r"s old\): not trustworthy: the clock is (-[0-9.]+) s off its time sources", status.out)
        assert found is not None, status.out
        assert float(found.group(1)) == pytest.approx(-5.0, abs=0.1)
        assert_one_line_error(status, "the clock is not trustworthy")
        wait_for(lambda: clock_actions(home)[-1:] == ["clock.untrusted"], "clock.untrusted in the audit log", 15)

        ntp.behaviour.offset = 0.0
        wait_for(lambda: published_state(home) == "trusted", "the published verdict to trust the clock", 15)
        wait_for(lambda: clock_actions(home)[-1:] == ["clock.trusted"], "clock.trusted in the audit log", 15)
        assert run_cli("--data-dir", home, "clock", "status").code == 0
        assert clock_actions(home).count("clock.untrusted") == 1  # one event per change, not one per poll
    assert run_cli("--data-dir", home, "audit", "verify").code == 0


def statuses(url: str, count: int) -> list[tuple[int, frozenset[str]]]:
    """The PKIStatus and failInfo of *count* requests, each on a new connection (the kernel spreads new
    connections over the workers' sockets, SO_REUSEPORT)."""
    replies = [read_reply(post(url, request())[2]) for _ in range(count)]
    return [(reply.status, frozenset(reply.failures)) for reply in replies]


def test_every_worker_refuses_time_stamps_while_the_clock_drifts(tmp_path: Path) -> None:
    with serving(tmp_path, workers=2) as served:
        found = re.search(r"TSA \(RFC 3161\): POST application/timestamp-query to (\S+)", served.output())
        assert found is not None, served.output()
        url = found.group(1)
        granted = (0, frozenset[str]())
        assert statuses(url, 20) == [granted] * 20

        served.ntp.behaviour.offset = 3.0
        wait_for(lambda: published_state(served.home) == "offset", "the primary to distrust the clock", 15)
        time.sleep(2.0)  # the other worker re-reads the verdict every second
        assert statuses(url, 20) == [(2, frozenset({"timeNotAvailable"}))] * 20

        served.ntp.behaviour.offset = 0.0
        wait_for(lambda: published_state(served.home) == "trusted", "the primary to trust the clock again", 15)
        time.sleep(2.0)
        assert statuses(url, 20) == [granted] * 20
