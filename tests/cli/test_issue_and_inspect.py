"""`candor issue` (operator issuance) and `candor inspect`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cryptography import x509

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "issuance"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "timekeeping"))

from issuing import build_home, csr_for
from ntp_server import NtpServer

from support import assert_one_line_error, record_issued, run_cli


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("issue"))


def test_operator_issues_on_a_private_issuer(home: Path, tmp_path: Path) -> None:
    csr = tmp_path / "req.der"
    csr.write_bytes(csr_for(["intranet.example.com", "203.0.114.9"]))
    result = run_cli("--data-dir", home, "issue", "--csr", csr, "--issuer", "tls-e1", "--out", tmp_path / "chain.pem")
    assert result.code == 0, result.err
    chain = x509.load_pem_x509_certificates((tmp_path / "chain.pem").read_bytes())
    assert len(chain) == 2
    assert chain[1].subject == chain[0].issuer
    record_issued(chain[0], (chain[1],), home / "public" / "issuers" / "root-x1.pem")

    inspected = run_cli("inspect", tmp_path / "chain.pem")
    assert inspected.code == 0, inspected.err
    assert "DV_CERTIFICATE" in inspected.out.upper().replace("-", "_")
    assert "0 error(s)" in inspected.out


def test_operator_cannot_attest_names_on_a_public_issuer(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    public = build_home(tmp_path_factory.mktemp("public-issue"), private=False)
    csr = tmp_path / "req.der"
    csr.write_bytes(csr_for(["www.example.com"]))
    with NtpServer() as ntp:  # a publicly-trusted hierarchy signs only on a clock a UTC(k) source confirms
        with (public / "candor.toml").open("a") as config:
            config.write(f'\n[clock]\nsources = ["ntp"]\nntp_servers = ["{ntp.address}"]\n')
        result = run_cli("--data-dir", public, "issue", "--csr", csr, "--issuer", "tls-e1")
    assert_one_line_error(result, "publicly trusted", "--account")


def test_a_bad_csr_is_one_line(home: Path, tmp_path: Path) -> None:
    csr = tmp_path / "req.der"
    csr.write_bytes(b"not a request")
    assert_one_line_error(run_cli("--data-dir", home, "issue", "--csr", csr, "--issuer", "tls-e1"), "RFC 2986")


def test_unknown_issuer(home: Path, tmp_path: Path) -> None:
    csr = tmp_path / "req.der"
    csr.write_bytes(csr_for(["x.example.com"]))
    assert_one_line_error(run_cli("--data-dir", home, "issue", "--csr", csr, "--issuer", "nope"), "no TLS issuer")


def test_inspect_refuses_what_is_not_a_certificate(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"junk")
    assert_one_line_error(run_cli("inspect", tmp_path / "junk"), "not an X.509 certificate")
