"""Helpers for the TSA tests: a data directory with the default hierarchy, a [tsa] section and a unit; the TSA of
one serving process built as ``candor serve`` builds it (with a clock and a clock watch the test controls);
TimeStampReq builders (DER written here, so that malformed ones can be made too) and a TimeStampResp reader."""

from __future__ import annotations

import http.client
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from pyasn1.codec.der import decoder
from pyasn1_alt_modules import rfc3161

from candor.cli.context import Context
from candor.cli.tsa_edge import Tsa, open_tsa, tsa_routes
from candor.clock import Clock, SystemClock
from candor.config import database_url, load_config
from candor.keys import KeyStores
from candor.profiles.der import SEQUENCE, encode
from candor.storage import Database
from candor.timekeeping import ClockStatus
from candor.tsa.asn1 import encode_oid
from support import run_cli

sys.path.insert(0, str(Path(__file__).parent.parent / "issuance"))
sys.path.insert(0, str(Path(__file__).parent.parent / "ocsp"))

from issuing import BASE_URL, build_home
from ocsp_server import serving

POLICY = "1.3.6.1.4.1.32473.1.1"
TSA_SECTION = f'\n[tsa]\npolicy = "{POLICY}"\naccuracy_ms = 1500\nprecision_digits = 6\n'
QUERY = "application/timestamp-query"
HASH_OIDS = {
    "sha1": "1.3.14.3.2.26",
    "md5": "1.2.840.113549.2.5",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}
FAILURE_BITS = {
    "badAlg": 0,
    "badRequest": 2,
    "badDataFormat": 5,
    "timeNotAvailable": 14,
    "unacceptedPolicy": 15,
    "unacceptedExtension": 16,
    "systemFailure": 25,
}

__all__ = ["BASE_URL", "serving"]


def tsa_home(base: Path, *, algorithm: str = "ecdsa-p256", database: str = "sqlite:///candor.db") -> Path:
    """The default hierarchy (the key ceremony), a [tsa] section and one unit of *algorithm*."""
    home = build_home(base, database=database)
    with (home / "candor.toml").open("a") as config:
        config.write(TSA_SECTION)
    result = run_cli("--data-dir", home, "tsa", "certify", "--key-type", algorithm)
    assert result.code == 0, result.err
    return home


class SwitchableWatch:
    """A :class:`candor.timekeeping.ClockWatch` whose verdict the test sets."""

    def __init__(self) -> None:
        self.verdict = ClockStatus(trustworthy=True)

    def status(self) -> ClockStatus:
        return self.verdict

    def distrust(self, reason: str = "offset 2.5 s over the 1 s bound") -> None:
        self.verdict = ClockStatus(trustworthy=False, reason=reason)

    def trust(self) -> None:
        self.verdict = ClockStatus(trustworthy=True)


@dataclass
class Harness:
    context: Context
    stores: KeyStores
    watch: SwitchableWatch
    tsa: Tsa

    @property
    def db(self) -> Database:
        return self.context.db

    @property
    def root(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.context.public_dir / "issuers" / "root-x1.pem").read_bytes())

    @property
    def tsa_ca(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.context.public_dir / "issuers" / "tsa-ca1.pem").read_bytes())

    def unit_pem(self, name: str = "tsa-ca1-unit-1") -> Path:
        return self.context.public_dir / "tsa" / f"{name}.pem"

    async def respond(self, body: bytes) -> bytes:
        return await self.tsa.app.service.respond(body)


@contextmanager
def harness(
    home: Path, *, clock: Clock | None = None, primary: bool = True, environ: dict[str, str] | None = None
) -> Iterator[Harness]:
    """The TSA of one serving process of *home*, as ``candor serve`` opens it."""
    config = load_config(home)
    db = Database(database_url(config.database, home))
    context = Context(data_dir=home, config=config, db=db, clock=clock or SystemClock(), environ=environ or {})
    stores = KeyStores(config.keys.stores, base_dir=home, environ=environ or {})
    watch = SwitchableWatch()
    try:
        tsa = open_tsa(context, stores, watch, primary=primary)
        assert tsa is not None
        try:
            yield Harness(context, stores, watch, tsa)
        finally:
            tsa.close()
    finally:
        stores.close()
        db.dispose()


