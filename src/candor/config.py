"""Typed configuration: one TOML file in the data directory, validated at start-up.

Only the CLI reads the file (:func:`load_config`); everything else is handed the validated model. A bad value
is reported as one line naming the field and what is allowed. Secrets (key passphrases, HSM PINs) are never
in the file: it names the file or environment variable they come from, and :func:`resolve_secret` reads
them at the edge, given the environment explicitly.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from candor.ct.log.settings import CtConfig
from candor.dburl import check_database_url, resolve_database_url
from candor.errors import CandorError, ErrorKind
from candor.revocation.ocsp.settings import OcspSettings
from candor.timekeeping.settings import ClockSettings
from candor.tsa.settings import TsaSettings

CONFIG_FILE_NAME = "candor.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretSource(_Strict):
    """Where a secret comes from: exactly one of a file (first line) or an environment variable."""

    file: Path | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretSource:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of 'file' or 'env'")
        return self

    def describe(self) -> str:
        return f"file {self.file}" if self.file is not None else f"environment variable {self.env}"


class FileKeyStoreConfig(_Strict):
    """Keys as PKCS#8 files encrypted with a passphrase (BR 6.2.7 for non-HSM test and private CAs)."""

    backend: Literal["file"]
    directory: Path = Path("keys")
    passphrase: SecretSource


class Pkcs11KeyStoreConfig(_Strict):
    """Keys on one PKCS#11 token, generated there as sensitive and non-extractable."""

    backend: Literal["pkcs11"]
    module: Path
    token_label: str = Field(min_length=1, max_length=32)
    pin: SecretSource


KeyStoreConfig = Annotated[FileKeyStoreConfig | Pkcs11KeyStoreConfig, Field(discriminator="backend")]


class KeysConfig(_Strict):
    stores: dict[str, KeyStoreConfig] = Field(min_length=1)

    @field_validator("stores")
    @classmethod
    def _names(cls, stores: dict[str, Any]) -> dict[str, Any]:
        for name in stores:
            if not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"store name {name!r} must be letters, digits, '-' or '_'")
        return stores


