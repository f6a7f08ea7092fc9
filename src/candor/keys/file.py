"""File key backend: one PKCS#8 file per key, encrypted with a passphrase (PBES2, PBKDF2-SHA256, AES-256-CBC).

For private CAs, test PKIs and the embedded default. Private keys exist in clear only in this process's
memory; on disk they are always encrypted, and files are created with mode 0600 and never overwritten.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import PrivateFormat

from candor.errors import CandorError, ErrorKind
from candor.keys.base import GeneratedKey, KeyProtection
from candor.policy.algorithms import CAPrivateKey, KeyAlgorithm, algorithm_of

_LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _check_label(label: str) -> None:
    if not _LABEL.match(label):
        raise CandorError(
            ErrorKind.CONFIG, f"key label {label!r} must be 1-64 of a-z, 0-9, '.', '_', '-' (starting alnum)"
        )


def generate_private_key(algorithm: KeyAlgorithm) -> CAPrivateKey:
    if algorithm.is_rsa:
        return rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)
    return ec.generate_private_key(algorithm.curve)


class FileKeyBackend:
    backend_type: ClassVar[str] = "file"

    def __init__(self, name: str, *, directory: Path, passphrase: str) -> None:
        if len(passphrase) < 12:
            raise CandorError(ErrorKind.CONFIG, f"key store {name!r}: passphrase must be at least 12 characters")
        self._name = name
        self._directory = directory
        self._passphrase = passphrase.encode("utf-8")
        self._loaded: dict[str, CAPrivateKey] = {}

    @property
    def name(self) -> str:
        return self._name

    def _path(self, handle: str) -> Path:
        if "/" in handle or handle.startswith(".") or not handle.endswith(".key"):
            raise CandorError(ErrorKind.KEY, f"key store {self._name!r}: invalid key handle {handle!r}")
        return self._directory / handle

    def generate(self, label: str, algorithm: KeyAlgorithm) -> GeneratedKey:
        _check_label(label)
        handle = f"{label}.key"
        path = self._path(handle)
        private_key = generate_private_key(algorithm)
        encryption = serialization.BestAvailableEncryption(self._passphrase)
        pem = private_key.private_bytes(serialization.Encoding.PEM, PrivateFormat.PKCS8, encryption)
        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CandorError(
                ErrorKind.CONFLICT, f"key store {self._name!r}: a key labelled {label!r} already exists"
            ) from None
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        self._loaded[handle] = private_key
        return GeneratedKey(handle=handle, algorithm=algorithm, public_key=private_key.public_key())

    def load(self, handle: str, algorithm: KeyAlgorithm) -> CAPrivateKey:
        cached = self._loaded.get(handle)
        if cached is None:
            cached = self._read(handle)
            self._loaded[handle] = cached
        actual = algorithm_of(cached.public_key())
        if actual is not algorithm:
            raise CandorError(
                ErrorKind.KEY, f"key {handle!r} in store {self._name!r} is {actual}, expected {algorithm}"
            )
        return cached

    def _read(self, handle: str) -> CAPrivateKey:
        path = self._path(handle)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CandorError(ErrorKind.KEY, f"key store {self._name!r}: key file {path} not found") from None
        except OSError as exc:
            raise CandorError(ErrorKind.KEY, f"key file {path} cannot be read: {exc.strerror}") from None
        if b"ENCRYPTED PRIVATE KEY" not in data:
            raise CandorError(ErrorKind.KEY, f"key file {path} is not an encrypted PKCS#8 key; refusing it")
        try:
            key = serialization.load_pem_private_key(data, password=self._passphrase)
        except (ValueError, TypeError):
            raise CandorError(
                ErrorKind.KEY,
                f"key file {path}: wrong passphrase for key store {self._name!r}, or damaged file",
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise CandorError(ErrorKind.KEY, f"key file {path} holds a {type(key).__name__}, not a CA key")
        return key

    def protection(self, handle: str) -> KeyProtection:
        path = self._path(handle)
        encrypted = path.exists() and b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
        return KeyProtection(
            location=f"file {path} (PKCS#8, PBKDF2-SHA256/AES-256-CBC)",
            extractable=True,
            sensitive=False,
            encrypted_at_rest=encrypted,
        )

    def close(self) -> None:
        self._loaded.clear()
