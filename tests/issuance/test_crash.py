"""Acceptance 3: the signing process is killed (SIGKILL) mid-cycle; at restart the record is reconciled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from issuing import build_home, csr_for
from sqlalchemy import select

from candor.config import database_url, load_config
from candor.profiles.precert import tbs_without_poison_or_scts
from candor.storage import Database
from candor.storage.models import CertificateRecord, SerialRecord
from candor.storage.models_issuance import Issuance, Order
from support import record_issued

pytestmark = pytest.mark.slow


def _issue(home: Path, csr: Path, out: Path, *, pause_at: str | None = None) -> subprocess.Popen[str]:
    environ = dict(os.environ)
    environ.pop("CANDOR_TEST_PAUSE_AT", None)
    if pause_at:
        environ["CANDOR_TEST_PAUSE_AT"] = f"{pause_at}:120"
    return subprocess.Popen(
        [sys.executable, "-m", "candor", "--data-dir", str(home), "issue", "--csr", str(csr),
         "--issuer", "tls-e1", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
    )  # fmt: skip


def _kill_when_paused(process: subprocess.Popen[str], stage: str) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip() == f"paused at {stage}":
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            process.stdout.close()
            assert process.stderr is not None
            process.stderr.close()
            return
        if not line and process.poll() is not None:
            break
    pytest.fail(f"the signer never reached {stage}: {process.stderr.read() if process.stderr else ''}")


def _state(home: Path) -> dict[str, object]:
    db = Database(database_url(load_config(home).database, home))
    try:
        with db.session() as session:
            issuance = session.scalars(select(Issuance).order_by(Issuance.id.desc()).limit(1)).one()
            order = session.get(Order, issuance.order_id)
            serial = session.get(SerialRecord, issuance.serial_id)
            rows = session.scalars(select(CertificateRecord).where(CertificateRecord.serial_id == issuance.serial_id))
            stored = {row.kind: row.der for row in rows}
            assert order is not None and serial is not None
            return {"state": issuance.state, "order": order.status, "serial": serial.status, "stored": stored}
    finally:
        db.dispose()


@pytest.mark.parametrize("stage", ["intent", "precertificate"])
def test_sigkill_mid_issuance_is_reconciled_at_restart(tmp_path: Path, stage: str) -> None:
    home = build_home(tmp_path / "home")
    first_csr, second_csr = tmp_path / "first.csr", tmp_path / "second.csr"
    first_csr.write_bytes(csr_for([f"crash-{stage}.example.com"]))
    second_csr.write_bytes(csr_for([f"after-{stage}.example.com"]))

    _kill_when_paused(_issue(home, first_csr, tmp_path / "first.pem", pause_at=stage), stage)
    crashed = _state(home)
    assert crashed["order"] == "processing"
    if stage == "precertificate":
        # From the precertificate on, the serial is issued for revocation purposes (BR 7.1.2.9).
        assert crashed["state"] == "precertificate" and crashed["serial"] == "issued"
        assert set(crashed["stored"]) == {"precertificate"}  # type: ignore[arg-type]
    else:
        assert crashed["state"] == "intent" and crashed["stored"] == {}

    # Restart: the next signer run reconciles before it does anything else, then issues its own order.
    restarted = _issue(home, second_csr, tmp_path / "second.pem")
    _out, err = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, err
    assert "reconciled" in err

    db = Database(database_url(load_config(home).database, home))
    try:
        with db.session() as session:
            issuances = list(session.scalars(select(Issuance).order_by(Issuance.id)))
            assert [i.state for i in issuances] == ["complete", "complete"]
            first = issuances[0]
            assert session.get(Order, first.order_id).status == "valid"  # type: ignore[union-attr]
            # No (issuer, serial) has two different TBS: one precertificate, one final, and they correspond.
            for issuance in issuances:
                rows = list(
                    session.scalars(select(CertificateRecord).where(CertificateRecord.serial_id == issuance.serial_id))
                )
                assert sorted(r.kind for r in rows) == ["certificate", "precertificate"]
                by_kind = {r.kind: x509.load_der_x509_certificate(r.der) for r in rows}
                precert, final = by_kind["precertificate"], by_kind["certificate"]
                assert precert.tbs_certificate_bytes == issuance.precert_tbs
                assert tbs_without_poison_or_scts(precert.tbs_certificate_bytes) == final.tbs_certificate_bytes
                chain_issuer = home / "public" / "issuers" / "tls-e1.der"
                record_issued(
                    final,
                    (x509.load_der_x509_certificate(chain_issuer.read_bytes()),),
                    home / "public" / "issuers" / "root-x1.pem",
                )
            serials = [s.serial_hex for s in session.scalars(select(SerialRecord))]
            assert len(serials) == len(set(serials))
    finally:
        db.dispose()
