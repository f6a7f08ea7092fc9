"""A TSA unit whose key lives on a PKCS#11 token (SoftHSM2): generated there, non-extractable, every token signed
by the token (off the event loop), and openssl verifies the tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from tsa_support import harness, post, read_reply, request, served, tsa_home

from softhsm import SoftHsm
from support import openssl, pkcs11_store, run_cli

pytestmark = pytest.mark.softhsm


def test_a_unit_on_a_pkcs11_token_signs_tokens_openssl_verifies(softhsm: SoftHsm, tmp_path: Path) -> None:
    home = tsa_home(tmp_path / "home")
    token = softhsm.make_token()
    with (home / "candor.toml").open("a") as config:
        config.write(pkcs11_store("hsm", softhsm.module, token.label, "CANDOR_TEST_TSA_PIN"))
    environ = {"CANDOR_TEST_TSA_PIN": token.pin}
    certified = run_cli("--data-dir", home, "tsa", "certify", "--key-store", "hsm", "--key-type", "ecdsa-p384",
                        environ=environ)  # fmt: skip
    assert certified.code == 0, certified.err
    assert "tsa-ca1-unit-2: ecdsa-p384 key in store 'hsm'" in certified.out
    listing = softhsm.pkcs11_tool(token, "--list-objects", "--type", "privkey")
    assert "tsa-ca1-unit-2" in listing
    with harness(home, environ=environ) as tsa, served(tsa) as url:
        unit = tsa.tsa.keeper.units.current(tsa.context.clock.now())
        assert unit is not None and unit.record.name == "tsa-ca1-unit-2" and unit.blocking
        data = tmp_path / "data.bin"
        data.write_bytes(b"signed on a token\n")
        reply = read_reply(post(url, request(data=data.read_bytes()))[2])
        assert reply.status == 0
        (tmp_path / "r.tsr").write_bytes(reply.der)
        (tmp_path / "root.pem").write_bytes(tsa.root.public_bytes(Encoding.PEM))
    verified = openssl("ts", "-verify", "-in", tmp_path / "r.tsr", "-data", data, "-CAfile", tmp_path / "root.pem")
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stderr