class DatabaseConfig(_Strict):
    url: str = "sqlite:///candor.db"

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str) -> str:
        return check_database_url(url)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # The base of every URL baked into certificates (AIA caIssuers, CRLDP). BR 7.1.2.11.2 and 7.1.2.10.3:
    # these are http URLs, so that relying parties can fetch them without a TLS chain to validate first.
    public_base_url: str = "http://localhost:8080"
    # Worker processes serving both listeners (each with its own database connections, key stores and
    # signer). 1 serves from the `candor serve` process itself; on a dedicated host, the number of cores.
    workers: int = Field(default=1, ge=1, le=64)
    # "auto": worker i is bound to the i-th core this process may run on (in turn when there are more workers than
    # cores), as nginx's ``worker_cpu_affinity auto``; each worker's threads and lint helpers then keep one core's
    # caches (docs/performance.md, eighth session). For a dedicated host with one worker per core. "none": the
    # kernel places them. No effect with one worker, which keeps every core for itself and its lint helpers.
    cpu_affinity: Literal["none", "auto"] = "none"

    @field_validator("cpu_affinity")
    @classmethod
    def _affinity(cls, value: str) -> str:
        if value == "auto" and not hasattr(os, "sched_setaffinity"):
            raise ValueError('"auto" needs sched_setaffinity (Linux); use "none" on this platform')
        return value

    @field_validator("public_base_url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith("http://") or url.endswith("/"):
            raise ValueError("must be an http:// URL without a trailing slash (BR 7.1.2.11.2)")
        return url


class IssuanceConfig(_Strict):
    """How the signer fills in what the profiles leave to the operator."""

    # notBefore = signing time minus this (clock skew of relying parties). BR 7.1.2.7 allows 48 hours;
    # Candor allows at most one hour and never dates forward.
    backdate_seconds: int = Field(default=0, ge=0, le=3600)
    # Validity of subscriber certificates, capped by the dated BR maximum in force (BR 6.3.2).
    validity_days: int = Field(default=90, ge=1, le=398)
    # Put the OCSP responder URL in AIA (only once an OCSP responder serves these issuers).
    ocsp_urls: bool = False
    # Lint the final certificate with pkilint too, as well as the precertificate. Off, the final certificate is
    # admitted by the technical control BR 4.3.1.2 accepts instead: its TBS corresponds byte for byte to the
    # linted precertificate's, the poison removed and the SCT list added (RFC 6962 3.2), which is always checked.
    lint_final_certificate: bool = False


IANA_ROOT_ANCHORS = (
    ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
    ". IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
)


class AcmeValidationConfig(_Strict):
    # Test and local-PKI allowance: lets the validation client reach 127.0.0.0/8 and ::1. Off by default;
    # private, link-local and other reserved ranges stay unreachable whatever this says.
    allow_loopback: bool = False
    # A fixed name -> addresses table for http-01/tls-alpn-01 used instead of DNS A/AAAA lookups (local PKIs
    # and tests); names not in it are resolved through `nameservers`. A public issuer must leave it empty.
    hosts: dict[str, list[str]] = Field(default_factory=dict)
    # DNS servers ("ip:port") for every validation lookup: A/AAAA, dns-01 TXT, CAA (RFC 8659). A
    # publicly-trusted ACME issuer refuses to start without. Every answer is DNSSEC-validated by Candor
    # itself from `trust_anchors` (BR 3.2.2.4, 3.2.2.8.1); there is no setting that turns validation off.
    nameservers: list[str] = Field(default_factory=list)
    # DS records of the DNSSEC trust anchors, in zone-file presentation form. The default is the IANA root
    # (KSK-2017 and KSK-2024, https://data.iana.org/root-anchors/root-anchors.xml); a private DNS tree
    # (tests, an enterprise namespace) names its own.
    trust_anchors: list[str] = Field(default_factory=lambda: list(IANA_ROOT_ANCHORS), min_length=1)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)


class LimitsConfig(_Strict):
    """Rate limits (counted per window from the stored records; a refusal carries Retry-After)."""

    orders_per_account_per_3h: int = Field(default=300, ge=1)
    pending_authorizations_per_account: int = Field(default=1000, ge=1)
    certificates_per_registered_domain_per_week: int = Field(default=50, ge=1)
    failed_validations_per_name_per_hour: int = Field(default=5, ge=1)
    accounts_per_address_per_3h: int = Field(default=10, ge=1)


class AcmeConfig(_Strict):
    enabled: bool = True
    issuer: str = "tls-e1"  # the TLS issuing CA that signs ACME orders
    https_port: int = Field(default=8443, ge=1, le=65535)
    # Names on the ACME server's own TLS certificate, issued at start-up by a private issuer...
    server_names: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1"])
    # ...or the operator's own listener certificate (PEM chain) and its encrypted PKCS#8 key, as a public ACME
    # server needs (its clients trust the Web PKI, not Candor's root). All three or none.
    listener_certificate: Path | None = None
    listener_key: Path | None = None
    listener_key_password: SecretSource | None = None
    terms_of_service: str | None = None
    # This CA's issuer domain names for CAA "issue"/"issuewild" (RFC 8659 4.2), published in the directory.
    caa_identities: list[str] = Field(default_factory=lambda: ["candor.test"])
    validation: AcmeValidationConfig = AcmeValidationConfig()
    limits: LimitsConfig = LimitsConfig()
    # External account binding (RFC 8555 7.3.4): the secret from which each EAB key's MAC key is derived
    # (`candor acme eab create` prints them), and whether every new account must bind to one.
    eab_secret: SecretSource | None = None
    external_account_required: bool = False

    @model_validator(mode="after")
    def _eab(self) -> AcmeConfig:
        if self.external_account_required and self.eab_secret is None:
            raise ValueError("external_account_required needs eab_secret")
        listener = (self.listener_certificate, self.listener_key, self.listener_key_password)
        if any(part is None for part in listener) and any(part is not None for part in listener):
            raise ValueError("listener_certificate, listener_key and listener_key_password go together")
        return self


