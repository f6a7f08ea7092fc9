"""Helpers shared by the CLI, ceremony and server tests: data directories and in-process CLI runs."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from candor.cli import main
from candor.defaults import CEREMONY_TEMPLATE


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*argv: str | Path, environ: Mapping[str, str] | None = None) -> CliResult:
    """Run ``candor ARGV`` in this process (so it shares SoftHSM's configuration) and capture its output."""
    import os

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    try:
        if environ is not None:
            os.environ.update(environ)
        with redirect_stdout(out), redirect_stderr(err):
            code = main([str(a) for a in argv])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return CliResult(code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """A refused command exits non-zero with exactly one line on stderr and no traceback."""
    assert result.code != 0, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("candor: error: "), lines[0]
    assert "Traceback" not in result.err + result.out
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


FILE_STORE = """
[keys.stores.file]
backend = "file"
directory = "keys"
passphrase = { file = "secrets/key-passphrase" }
"""


def pkcs11_store(name: str, module: Path, token_label: str, pin_env: str) -> str:
    return f"""
[keys.stores.{name}]
backend = "pkcs11"
module = "{module}"
token_label = "{token_label}"
pin = {{ env = "{pin_env}" }}
"""


def make_home(base: Path, *, stores: str = FILE_STORE, database_url: str = "sqlite:///candor.db") -> Path:
    """A data directory with a config and a key passphrase, but no hierarchy yet."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "secrets").mkdir(mode=0o700, exist_ok=True)
    (base / "secrets" / "key-passphrase").write_text("test passphrase, long enough\n")
    (base / "candor.toml").write_text(f'[database]\nurl = "{database_url}"\n{stores}')
    return base


def home_after_ceremony(base: Path, *, stores: str) -> Path:
    """A data directory (:func:`make_home`) after the default ceremony."""
    make_home(base, stores=stores)
    result = run_cli("--data-dir", base, "ceremony", "--config", ceremony_file(base / "c.toml"))
    assert result.code == 0, result.err
    return base


def ceremony_file(
    path: Path,
    *,
    base_url: str = "http://127.0.0.1:8080",
    private: bool = True,
    replace: Mapping[str, str] | None = None,
) -> Path:
    """The default ceremony, with text substitutions (e.g. a store name or an algorithm)."""
    text = CEREMONY_TEMPLATE.format(base_url=base_url)
    text = text.replace("private = true", f"private = {'true' if private else 'false'}")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


def load_pem_or_der(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    return x509.load_pem_x509_certificate(data) if data.startswith(b"-----") else x509.load_der_x509_certificate(data)


def cli_issue(home: Path, work: Path, name: str) -> tuple[list[x509.Certificate], Path, Path]:
    """`candor issue` by the embedded default's issuer tls-e1 for *name*, with a fresh P-256 key: the chain, the
    file it was written to, and the key's (unencrypted PEM) file, all in *work*."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    work.mkdir(parents=True, exist_ok=True)
    (work / "req.pem").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    keyfile = work / "leaf.key"
    pkcs8, unencrypted = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, unencrypted))
    chain = work / "chain.pem"
    result = run_cli("--data-dir", home, "issue", "--csr", work / "req.pem", "--issuer", "tls-e1", "--out", chain)
    assert result.code == 0, result.err
    return x509.load_pem_x509_certificates(chain.read_bytes()), chain, keyfile


def openssl(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=check, timeout=60)


# Every certificate the issuance tests obtain, re-checked independently at the end of the run
# (tests/zz_relint): (certificate, its chain without the root, the root's PEM file, whether the hierarchy is
# private with loopback URLs, so that only pkilint's internal-name findings in AIA/CRLDP/SAN are accepted).
ISSUED: list[tuple[x509.Certificate, tuple[x509.Certificate, ...], Path, bool]] = []


def record_issued(
    certificate: x509.Certificate, chain: tuple[x509.Certificate, ...], root_pem: Path, *, local_urls: bool = False
) -> None:
    ISSUED.append((certificate, chain, root_pem, local_urls))
