"""CA keys behind one interface: encrypted files or PKCS#11 tokens, chosen by configuration.

Only the signer and the ceremony import this package; internet-facing roles never do.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from candor.config import (
    FileKeyStoreConfig,
    KeyStoreConfig,
    Pkcs11KeyStoreConfig,
    resolve_path,
    resolve_secret,
)
from candor.keys.base import GeneratedKey, KeyBackend, KeyProtection
from candor.keys.check import check_key
from candor.keys.file import FileKeyBackend
from candor.policy.algorithms import CAPrivateKey, CAPublicKey, KeyAlgorithm, algorithm_of, parse_key_algorithm

__all__ = [
    "CAPrivateKey",
    "CAPublicKey",
    "FileKeyBackend",
    "GeneratedKey",
    "KeyAlgorithm",
    "KeyBackend",
    "KeyProtection",
    "KeyStores",
    "algorithm_of",
    "check_key",
    "open_key_store",
    "parse_key_algorithm",
]


def open_key_store(name: str, config: KeyStoreConfig, *, base_dir: Path, environ: Mapping[str, str]) -> KeyBackend:
    """Open one configured store, reading its passphrase or PIN from where the config says."""
    if isinstance(config, FileKeyStoreConfig):
        passphrase = resolve_secret(config.passphrase, base_dir=base_dir, environ=environ)
        return FileKeyBackend(name, directory=resolve_path(config.directory, base_dir), passphrase=passphrase)
    assert isinstance(config, Pkcs11KeyStoreConfig)
    from candor.keys.pkcs11 import Pkcs11KeyBackend

    pin = resolve_secret(config.pin, base_dir=base_dir, environ=environ)
    return Pkcs11KeyBackend(name, module=resolve_path(config.module, base_dir), token_label=config.token_label, pin=pin)


class KeyStores:
    """The configured stores, opened on first use and closed together."""

    def __init__(self, configs: Mapping[str, KeyStoreConfig], *, base_dir: Path, environ: Mapping[str, str]) -> None:
        self._configs = dict(configs)
        self._base_dir = base_dir
        self._environ = environ
        self._open: dict[str, KeyBackend] = {}

    def names(self) -> list[str]:
        return sorted(self._configs)

    def get(self, name: str) -> KeyBackend:
        store = self._open.get(name)
        if store is None:
            config = self._configs.get(name)
            if config is None:
                from candor.errors import CandorError, ErrorKind

                raise CandorError(
                    ErrorKind.CONFIG,
                    f"key store {name!r} is not configured (configured: {', '.join(self.names()) or 'none'})",
                )
            store = open_key_store(name, config, base_dir=self._base_dir, environ=self._environ)
            self._open[name] = store
        return store

    def close(self) -> None:
        for store in self._open.values():
            store.close()
        self._open.clear()
