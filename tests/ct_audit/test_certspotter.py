"""Acceptance 2 of issue 5: certspotter (SSLMate's CT monitor, the Debian package), given a log list naming
Candor's logs, reads them and finds every certificate the test issued.

The CA issues through two Candor RFC 6962 logs on loopback (CtSubmitter; the final certificates go to both
logs too). certspotter 0.16 runs as the daemon it is: it reads the v3 log list (``-logs``; it reads the
``logs`` of each operator and verifies the tree head signatures with their keys), starts at the beginning of
each log (``-start_at_end`` is off by default), checks the entries against the signed root, and runs the
``-script`` hook for each entry matching the watch list, with ``CERT_SHA256`` (of the certificate, or of the
precertificate for a precert entry) and ``LOG_URI`` in its environment. ``-no_save`` keeps it from skipping a
certificate it already reported from the other log. It polls a log every five minutes, so the logs are
integrated before it starts, and it is stopped once every certificate was reported (or at the deadline).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from audit_support import World
from bind9 import unavailable
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from candor.ct.audit import CtAuditor
from candor.ct.submit.final import FinalSubmissions
from candor.ct.submit.loglist import log_list_document
from candor.storage.models_ct_audit import CtAuditState

DEADLINE_SECONDS = 60
HOOK = """#!/bin/sh
printf '%s %s %s %s\\n' "$CERT_SHA256" "$LOG_URI" "$ENTRY_INDEX" "$WATCH_ITEM" >> "$0.found"
"""


def test_certspotter_finds_every_certificate_and_precertificate_the_ca_issued_in_each_log(
    world: World, tmp_path: Path
) -> None:
    certspotter = shutil.which("certspotter")
    if certspotter is None:
        unavailable("certspotter is not installed (Debian package certspotter)")
        return
    names = [f"www{i}.certspotter-watch.example.com" for i in range(3)]
    expected: set[tuple[str, str]] = set()
    final = FinalSubmissions(db=world.ca.db, submitter=world.submitter, clock=world.ca.clock)
    for name in names:
        issued = world.ca.issue([name]).certificate
        assert all(outcome.sct is not None for outcome in final.submit_final(issued))
        precertificate = world.ca.stored(issued, "precertificate")
        for log in world.logs:
            for certificate in (issued, precertificate):
                expected.add((hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest(), log.url))
    world.ca.issue(["not-watched.example.net"])  # in both logs (its precertificate), and not on the watch list
    world.integrate()

    operators = [(log.operator, f"ct@{log.name}.example", [world.submitter.log_list.logs[i]])
                 for i, log in enumerate(world.logs)]  # fmt: skip
    (tmp_path / "certspotter-logs.json").write_text(json.dumps(log_list_document(operators)))
    (tmp_path / "watchlist").write_text("".join(f"{name}\n" for name in names))
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    (tmp_path / "config").mkdir()  # no hooks.d or email_recipients of the machine's user
    environ = {**os.environ, "HOME": str(tmp_path), "CERTSPOTTER_CONFIG_DIR": str(tmp_path / "config"),
               "NO_PROXY": "127.0.0.1"}  # fmt: skip
    process = subprocess.Popen(
        [certspotter, "-logs", str(tmp_path / "certspotter-logs.json"), "-watchlist", str(tmp_path / "watchlist"),
         "-state_dir", str(tmp_path / "state"), "-script", str(hook), "-no_save", "-verbose"],
        env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    found: set[tuple[str, str]] = set()
    lines: list[str] = []
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            report = Path(f"{hook}.found")
            lines = report.read_text().splitlines() if report.exists() else []
            found = {(line.split()[0], line.split()[1]) for line in lines}
            verified = [certspotter_state(tmp_path / "state", log.ct_log.log_id).get("verified_sth") or {}
                        for log in world.logs]  # fmt: skip
            if expected <= found and all(v.get("tree_size") == 7 for v in verified):
                break
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)  # it stops at once: the context of every log's task is cancelled
        out, err = process.communicate(timeout=30)
    assert expected <= found, f"missing {sorted(expected - found)}\nstdout: {out}\nstderr: {err}"
    assert len(lines) == len(expected), lines  # the unwatched certificate was not reported, nothing twice
    assert {line.split()[3] for line in lines} == set(names)

    # certspotter verified each log's tree head against the entries (its own RFC 6962 2.1 code, in Go); its
    # collapsed tree is the compact range Candor's audit keeps, hash for hash.
    auditor = CtAuditor(db=world.ca.db, clock=world.ca.clock)
    for index, log in enumerate(world.logs):
        state = certspotter_state(tmp_path / "state", log.ct_log.log_id)
        head = log.ct_log.head()
        assert state["verified_sth"]["tree_size"] == head.tree_size == 7
        assert base64.b64decode(state["verified_sth"]["sha256_root_hash"]) == head.root_hash
        report = auditor.audit(world.submitter.log_list.logs[index])
        assert report.clean and report.candor_entries == 7, report.summary()
        with world.ca.db.session() as session:
            ours = session.scalars(select(CtAuditState).where(CtAuditState.log_id == log.ct_log.log_id)).one()
            nodes = b"".join(base64.b64decode(n) for n in state["verified_position"]["nodes"])
            assert (ours.tree_size, ours.compact_range) == (state["verified_position"]["size"], nodes)


def certspotter_state(state_dir: Path, log_id: bytes) -> dict[str, Any]:
    """certspotter's state file for a log (``logs/<unpadded base64url log ID>/state.json``), or {} before it exists."""
    path = state_dir / "logs" / base64.urlsafe_b64encode(log_id).decode().rstrip("=") / "state.json"
    if not path.exists():
        return {}
    document: dict[str, Any] = json.loads(path.read_text())
    return document
