"""Assembling the ACME front end for ``candor serve``: the signer behind the Finalizer interface, the
validation client as configured, and the HTTPS listener's own certificate from a private issuer."""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import CertificateSigningRequestBuilder, DNSName, IPAddress, Name, SubjectAlternativeName

from candor.acme.app import acme_routes
from candor.acme.eab import MIN_SECRET_CHARS
from candor.acme.nonces import Nonces, nonce_store
from candor.acme.service import AcmeService, AcmeSettings
from candor.audit import AuditLog
from candor.cli.context import Context
from candor.config import resolve_path, resolve_secret
from candor.errors import CandorError, ErrorKind
from candor.issuance import IssuedChain, parse_csr
from candor.lint import kind_for
from candor.ra import operator_order
from candor.ra.limits import Limits
from candor.server import AcmeListener
from candor.signing import lint_in_helper_process
from candor.storage import repositories
from candor.validation import AddressPolicy, ChallengeValidator, DnsResolver, StaticResolver
from candor.validation.addresses import IPAddress as Address
from candor.validation.validator import CaaCheck


class ChainFinalizer(Protocol):
    """The signer as the ACME edge uses it (possibly wrapped, e.g. to send final certificates to CT)."""

    def finalize(self, order_id: int, csr: bytes) -> IssuedChain: ...


