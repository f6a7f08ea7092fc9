"""The commented files ``candor init`` writes into a new data directory."""

from __future__ import annotations

CONFIG_TEMPLATE = """\
# Candor configuration. Read once by the CLI at start-up and validated; a bad value stops start-up with
# one line naming the field. Relative paths are relative to this data directory.

[database]
# SQLite (WAL) by default. For PostgreSQL: "postgresql+psycopg://user@host:5432/dbname"
url = "sqlite:///candor.db"

[server]
host = "127.0.0.1"
port = {port}
# Base of the URLs served here (issuer certificates, CRLs). Must be http:// (BR 7.1.2.11.2).
public_base_url = "{base_url}"
# Worker processes, each serving every listener with its own database connections and key stores; the
# listening sockets are shared. 1 serves from the 'candor serve' process itself; a dedicated host: its cores.
workers = 1
# "auto" binds worker i to core i (in turn), as nginx's worker_cpu_affinity auto, so that each worker's threads
# and lint helpers keep one core's caches: for a dedicated host with one worker per core. "none": the kernel
# places them.
cpu_affinity = "none"

[issuance]
# Put this server's OCSP responder URL ({base_url}/ocsp/<issuer>) in every certificate's AIA (BR 7.1.2.7.7).
ocsp_urls = true
# Every precertificate is linted (pkilint) before it is signed, and every final certificate must correspond to its
# linted precertificate byte for byte, the poison removed and the SCT list added (BR 4.3.1.2, RFC 6962 3.2).
# true: pkilint lints each final certificate as well (one more lint per certificate).
lint_final_certificate = false

# The clock watch (CSBR 6.8, and WS-08e for certificates): nothing is signed while the system clock is more
# than max_offset_seconds off its time sources, or when none has confirmed it for max_sync_age_hours; every
# step of a second or more is audited. `candor clock status` shows what the sources say.
# Production names a UTC(k) source: ["chrony"] (chronyd disciplining this host) or ["ntp"] with
# ntp_servers = ["ntp1.example.net", "ntp2.example.net", "ntp3.example.net"] (asked directly; three or more, so
# that one wrong server is outvoted). ["system"] trusts this host's clock as it is: for a local PKI only, and
# refused when an issuer is publicly trusted.
[clock]
sources = ["system"]
max_offset_seconds = 1.0
max_sync_age_hours = 24
poll_seconds = 16

# Key stores. A ceremony file names a store for every key it creates.
# file: PKCS#8 files encrypted with the passphrase read from a file (first line) or an environment variable.
[keys.stores.file]
backend = "file"
directory = "keys"
passphrase = {{ file = "secrets/key-passphrase" }}

# A PKCS#11 token (an HSM, or SoftHSM2 for tests). Keys are generated on the token, sensitive and
# non-extractable; the PIN comes from a file or an environment variable, never from this file.
# [keys.stores.hsm]
# backend = "pkcs11"
# module = "/usr/lib/softhsm/libsofthsm2.so"
# token_label = "candor-ca"
# pin = {{ env = "CANDOR_HSM_PIN" }}

[acme]
# RFC 8555 over HTTPS, on its own port; the listener's certificate is issued at start-up by this issuer,
# which must be private. Orders are signed by the same issuer.
enabled = true
issuer = "tls-e1"
https_port = {acme_port}
server_names = ["localhost", "127.0.0.1"]
# This CA's names for CAA "issue" records (RFC 8659), published in the directory's meta.
caa_identities = ["candor.test"]
# External account binding (RFC 8555 7.3.4): set a secret (32+ characters, file or environment variable),
# create keys with `candor acme eab create --label NAME`, and optionally require them for new accounts.
# eab_secret = {{ file = "secrets/eab-secret" }}
# external_account_required = false

[acme.validation]
# The validation client never connects to private, loopback or reserved addresses. For a local test PKI
# whose clients answer challenges on this machine, allow loopback explicitly and name the hosts:
# allow_loopback = true
# hosts = {{ "app.example.test" = ["127.0.0.1"] }}
allow_loopback = false
timeout_seconds = 10
# DNS resolvers for CAA, "ip:port". Required when the ACME issuer is publicly trusted; without them a
# private issuer does not check CAA.
nameservers = []

[acme.limits]
orders_per_account_per_3h = 300
pending_authorizations_per_account = 1000
certificates_per_registered_domain_per_week = 50
failed_validations_per_name_per_hour = 5
accounts_per_address_per_3h = 10

# Certificate Transparency (RFC 6962). This data directory runs two logs of different operators (their keys
# come from the ceremony), served at {base_url}/ct/<name>/ct/v1/, with the static-ct-api files under
# public/ct/<name>/. `candor serve` publishes their log list at public/ct/log_list.json.
[ct]
# The logs' own database, apart from the CA's: their writes and the CA's never wait for each other's. Set it
# before a log's first start and keep it: a log moved to an empty database would fork, and is refused.
database = "sqlite:///ct-logs.db"

[[ct.logs]]
name = "log-a"
operator = "Candor Local Log Operator A"
roots = ["public/issuers/root-x1.pem"]
mmd_seconds = 60

[[ct.logs]]
name = "log-b"
operator = "Candor Local Log Operator B"
roots = ["public/issuers/root-x1.pem"]
mmd_seconds = 60

[ct.submit]
# Every precertificate goes to the logs of this list (the browsers' v3 JSON format); the final certificate
# carries their SCTs only when the CT policy is met (2 operators; 3 SCTs past 180 days), else nothing is
# finalised. Point it at Chrome's or Apple's list for a publicly-trusted issuer.
log_list = "public/ct/log_list.json"

# The OCSP responder (RFC 6960, RFC 5019) at {base_url}/ocsp/<issuer>: responses pre-signed by each issuer's
# delegated responder as soon as a certificate is issued or revoked, valid 8 hours to 10 days (BR 4.9.10).
[ocsp]
validity_hours = 72
# One SingleResponse per response, for a SHA-1 CertID (RFC 5019 2.2.1; Go's ocsp.ParseResponse and others
# refuse more). true adds a second one for SHA-256 CertIDs under the same signature.
sha256_cert_ids = false
# Requests with a nonce are answered from the pre-signed store (RFC 5019 2.1.1); "sign" signs them on demand.
nonce = "cache"

# Sharded CRLs (BR 4.9.7): public/crl/<issuer>/<shard>.crl, the URL each certificate names in its CRLDP.
[crl]
validity_days = 7              # nextUpdate - thisUpdate, at most 10
regenerate_hours = 6           # every shard, revoked or not
revocation_delay_seconds = 60  # a shard with a new revocation is republished within this

# The time-stamping authority (RFC 3161, RFC 5816; CA/B Forum CSBR 6.8) at {base_url}/tsa. Tokens are signed
# by TSA units, keys certified by the time-stamping sub-CA ('candor tsa certify', 'candor tsa list'); each
# unit signs for 15 months from its notBefore at most (CSBR 6.3.2), so certify the next one ahead of time.
[tsa]
# TSTInfo.policy of every token: the OID of your TSA policy. This one is under the enterprise number reserved
# for documentation (RFC 5612): replace it before anyone relies on the tokens.
policy = "1.3.6.1.4.1.32473.1.1"
accuracy_ms = 1000     # the bound the clock is held to (ETSI EN 319 421: 1 s or better)
precision_digits = 3   # genTime to the millisecond
issuer = "tsa-ca1"

[logging]
level = "INFO"
"""

