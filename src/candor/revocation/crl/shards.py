"""Which CRL shard a serial belongs to, and the URL of each shard.

The shard is a pure function of the serial: ``serial mod shards``, as Boulder's crl-updater takes the serial's
(random) low bytes modulo its shard count. The signer bakes the URL into every precertificate and certificate
it issues (``candor.issuance.signer``: ``{base}/crl/{issuer}/{serial mod crl_shards}.crl``), so a serial's
shard can never move: the count is fixed per issuer (``issuers.crl_shards``, recorded again in
``crl_issuers.shards`` when the first CRL is published). The same URL is the fullName of the CRL's
IssuingDistributionPoint, byte for byte (BR 7.2.2.1, RFC 5280 5.2.5), and the CCADB JSON array lists every one
of them (CCADB Policy 6.2; MRSP 6.1.2).
"""

from __future__ import annotations

from candor.errors import CandorError, ErrorKind

MAX_SHARDS = 4096  # issuers.crl_shards is 1..4096 (candor.storage.repositories.add_issuer)
CRL_KINDS = ("tls", "tsa")  # issuers that publish shard CRLs: TLS issuing CAs and time-stamping CAs


def shard_count(kind: str, crl_shards: int) -> int:
    """The number of CRLs an issuer publishes: ``issuers.crl_shards`` for a TLS issuing CA; one for a time-stamping
    CA (CSBR 4.9.7; a handful of Timestamp certificates, each naming shard 0's URL, ``shard_url(base, name, 0)``)."""
    return 1 if kind == "tsa" else crl_shards


def shard_of(serial: int, shards: int) -> int:
    """The shard of *serial* under an issuer with *shards* shards."""
    _check_count(shards)
    return serial % shards


def shard_url(base_url: str, issuer: str, shard: int) -> str:
    """The shard's CRL URL: the CRLDP of its certificates and the fullName of its IDP (BR 7.1.2.11.2)."""
    return f"{base_url}/crl/{issuer}/{shard}.crl"


def shard_urls(base_url: str, issuer: str, shards: int) -> list[str]:
    """Every shard's URL, in shard order: the CCADB "JSON Array of Partitioned CRLs"."""
    _check_count(shards)
    return [shard_url(base_url, issuer, shard) for shard in range(shards)]


def hex_suffixes(shard: int, shards: int) -> tuple[int, frozenset[str]] | None:
    """When *shards* divides 256**k, a serial's shard depends only on its last k octets: return (2k, the set of
    lowercase hex endings of length 2k that fall in *shard*), so that the database can select a shard's serials
    by the end of ``serial_hex``. None when no k <= 2 works (then the caller filters in Python)."""
    _check_count(shards)
    for octets in (1, 2):
        modulus = 256**octets
        if modulus % shards == 0:
            width = 2 * octets
            return width, frozenset(f"{value:0{width}x}" for value in range(shard, modulus, shards))
    return None


def _check_count(shards: int) -> None:
    if not 1 <= shards <= MAX_SHARDS:
        raise CandorError(ErrorKind.CONFIG, f"a CRL shard count is 1..{MAX_SHARDS}, not {shards}")