class CrlConfig(_Strict):
    """Sharded CRLs (BR 4.9.7, 7.2): how long each is valid, and how soon changes are published."""

    validity_days: int = Field(default=7, ge=1, le=10)  # nextUpdate - thisUpdate; BR 4.9.7: at most 10 days
    regenerate_hours: int = Field(default=6, ge=1, le=72)  # every shard, revoked or not
    revocation_delay_seconds: int = Field(default=60, ge=1, le=3600)  # a shard with a new revocation, at most


class LoggingConfig(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class CandorConfig(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    server: ServerConfig = ServerConfig()
    keys: KeysConfig
    issuance: IssuanceConfig = IssuanceConfig()
    acme: AcmeConfig = AcmeConfig()
    logging: LoggingConfig = LoggingConfig()
    ct: CtConfig = CtConfig()  # [[ct.logs]]: the CT logs this Candor runs (candor.ct.log.settings)
    crl: CrlConfig = CrlConfig()
    ocsp: OcspSettings = OcspSettings()  # [ocsp]: the pre-signed responder (candor.revocation.ocsp.settings)
    tsa: TsaSettings | None = None  # [tsa]: the time-stamping authority (candor.tsa.settings); absent: no TSA
    clock: ClockSettings = ClockSettings()  # [clock]: the clock watch's time sources (candor.timekeeping)

    @model_validator(mode="after")
    def _tsa_accuracy(self) -> CandorConfig:
        # RFC 3161 2.4.2: a token's accuracy is a promise, and the clock watch keeps only max_offset_seconds.
        if self.tsa is not None and self.tsa.accuracy_ms < self.clock.max_offset_seconds * 1000:
            raise ValueError("tsa.accuracy_ms is finer than clock.max_offset_seconds: tokens would overstate it")
        return self


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line: the first offending field and what is allowed."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-after"))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "literal_error" or first["type"] == "union_tag_invalid":
        expected = first.get("ctx", {}).get("expected") or first.get("ctx", {}).get("expected_tags")
        message = f"must be one of {expected}" if expected else message
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {where or '(top level)'}: {message}{suffix}"


def parse_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise CandorError(ErrorKind.CONFIG, f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise CandorError(ErrorKind.CONFIG, f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise CandorError(ErrorKind.CONFIG, f"{path}: cannot be read: {exc.strerror}") from None


def load_config(data_dir: Path) -> CandorConfig:
    path = data_dir / CONFIG_FILE_NAME
    raw = parse_toml(path)
    try:
        return CandorConfig.model_validate(raw)
    except ValidationError as exc:
        raise CandorError(ErrorKind.CONFIG, format_validation_error(exc, str(path))) from None


def resolve_secret(source: SecretSource, *, base_dir: Path, environ: Mapping[str, str]) -> str:
    """Read a secret at the edge. The message on failure names the source, never the value."""
    if source.env is not None:
        value = environ.get(source.env)
        if not value:
            raise CandorError(ErrorKind.CONFIG, f"environment variable {source.env} is not set or empty")
        return value
    assert source.file is not None
    path = source.file if source.file.is_absolute() else base_dir / source.file
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CandorError(ErrorKind.CONFIG, f"secret file {path} cannot be read: {exc.strerror}") from None
    if not lines or not lines[0]:
        raise CandorError(ErrorKind.CONFIG, f"secret file {path} is empty")
    return lines[0]


def resolve_path(path: Path, base_dir: Path) -> Path:
    return path if path.is_absolute() else base_dir / path


def database_url(config: DatabaseConfig, base_dir: Path) -> str:
    """The SQLAlchemy URL, with a relative SQLite path taken relative to the data directory."""
    return resolve_database_url(config.url, base_dir)