# The [clock] source line of CONFIG_TEMPLATE, and what `candor init` writes instead when chronyd answers.
CLOCK_SYSTEM = 'sources = ["system"]'
CLOCK_CHRONY = 'sources = ["chrony"]'

CEREMONY_TEMPLATE = """\
# Candor key ceremony: the whole hierarchy in one file, for review before it runs.
# Run with: candor ceremony --config ceremony.toml
# Algorithms allowed for CA keys: rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384.

[ceremony]
name = "Candor embedded default hierarchy"
# AIA caIssuers and CRL URLs are built from this base (http only: BR 7.1.2.10.3, 7.1.2.11.2).
base_url = "{base_url}"
# true: this hierarchy is private or for tests, and its URLs may use loopback or internal names.
# A publicly-trusted hierarchy sets false, and pkilint then refuses any internal name.
private = true

[root]                       # BR 7.1.2.1
name = "root-x1"
key = {{ store = "file", algorithm = "ecdsa-p384" }}
validity_days = 9125         # 2922..9132 days
crl_validity_days = 365      # the root's CA-scope CRL, at most 12 months
subject = {{ country = "XX", organization = "Candor Local PKI", common_name = "Candor Local Root X1" }}

[[tls_issuers]]              # BR 7.1.2.6 TLS subordinate CA: serverAuth, pathLen 0
name = "tls-e1"
key = {{ store = "file", algorithm = "ecdsa-p256" }}
validity_days = 1826
policy = "dv"
subject = {{ country = "XX", organization = "Candor Local PKI", common_name = "Candor Local TLS E1" }}
# OCSP responses signed by a delegated responder (BR 7.1.2.8), short-lived and re-issued by this CA.
ocsp = {{ mode = "delegated", key = {{ store = "file", algorithm = "ecdsa-p256" }}, validity_days = 30 }}

[[tls_issuers]]
name = "tls-r1"
key = {{ store = "file", algorithm = "rsa-3072" }}
validity_days = 1826
policy = "dv"
subject = {{ country = "XX", organization = "Candor Local PKI", common_name = "Candor Local TLS R1" }}
ocsp = {{ mode = "delegated", key = {{ store = "file", algorithm = "rsa-2048" }}, validity_days = 30 }}

[timestamping]               # a separate sub-CA for RFC 3161 time-stamping (CSBR)
name = "tsa-ca1"
key = {{ store = "file", algorithm = "ecdsa-p384" }}
validity_days = 3652
subject = {{ country = "XX", organization = "Candor Local PKI", common_name = "Candor Local TSA CA1" }}

[[ct_logs]]                  # RFC 6962 log keys, ECDSA P-256, one operator each
name = "log-a"
operator = "Candor Local Log Operator A"
key = {{ store = "file", algorithm = "ecdsa-p256" }}

[[ct_logs]]
name = "log-b"
operator = "Candor Local Log Operator B"
key = {{ store = "file", algorithm = "ecdsa-p256" }}
"""
