"""Helpers for the signer tests (the fixtures are in conftest.py): an issuing CA made by the default ceremony
with public-looking URLs, marked private (no CT logs yet), on SQLite or PostgreSQL; and helpers to make keys,
CSRs, accounts, authorizations and orders."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from candor.clock import FakeClock
from candor.config import database_url, load_config
from candor.issuance import IssuanceSettings, IssuedChain, IssuerResolver, SctSource, Signer
from candor.keys import KeyStores
from candor.storage import Database, orders, repositories
from candor.storage.models_issuance import Account, Order
from support import ceremony_file, make_home, record_issued, run_cli

BASE_URL = "http://pki.example.com"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def build_home(
    base: Path, *, database: str = "sqlite:///candor.db", private: bool = True, rsa_issuer: str = "rsa-3072"
) -> Path:
    home = make_home(base, database_url=database)
    config = (home / "candor.toml").read_text()
    (home / "candor.toml").write_text(config + f'\n[server]\npublic_base_url = "{BASE_URL}"\n')
    replace = {
        'key = { store = "file", algorithm = "rsa-3072" }': f'key = {{ store = "file", algorithm = "{rsa_issuer}" }}'
    }
    spec = ceremony_file(home / "c.toml", base_url=BASE_URL, private=private, replace=replace)
    result = run_cli("--data-dir", home, "ceremony", "--config", spec)
    assert result.code == 0, result.err
    return home


@dataclass
class CA:
    home: Path
    db: Database
    stores: KeyStores
    clock: FakeClock
    signer: Signer

    def account(self, label: str) -> Account:
        with self.db.session() as session:
            return orders.account_by_label(session, label) or orders.add_account(
                session, kind="acme", label=label, created_at=self.clock.now()
            )

    def authorize(
        self,
        account: Account,
        value: str,
        *,
        method: str = "3.2.2.4.19",
        kind: str = "dns",
        validated_at: datetime | None = None,
        expires_in: timedelta = timedelta(days=7),
        status: str = "valid",
        caa_checked_at: datetime | None = None,
    ) -> None:
        """A stored authorization as the RA leaves it: validated, with CAA checked at validation time unless
        *caa_checked_at* says otherwise."""
        checked = validated_at or self.clock.now()
        with self.db.session() as session:
            authorization = orders.add_authorization(
                session,
                account=account,
                identifier=(kind, value),
                status=status,
                method=method,
                validated_at=checked,
                expires_at=self.clock.now() + expires_in,
                created_at=self.clock.now(),
            )
            authorization.caa_checked_at = caa_checked_at or checked

    def order(self, account: Account, names: Sequence[str], *, issuer: str = "tls-e1", profile: str = "dv") -> int:
        with self.db.session() as session:
            record = repositories.issuer_by_name(session, issuer)
            assert record is not None
            identifiers = [("ip" if _is_ip(n) else "dns", n) for n in names]
            order = orders.add_order(
                session,
                account=account,
                identifiers=identifiers,
                profile=profile,
                issuer=record,
                created_at=self.clock.now(),
                expires_at=self.clock.now() + timedelta(days=7),
            )
            return order.id

    def order_status(self, order_id: int) -> str:
        with self.db.session() as session:
            order = session.get(Order, order_id)
            assert order is not None
            return order.status

    def issue(
        self, names: Sequence[str], *, key: object | None = None, account: str = "acct-1", **kwargs: str
    ) -> IssuedChain:
        holder = self.account(account)
        for name in names:
            if _is_ip(name):
                self.authorize(holder, name, kind="ip", method="3.2.2.5.7")
            else:
                self.authorize(holder, name.removeprefix("*."), method="3.2.2.4.7")
        order_id = self.order(holder, names, **kwargs)
        chain = self.signer.finalize(order_id, csr_for(names, key=key))
        record_issued(chain.certificate, chain.chain, self.root_pem)
        record_issued(self.stored(chain.certificate, "precertificate"), chain.chain, self.root_pem)
        return chain

    def stored(self, certificate: x509.Certificate, kind: str) -> x509.Certificate:
        """The stored precertificate or certificate with *certificate*'s issuer and serial."""
        with self.db.session() as session:
            issuer = repositories.issuer_by_name(session, "tls-e1")
            for record in repositories.list_issuers(session):
                if record.subject_der == certificate.issuer.public_bytes():
                    issuer = record
            assert issuer is not None
            serial = repositories.serial_by_value(session, issuer, certificate.serial_number)
            assert serial is not None
            return x509.load_der_x509_certificate(orders.certificate_der(session, serial.id, kind))

    @property
    def root_pem(self) -> Path:
        return self.home / "public" / "issuers" / "root-x1.pem"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def open_ca(
    home: Path,
    *,
    now: datetime = NOW,
    validity_days: int = 90,
    sct_source: SctSource | None = None,
    lint_final: bool = False,
) -> CA:
    config = load_config(home)
    db = Database(database_url(config.database, home))
    stores = KeyStores(config.keys.stores, base_dir=home, environ={})
    clock = FakeClock(now)
    signer = Signer(
        db=db,
        issuers=IssuerResolver(stores, base_url=BASE_URL),
        clock=clock,
        settings=IssuanceSettings(base_url=BASE_URL, validity=timedelta(days=validity_days), lint_final=lint_final),
        actor="test",
        sct_source=sct_source,
    )
    return CA(home=home, db=db, stores=stores, clock=clock, signer=signer)


def new_key(kind: str = "p256") -> object:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind.removeprefix("rsa")))


def csr_for(
    names: Sequence[str],
    *,
    key: object | None = None,
    common_name: str | None = None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    private_key = key or new_key()
    general = [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(private_key, hashes.SHA256()).public_bytes(Encoding.DER)  # type: ignore[arg-type]