def acme_listener(
    context: Context, signer: ChainFinalizer, *, host: str, nonces: Nonces | None = None, serving: bool = True
) -> AcmeListener | None:
    """The ACME listener of this serving process (``candor serve`` or one of its workers), with *nonces* (those
    :func:`shared_nonces` made before the workers forked) or, without, a store of its own. Once its own
    certificate is issued (in this process: ``candor serve`` with workers forks them only after), the signer
    lints in helper processes (:func:`candor.signing.lint_in_helper_process`), so that pkilint's CPU runs beside
    the requests rather than under their interpreter lock. In a process that will serve (not the parent of
    workers, *serving* False), they start at once and build the offered profiles' validators in the background."""
    config = context.config.acme
    if not config.enabled:
        return None
    origin = f"https://{'[' + host + ']' if ':' in host else host}:{config.https_port}"
    validation = config.validation
    dns = _dns_resolver(context)
    validator = ChallengeValidator(
        resolver=_HostsThenDns(StaticResolver(validation.hosts), dns),
        policy=AddressPolicy(allow_loopback=validation.allow_loopback),
        clock=context.clock,
        timeout=validation.timeout_seconds,
        caa=CaaCheck(source=dns, ca_domains=frozenset(d.lower() for d in config.caa_identities)) if dns else None,
        txt_source=dns,
    )
    service = AcmeService(
        db=context.db,
        clock=context.clock,
        settings=AcmeSettings(
            base_url=origin,
            issuer=config.issuer,
            terms_of_service=config.terms_of_service,
            caa_identities=tuple(config.caa_identities),
            limits=_limits(context),
            external_account_required=config.external_account_required,
            eab_secret=_eab_secret(context),
            challenge_types=("http-01", "dns-01", "tls-alpn-01") if dns else ("http-01", "tls-alpn-01"),
        ),
        finalizer=signer,
        validator=validator,
    )
    certfile, keyfile, password = _listener_certificate(context) or _server_certificate(context, signer)
    warm = [kind_for(profile, True) for profile in service.settings.profiles] if serving else []
    # one lint helper per core across the server's workers (more would only compete for the cores)
    helpers = max(1, (os.cpu_count() or 1) // context.config.server.workers)
    lint_in_helper_process(helpers=helpers, warm=warm)
    return AcmeListener(
        routes=acme_routes(service, nonces if nonces is not None else nonce_store(context.db, context.clock)),
        port=config.https_port,
        certfile=certfile,
        keyfile=keyfile,
        keyfile_password=password,
        directory_url=f"{origin}/acme/directory",
    )


def shared_nonces(context: Context) -> Nonces | None:
    """``candor serve``'s start-up, in the parent before any worker forks: on SQLite (one host) the nonces in
    memory that every worker, a replaced one too, shares (:func:`candor.acme.nonces.nonce_store`); a nonce is
    accepted at most once by any of them (RFC 8555 6.5), and none of an earlier run (a new key each start). On
    PostgreSQL None: each worker keeps its nonces in the database, which other nodes share, as before."""
    if not context.config.acme.enabled or context.db.dialect != "sqlite":
        return None
    return nonce_store(context.db, context.clock)


class _HostsThenDns:
    """Addresses for http-01 and tls-alpn-01: the configured hosts table first (a local PKI's test names), then
    DNS, DNSSEC-validated. Without DNS, a name missing from the table has no address."""

    def __init__(self, hosts: StaticResolver, dns: DnsResolver | None) -> None:
        self.hosts, self.dns = hosts, dns

    def addresses(self, name: str) -> list[Address]:
        try:
            return self.hosts.addresses(name)
        except CandorError:
            if self.dns is None:
                raise
        return self.dns.addresses(name)


def _dns_resolver(context: Context) -> DnsResolver | None:
    """The validation DNS client (dnspython, DNSSEC validated from the configured trust anchors). A public
    issuer never runs without one (BR 3.2.2.4, 3.2.2.8) and never with a hosts table (its names must be
    proven in the real DNS)."""
    config = context.config.acme
    servers = []
    for entry in config.validation.nameservers:
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit():
            raise CandorError(ErrorKind.CONFIG, f"acme.validation.nameservers: {entry!r} is not ip:port")
        servers.append((host.strip("[]"), int(port)))
    with context.db.session() as session:
        issuer = repositories.issuer_by_name(session, config.issuer)
        public = issuer is not None and not issuer.private
    if public and config.validation.hosts:
        raise CandorError(ErrorKind.CONFIG, "acme.validation.hosts: a public ACME issuer resolves names only in DNS")
    if not servers:
        if public:
            raise CandorError(ErrorKind.CONFIG, "acme.validation.nameservers: a public ACME issuer must check CAA")
        return None
    try:
        return DnsResolver(
            servers,
            timeout=config.validation.timeout_seconds,
            trust_anchors=config.validation.trust_anchors,
            clock=context.clock,
        )
    except ValueError as exc:
        raise CandorError(ErrorKind.CONFIG, f"acme.validation: {exc}") from None


def _eab_secret(context: Context) -> str | None:
    source = context.config.acme.eab_secret
    if source is None:
        return None
    secret = resolve_secret(source, base_dir=context.data_dir, environ=context.environ)
    if len(secret) < MIN_SECRET_CHARS:
        raise CandorError(ErrorKind.CONFIG, f"acme.eab_secret ({source.describe()}) is shorter than {MIN_SECRET_CHARS}")
    return secret


def _limits(context: Context) -> Limits:
    configured = context.config.acme.limits
    return Limits(
        orders_per_account=configured.orders_per_account_per_3h,
        pending_authorizations_per_account=configured.pending_authorizations_per_account,
        certificates_per_registered_domain=configured.certificates_per_registered_domain_per_week,
        failed_validations_per_name=configured.failed_validations_per_name_per_hour,
        accounts_per_address=configured.accounts_per_address_per_3h,
    )


def _listener_certificate(context: Context) -> tuple[Path, Path, str] | None:
    """The operator's listener certificate and key, when configured; checked to belong together at start-up."""
    config = context.config.acme
    if config.listener_certificate is None or config.listener_key is None or config.listener_key_password is None:
        return None
    certfile = resolve_path(config.listener_certificate, context.data_dir)
    keyfile = resolve_path(config.listener_key, context.data_dir)
    password = resolve_secret(config.listener_key_password, base_dir=context.data_dir, environ=context.environ)
    try:
        chain = x509.load_pem_x509_certificates(certfile.read_bytes())
        key = serialization.load_pem_private_key(keyfile.read_bytes(), password.encode("utf-8"))
    except OSError as exc:
        raise CandorError(ErrorKind.CONFIG, f"acme listener certificate: {exc.filename}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise CandorError(
            ErrorKind.CONFIG, "acme listener certificate: not a PEM chain and an encrypted PEM key with that password"
        ) from None
    if chain[0].public_key().public_bytes(*_SPKI) != key.public_key().public_bytes(*_SPKI):
        raise CandorError(ErrorKind.CONFIG, "acme.listener_key is not the key of acme.listener_certificate")
    return certfile, keyfile, password


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _server_certificate(context: Context, signer: ChainFinalizer) -> tuple[Path, Path, str]:
    """A fresh TLS key and certificate for the ACME listener, issued at start-up by the (private) ACME issuer.
    The key is written encrypted under a password that lives only in this process."""
    config = context.config.acme
    with context.db.session() as session:
        issuer = repositories.issuer_by_name(session, config.issuer)
        if issuer is None or not issuer.private:
            raise CandorError(
                ErrorKind.CONFIG,
                f"acme.issuer {config.issuer!r} must be an existing private issuer to certify the ACME listener itself",
            )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else DNSName(n) for n in config.server_names]
    csr = (
        CertificateSigningRequestBuilder()
        .subject_name(Name([]))
        .add_extension(SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    with context.db.session() as session:
        order = operator_order(
            session,
            audit=AuditLog(context.clock),
            actor=context.actor,
            issuer_name=config.issuer,
            identifiers=parse_csr(csr).identifiers,
            profile="dv",
            account_label=None,
            now=context.clock.now(),
        )
        order_id = order.id
    chain = signer.finalize(order_id, csr)
    directory = context.data_dir / "tls"
    directory.mkdir(mode=0o700, exist_ok=True)
    password = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode("ascii")
    keyfile, certfile = directory / "acme-server.key", directory / "acme-server.pem"
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode("ascii")),
    )
    _write(keyfile, encrypted, 0o600)
    _write(certfile, chain.pem(), 0o644)
    return certfile, keyfile, password


def _write(path: Path, data: bytes, mode: int) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
