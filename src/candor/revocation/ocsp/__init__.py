"""The OCSP responder (RFC 6960, RFC 5019): pre-signed responses, kept in the database, in memory and in
Redis, served over HTTP GET and POST.

This package's root holds what the internet-facing side needs and never loads a key store (DESIGN.md trust
boundaries); signing lives in :mod:`candor.revocation.ocsp.presign`, which only the signer side imports.
"""
