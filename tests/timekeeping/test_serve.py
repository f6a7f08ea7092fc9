"""`candor serve` watches its clock: the first verdict before anything is signed, then a poll every
poll_seconds in the primary worker, published for the other workers and `candor clock status`, each change in
the audit log (TSA-03, WS-08e)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ntp_server import NtpServer
from sqlalchemy import select

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


def test_serve_distrusts_a_drifting_clock_and_trusts_it_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_cli("--data-dir", home, "init", "--port", str(free_port()), "--acme-port", str(free_port())).code == 0
    with NtpServer() as ntp:
        config = (home / "candor.toml").read_text()
        source = CLOCK_CHRONY if CLOCK_CHRONY in config else CLOCK_SYSTEM
        ntp_lines = f'sources = ["ntp"]\nntp_servers = ["{ntp.address}"]\nntp_timeout_seconds = 1'
        config = config.replace(source, ntp_lines).replace("poll_seconds = 16", "poll_seconds = 1")
        (home / "candor.toml").write_text(config)
        log = (tmp_path / "serve.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "candor", "--data-dir", str(home), "serve"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(lambda: "ACME directory" in (tmp_path / "serve.log").read_text(), "candor serve to start")
            assert published_state(home) == "trusted"
            assert clock_actions(home)[:1] == ["clock.trusted"]  # the first verdict, before the listener's certificate

            ntp.behaviour.offset = 5.0
            wait_for(lambda: published_state(home) == "offset", "the published verdict to distrust the clock", 15)
            status = run_cli("--data-dir", home, "clock", "status")
            assert "candor serve's verdict (clock-verdict.json, " in status.out
            served = re.search(r"s old\): not trustworthy: the clock is (-[0-9.]+) s off its time sources", status.out)
            assert served is not None, status.out
            assert float(served.group(1)) == pytest.approx(-5.0, abs=0.1)
            assert_one_line_error(status, "the clock is not trustworthy")
            wait_for(lambda: clock_actions(home)[-1:] == ["clock.untrusted"], "clock.untrusted in the audit log", 15)

            ntp.behaviour.offset = 0.0
            wait_for(lambda: published_state(home) == "trusted", "the published verdict to trust the clock", 15)
            wait_for(lambda: clock_actions(home)[-1:] == ["clock.trusted"], "clock.trusted in the audit log", 15)
            assert run_cli("--data-dir", home, "clock", "status").code == 0
            assert clock_actions(home).count("clock.untrusted") == 1  # one event per change, not one per poll
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
            log.close()
    assert process.returncode == 0, (tmp_path / "serve.log").read_text()
    assert run_cli("--data-dir", home, "audit", "verify").code == 0
