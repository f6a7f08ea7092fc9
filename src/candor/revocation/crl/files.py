"""Publication as files under the data directory's ``public/`` tree, which ``candor serve`` (or any web server,
object store or CDN) serves: ``crl/{issuer}/{shard}.crl`` and the CCADB JSON array ``crl/{issuer}/ccadb.json``.
Each file is replaced atomically (write, fsync, rename), so a reader sees the old CRL or the new one."""

from __future__ import annotations

import json
from pathlib import Path

from candor.files import write_atomically


def shard_path(public_dir: Path, issuer: str, shard: int) -> Path:
    return public_dir / "crl" / issuer / f"{shard}.crl"


def ccadb_path(public_dir: Path, issuer: str) -> Path:
    return public_dir / "crl" / issuer / "ccadb.json"


def write_ccadb(public_dir: Path, issuer: str, urls: list[str]) -> Path:
    """The "JSON Array of Partitioned CRLs" CCADB asks for (MRSP 6.1.2; CCADB Policy 6.2: exactly the URLs in
    the certificates)."""
    path = ccadb_path(public_dir, issuer)
    data = (json.dumps(urls) + "\n").encode()
    if not path.exists() or path.read_bytes() != data:
        write_atomically(path, data)
    return path
