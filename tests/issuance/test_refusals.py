"""Acceptance 5 and the WoSign lessons at the signer: bad requests are refused naming the rule, nothing is
signed, and the signer re-checks authorizations itself (WS-05, WS-06, WS-08)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from issuing import CA, build_home, csr_for, new_key, open_ca
from sqlalchemy import func, select

from candor.errors import CandorError, ErrorKind
from candor.storage import orders
from candor.storage.models import CertificateRecord, SerialRecord


def _signed_rows(ca: CA) -> tuple[int, int]:
    with ca.db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(SerialRecord)) or 0,
            session.scalar(select(func.count()).select_from(CertificateRecord)) or 0,
        )


def _refused(ca: CA, names: list[str], csr: bytes, *, rule: str, authorize: bool = True) -> None:
    account = ca.account("acct-refusals")
    if authorize:
        for name in names:
            ca.authorize(account, name.removeprefix("*."), method="3.2.2.4.7")
    order_id = ca.order(account, names)
    before = _signed_rows(ca)
    with pytest.raises(CandorError) as caught:
        ca.signer.finalize(order_id, csr)
    assert rule in caught.value.message, caught.value.message
    assert "\n" not in caught.value.message
    assert _signed_rows(ca) == before


def _bad_signature(names: list[str]) -> bytes:
    der = bytearray(csr_for(names))
    der[-5] ^= 0xFF
    return bytes(der)


def _csr_with(key: object, names: list[str]) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)  # type: ignore[arg-type]


def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


CASES: dict[str, tuple[Callable[[list[str]], bytes], str]] = {
    "bad-signature": (_bad_signature, "RFC 2986"),
    "rsa-1024": (lambda n: _csr_with(_rsa(1024), n), "6.1.5"),
    "secp256k1": (lambda n: _csr_with(ec.generate_private_key(ec.SECP256K1()), n), "BR"),
    "brainpool": (lambda n: _csr_with(ec.generate_private_key(ec.BrainpoolP256R1()), n), "BR"),
    "ca-true": (
        lambda n: csr_for(n, extensions=[(x509.BasicConstraints(ca=True, path_length=None), True)]),
        "cA TRUE",
    ),
    "other-extension": (lambda n: csr_for(n, extensions=[(x509.OCSPNoCheck(), False)]), "7.1.2.7.6"),
    "code-signing-eku": (
        lambda n: csr_for(n, extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)]),
        "7.1.2.7.10",
    ),
    "email-san": (
        lambda n: _with_san(n, x509.RFC822Name("a@example.com")),
        "dNSName or iPAddress",
    ),
    "cn-not-a-san": (lambda n: csr_for(n, common_name="elsewhere.example.com"), "commonName"),
}


def _with_san(names: list[str], extra: x509.GeneralName) -> bytes:
    key = new_key()
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    general: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    builder = builder.add_extension(x509.SubjectAlternativeName([*general, extra]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_csr_is_refused_naming_the_rule(ca: CA, case: str) -> None:
    make, rule = CASES[case]
    names = [f"{case}.example.com"]
    _refused(ca, names, make(names), rule=rule)


def test_101_names_are_refused(ca: CA) -> None:
    names = [f"n{i}.many.example.com" for i in range(101)]
    _refused(ca, names, csr_for(names), rule="100")


@pytest.mark.parametrize("name", ["intranet.corp", "printer.local", "localhost", "x.internal", "ex_ample.com"])
def test_a_public_issuer_refuses_internal_or_malformed_names(public_ca_home: object, name: str) -> None:
    ca = open_ca(public_ca_home, sct_source=_UnreachableCt())  # type: ignore[arg-type]
    try:
        _refused(ca, [name], csr_for([name]), rule="BR")
    finally:
        ca.stores.close()
        ca.db.dispose()


def test_a_private_issuer_certifies_internal_names_but_not_bad_syntax(ca: CA) -> None:
    """A private hierarchy (a local PKI, an enterprise CA) names its own hosts; syntax rules still hold."""
    account = ca.account("acct-private-names")
    for name in ("localhost", "intranet.corp"):
        ca.authorize(account, name, method="operator")
    ca.authorize(account, "127.0.0.1", kind="ip", method="operator")
    order_id = ca.order(account, ["localhost", "intranet.corp", "127.0.0.1"])
    assert ca.signer.finalize(order_id, csr_for(["localhost", "intranet.corp", "127.0.0.1"])).certificate
    _refused(ca, ["ex_ample.com"], csr_for(["ex_ample.com"]), rule="BR")


def test_names_that_differ_from_the_order_are_refused(ca: CA) -> None:
    _refused(ca, ["ordered.example.com"], csr_for(["ordered.example.com", "extra.example.com"]), rule="RFC 8555")


def test_a_blocked_key_is_refused(ca: CA) -> None:
    key = new_key()
    import hashlib

    from cryptography.hazmat.primitives.serialization import PublicFormat

    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
    with ca.db.session() as session:
        orders.block_key(
            session,
            spki_sha256=hashlib.sha256(spki).hexdigest(),
            reason="keyCompromise",
            source="test",
            created_at=ca.clock.now(),
        )
    _refused(ca, ["blocked.example.com"], csr_for(["blocked.example.com"], key=key), rule="block")


# --- WS-05: authorizations, re-checked by the signer from storage ------------------------------------------


def _order_with(ca: CA, authorized: str, method: str, requested: str, **kwargs: object) -> tuple[int, bytes]:
    account = ca.account(f"acct-{authorized}-{method}-{requested}")
    ca.authorize(account, authorized, method=method, **kwargs)  # type: ignore[arg-type]
    return ca.order(account, [requested]), csr_for([requested])


def test_ws05a_a_subdomain_never_authorizes_its_parent(ca: CA) -> None:
    order_id, csr = _order_with(ca, "sub.ws05a.example.com", "3.2.2.4.19", "ws05a.example.com")
    with pytest.raises(CandorError, match=r"BR 3\.2\.2\.4"):
        ca.signer.finalize(order_id, csr)


def test_ws05c_dns_change_authorizes_deeper_names(ca: CA) -> None:
    order_id, csr = _order_with(ca, "ws05c.example.com", "3.2.2.4.7", "a.b.ws05c.example.com")
    assert ca.signer.finalize(order_id, csr).certificate


def test_ws05c_dns_change_on_a_child_does_not_authorize_the_parent(ca: CA) -> None:
    order_id, csr = _order_with(ca, "child.ws05c2.example.com", "3.2.2.4.7", "ws05c2.example.com")
    with pytest.raises(CandorError, match=r"BR 3\.2\.2\.4"):
        ca.signer.finalize(order_id, csr)


@pytest.mark.parametrize("method", ["3.2.2.4.19", "3.2.2.4.20"])
def test_ws05d_http_and_tls_alpn_prove_one_name_only(ca: CA, method: str) -> None:
    order_id, csr = _order_with(ca, "ws05d.example.com", method, f"www{method[-2:]}.ws05d.example.com")
    with pytest.raises(CandorError, match=r"BR 3\.2\.2\.4"):
        ca.signer.finalize(order_id, csr)


def test_wildcards_need_a_dns_change(ca: CA) -> None:
    order_id, csr = _order_with(ca, "wild.ws05.example.com", "3.2.2.4.19", "*.wild.ws05.example.com")
    with pytest.raises(CandorError, match=r"BR 3\.2\.2\.4"):
        ca.signer.finalize(order_id, csr)


def test_ws05f_another_accounts_authorization_does_not_count(ca: CA) -> None:
    """A forged order (the RA bypassed) for names only another account validated is refused."""
    owner, thief = ca.account("acct-owner"), ca.account("acct-thief")
    ca.authorize(owner, "owned.example.com", method="3.2.2.4.7")
    order_id = ca.order(thief, ["owned.example.com"])
    with pytest.raises(CandorError, match=r"BR 3\.2\.2\.4"):
        ca.signer.finalize(order_id, csr_for(["owned.example.com"]))


def test_ws05g_one_unvalidated_name_refuses_the_whole_order(ca: CA) -> None:
    account = ca.account("acct-ws05g")
    names = [f"n{i}.ws05g.example.com" for i in range(100)]
    for name in names[:-1]:
        ca.authorize(account, name)
    order_id = ca.order(account, names)
    with pytest.raises(CandorError, match=r"n99\.ws05g\.example\.com"):
        ca.signer.finalize(order_id, csr_for(names))


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"expires_in": timedelta(seconds=-1)}, "expired"),
        ({"status": "pending", "validated_at": None}, "pending"),
        ({"method": "3.2.2.4.6"}, "a retired method"),
    ],
)
def test_unusable_authorizations_do_not_count(ca: CA, kwargs: dict[str, object], why: str) -> None:
    account = ca.account(f"acct-unusable-{why}")
    method = kwargs.pop("method", "3.2.2.4.19")
    if kwargs.get("validated_at", 1) is None:
        with ca.db.session() as session:
            orders.add_authorization(
                session, account=account, identifier=("dns", "unusable.example.com"), status="pending",
                expires_at=ca.clock.now() + timedelta(days=1), created_at=ca.clock.now(),
            )  # fmt: skip
    else:
        ca.authorize(account, "unusable.example.com", method=str(method), **kwargs)  # type: ignore[arg-type]
    order_id = ca.order(account, ["unusable.example.com"])
    with pytest.raises(CandorError, match=r"BR 3\.2\.2\.4"):
        ca.signer.finalize(order_id, csr_for(["unusable.example.com"]))


def test_validation_older_than_the_reuse_period_does_not_count(ca: CA) -> None:
    account = ca.account("acct-stale")
    ca.authorize(
        account, "stale.example.com", validated_at=ca.clock.now() - timedelta(days=201), expires_in=timedelta(days=30)
    )
    order_id = ca.order(account, ["stale.example.com"])
    with pytest.raises(CandorError, match=r"BR 3\.2\.2\.4"):
        ca.signer.finalize(order_id, csr_for(["stale.example.com"]))


def test_an_issuer_does_not_issue_a_profile_its_policy_excludes(ca: CA) -> None:
    account = ca.account("acct-ov")
    ca.authorize(account, "ov.example.com")
    order_id = ca.order(account, ["ov.example.com"], profile="ov")
    with pytest.raises(CandorError, match=r"7\.1\.2\.10\.5"):
        ca.signer.finalize(order_id, csr_for(["ov.example.com"]))


@pytest.fixture(scope="module")
def public_ca_home(tmp_path_factory: pytest.TempPathFactory) -> object:
    return build_home(tmp_path_factory.mktemp("public-ca"), private=False)


def test_a_public_issuer_never_issues_without_ct(public_ca_home: object) -> None:
    ca = open_ca(public_ca_home)  # type: ignore[arg-type]
    try:
        _refused(ca, ["public.example.com"], csr_for(["public.example.com"]), rule="CT")
    finally:
        ca.stores.close()
        ca.db.dispose()


class _UnreachableCt:
    def obtain(self, precertificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        raise AssertionError("nothing may reach CT submission when the authorization check fails")


def test_public_issuer_refuses_operator_attestation(public_ca_home: object) -> None:
    ca = open_ca(public_ca_home, sct_source=_UnreachableCt())  # type: ignore[arg-type]
    try:
        account = ca.account("acct-operator")
        ca.authorize(account, "attested.example.com", method="operator")
        order_id = ca.order(account, ["attested.example.com"])
        with pytest.raises(CandorError, match=r"BR 3\.2\.2\.4"):
            ca.signer.finalize(order_id, csr_for(["attested.example.com"]))
    finally:
        ca.stores.close()
        ca.db.dispose()


@pytest.mark.parametrize("hours", [9, 8])
def test_public_issuer_refuses_a_stale_caa_check(public_ca_home: object, hours: int) -> None:
    """BR 3.2.2.8, re-checked by the signer: whatever path reaches it, an authorization whose CAA check is 8 hours
    old or more does not cover a name on a publicly-trusted issuer (the ACME RA checks again at finalize; a
    CLI or a forged order cannot skip that), and nothing reaches CT."""
    from datetime import timedelta

    ca = open_ca(public_ca_home, sct_source=_UnreachableCt())  # type: ignore[arg-type]
    try:
        account = ca.account(f"acct-caa-{hours}")
        checked = ca.clock.now() - timedelta(hours=hours)
        ca.authorize(account, f"caa{hours}.example.com", caa_checked_at=checked)
        order_id = ca.order(account, [f"caa{hours}.example.com"])
        with pytest.raises(CandorError, match=r"BR 3\.2\.2\.8") as refused:
            ca.signer.finalize(order_id, csr_for([f"caa{hours}.example.com"]))
        assert refused.value.kind is ErrorKind.POLICY
    finally:
        ca.stores.close()
        ca.db.dispose()