@contextmanager
def served(h: Harness) -> Iterator[str]:
    """The harness's TSA over real HTTP (uvicorn, httptools) on a loopback port, with the unit-certificate route."""
    from starlette.applications import Starlette

    app = Starlette(routes=tsa_routes(h.context, h.tsa))
    with serving(app, quick=False) as base:  # type: ignore[arg-type]  (not an OcspApp: uvicorn's own protocol)
        yield f"{base}/tsa"


def post(
    url: str, body: bytes, *, content_type: str = QUERY, method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request(method, parts.path, body=body if method == "POST" else None, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


# --- TimeStampReq (RFC 3161 2.4.1), written by hand -------------------------------------------------------


def integer(value: int) -> bytes:
    length = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return encode(0x02, value.to_bytes(length, "big", signed=True))


def message_imprint(digest: bytes, algorithm: str = "sha256", *, null_parameters: bool = True) -> bytes:
    identifier = encode(
        SEQUENCE, encode_oid(HASH_OIDS.get(algorithm, algorithm)) + (b"\x05\x00" if null_parameters else b"")
    )
    return encode(SEQUENCE, identifier + encode(0x04, digest))


def sha256(data: bytes) -> bytes:
    hasher = hashes.Hash(hashes.SHA256())
    hasher.update(data)
    return hasher.finalize()


def request(
    data: bytes = b"hello, time-stamping authority\n",
    *,
    digest: bytes | None = None,
    algorithm: str = "sha256",
    nonce: int | None = 0x1234_5678_9ABC_DEF0,
    cert_req: bool = True,
    policy: str | None = None,
    extensions: Sequence[tuple[str, bool]] = (),
    version: int = 1,
) -> bytes:
    """A DER TimeStampReq over *data* (or *digest*): an imprint of *algorithm*, the given optional fields, and
    *extensions* as (OID, critical) pairs."""
    imprint = message_imprint(digest if digest is not None else sha256(data), algorithm)
    body = integer(version) + imprint
    if policy is not None:
        body += encode_oid(policy)
    if nonce is not None:
        body += integer(nonce)
    if cert_req:
        body += b"\x01\x01\xff"
    if extensions:
        listed = b"".join(
            encode(SEQUENCE, encode_oid(oid) + (b"\x01\x01\xff" if critical else b"") + encode(0x04, b"\x05\x00"))
            for oid, critical in extensions
        )
        body += encode(0xA0, listed)
    return encode(SEQUENCE, body)


@dataclass(frozen=True)
class Reply:
    status: int
    failures: frozenset[str]
    text: str
    token: bytes | None
    der: bytes


def read_reply(der: bytes) -> Reply:
    """A TimeStampResp read by pyasn1 (an independent decoder), with the failInfo bits by RFC 3161 name."""
    from pyasn1.codec.der import encoder

    response, rest = decoder.decode(der, asn1Spec=rfc3161.TimeStampResp())
    assert rest == b""
    status = response["status"]
    bits = status["failInfo"]
    failures = frozenset(name for name, bit in FAILURE_BITS.items() if bits.isValue and len(bits) > bit and bits[bit])
    text = "; ".join(str(s) for s in status["statusString"]) if status["statusString"].isValue else ""
    token = encoder.encode(response["timeStampToken"]) if response["timeStampToken"].isValue else None
    return Reply(int(status["status"]), failures, text, token, der)


def tst_info(token: bytes) -> object:
    """The TSTInfo inside a token, decoded by pyasn1."""
    from pyasn1_alt_modules import rfc5652

    info, _ = decoder.decode(token, asn1Spec=rfc5652.ContentInfo())
    signed, _ = decoder.decode(info["content"], asn1Spec=rfc5652.SignedData())
    tst, _ = decoder.decode(signed["encapContentInfo"]["eContent"], asn1Spec=rfc3161.TSTInfo())
    return tst


def token_certificates(token: bytes) -> list[x509.Certificate]:
    from pyasn1.codec.der import encoder
    from pyasn1_alt_modules import rfc5652

    info, _ = decoder.decode(token, asn1Spec=rfc5652.ContentInfo())
    signed, _ = decoder.decode(info["content"], asn1Spec=rfc5652.SignedData())
    if not signed["certificates"].isValue:
        return []
    return [x509.load_der_x509_certificate(encoder.encode(c["certificate"])) for c in signed["certificates"]]


def forge_unit(home: Path, *, name: str, eku: Sequence[x509.ObjectIdentifier], eku_critical: bool) -> None:
    """Record a unit whose certificate the time-stamping sub-CA signed as Candor's profile would, but with the
    extKeyUsage *eku* (as an operator importing a certificate made elsewhere might): a test of the checks the
    TSA makes before it signs with a unit."""
    import dataclasses
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives.serialization import PublicFormat

    from candor.keys import KeyAlgorithm
    from candor.profiles import IssuerInfo, timestamp_certificate, to_builder
    from candor.profiles.template import ext
    from candor.profiles.tsa import usable_until
    from candor.storage import repositories
    from candor.storage.models_tsa import TsaUnit

    config = load_config(home)
    db = Database(database_url(config.database, home))
    stores = KeyStores(config.keys.stores, base_dir=home, environ={})
    try:
        with db.session() as session:
            issuer = repositories.issuer_by_name(session, "tsa-ca1")
            assert issuer is not None
            ca_key = stores.get(issuer.key.store).load(issuer.key.handle, KeyAlgorithm(issuer.key.algorithm))
            ca = x509.load_der_x509_certificate(issuer.certificate_der)
            generated = stores.get("file").generate(name, KeyAlgorithm.ECDSA_P256)
            now = datetime.now(UTC).replace(microsecond=0)
            info = IssuerInfo(
                name=ca.subject, public_key=ca_key.public_key(), not_after=ca.not_valid_after_utc,
                certificate_url=f"{BASE_URL}/issuers/tsa-ca1.der", crl_url=f"{BASE_URL}/crl/tsa-ca1/0.crl",
            )  # fmt: skip
            template = timestamp_certificate(
                subject=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]),
                public_key=generated.public_key, serial=x509.random_serial_number(), not_before=now,
                not_after=now + timedelta(days=3650), issuer=info,
            )  # fmt: skip
            forged = ext(x509.ExtendedKeyUsage(list(eku)), critical=eku_critical)
            extensions = tuple(forged if e.oid == forged.oid else e for e in template.extensions)
            certificate = to_builder(dataclasses.replace(template, extensions=extensions)).sign(ca_key, hashes.SHA384())
            spki = generated.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            key = repositories.add_key(
                session, label=name, store="file", backend="file", algorithm="ecdsa-p256", handle=generated.handle,
                public_key_der=spki, purpose="tsa-unit", created_at=now,
            )  # fmt: skip
            serial = repositories.reserve_serial(session, issuer=issuer, serial=template.serial, created_at=now)
            stored = repositories.add_certificate(
                session, serial_record=serial, kind="certificate", der=certificate.public_bytes(Encoding.DER),
                created_at=now,
            )  # fmt: skip
            start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
            session.add(
                TsaUnit(
                    name=name, issuer_id=issuer.id, key_id=key.id, certificate_id=stored.id, not_before=start,
                    signs_from=start, not_after=end, usable_until=usable_until(start, end), status="active",
                    created_at=now,
                )
            )  # fmt: skip
    finally:
        stores.close()
        db.dispose()
