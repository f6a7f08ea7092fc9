"""PKCS#11 key backend: CA keys generated on a token as sensitive and non-extractable, used in place.

One backend is one token, found by label and logged in as the user once. PKCS#11 login state belongs to the
process, not to a session: a second C_Login on the same token fails, and C_Logout on any session logs all of
them out. So every backend of this process on the same (module, token) shares one :class:`TokenSession`,
counted by reference; the last :meth:`Pkcs11KeyBackend.close` closes it. A backend that presents a different
PIN while the token is already logged in is refused as if the token had rejected it.

Handles are the CKA_ID of the key pair in lowercase hex (16 random bytes, set on both halves).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from pathlib import Path
from typing import Any, ClassVar

import pkcs11
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
from pkcs11.exceptions import MultipleTokensReturned, NoSuchToken, PKCS11Error

from candor.config import Pkcs11KeyStoreConfig
from candor.errors import CandorError, ErrorKind
from candor.keys.base import GeneratedKey, KeyProtection
from candor.keys.pkcs11_signer import (
    Pkcs11ECPrivateKey,
    Pkcs11RSAPrivateKey,
    TokenSession,
    ec_params_for,
    public_key_from_token,
    translate,
)
from candor.policy.algorithms import CAPrivateKey, KeyAlgorithm, algorithm_of

_LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HANDLE = re.compile(r"^[0-9a-f]{2,128}$")


class _Shared:
    """A TokenSession with its reference count and a keyed digest of the PIN that opened it."""

    def __init__(self, session: TokenSession, pin: str) -> None:
        self.token = session
        self.refs = 0
        self._pin_key = secrets.token_bytes(32)
        self._pin_mac = self._mac(pin)

    def _mac(self, pin: str) -> bytes:
        return hmac.new(self._pin_key, pin.encode("utf-8"), hashlib.sha256).digest()

    def pin_matches(self, pin: str) -> bool:
        return hmac.compare_digest(self._mac(pin), self._pin_mac)


_SESSIONS: dict[tuple[str, str], _Shared] = {}
_SESSIONS_LOCK = threading.Lock()


def _load_module(module: Path) -> Any:
    if not module.is_file():
        raise CandorError(ErrorKind.KEY, f"PKCS#11 module {module}: no such file")
    try:
        return pkcs11.lib(str(module.resolve()))
    except PKCS11Error as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if detail.startswith("OS exception while loading"):
            detail = detail.rsplit(": ", 1)[-1]
        raise CandorError(ErrorKind.KEY, f"PKCS#11 module {module} cannot be loaded: {detail}") from None


def _open_session(module: Path, token_label: str, pin: str) -> Any:
    lib = _load_module(module)
    try:
        token = lib.get_token(token_label=token_label)
    except NoSuchToken:
        raise CandorError(ErrorKind.KEY, f"PKCS#11 token {token_label!r} not found in module {module}") from None
    except MultipleTokensReturned:
        raise CandorError(
            ErrorKind.KEY, f"PKCS#11 token label {token_label!r} is ambiguous in module {module}"
        ) from None
    except PKCS11Error as exc:
        raise translate(exc, token_label, "listing tokens") from None
    try:
        return token.open(rw=True, user_pin=pin)
    except PKCS11Error as exc:
        raise translate(exc, token_label, "login") from None


def _acquire(module: Path, token_label: str, pin: str) -> _Shared:
    key = (str(module.resolve()), token_label)
    with _SESSIONS_LOCK:
        shared = _SESSIONS.get(key)
        if shared is not None and shared.token.closed:
            shared = None
        if shared is None:
            session = _open_session(module, token_label, pin)
            shared = _Shared(TokenSession(session, token_label, str(module)), pin)
            _SESSIONS[key] = shared
        elif not shared.pin_matches(pin):
            raise shared.token.error("PIN rejected")
        shared.refs += 1
        return shared


def _release(shared: _Shared) -> None:
    with _SESSIONS_LOCK:
        shared.refs -= 1
        if shared.refs > 0:
            return
        for key, value in list(_SESSIONS.items()):
            if value is shared:
                del _SESSIONS[key]
    shared.token.close()


def _parse_handle(handle: str) -> bytes:
    if not _HANDLE.match(handle) or len(handle) % 2:
        raise CandorError(ErrorKind.KEY, f"{handle!r} is not a PKCS#11 key handle (a CKA_ID in lowercase hex)")
    return bytes.fromhex(handle)


def _find(session: Any, object_class: ObjectClass, key_id: bytes) -> list[Any]:
    return list(session.get_objects({Attribute.CLASS: object_class, Attribute.ID: key_id}))


class Pkcs11KeyBackend:
    backend_type: ClassVar[str] = "pkcs11"

    def __init__(self, name: str, *, module: Path, token_label: str, pin: str) -> None:
        self._name = name
        self._module = module
        self._token_label = token_label
        self._shared: _Shared | None = _acquire(module, token_label, pin)

    @classmethod
    def from_config(cls, name: str, config: Pkcs11KeyStoreConfig, pin: str) -> Pkcs11KeyBackend:
        return cls(name, module=config.module, token_label=config.token_label, pin=pin)

    @property
    def name(self) -> str:
        return self._name

    @property
    def location(self) -> str:
        return f"PKCS#11 token {self._token_label!r} ({self._module})"

    def _token(self) -> TokenSession:
        if self._shared is None:
            raise CandorError(ErrorKind.KEY, f"key store {self._name!r} is closed")
        return self._shared.token

    def generate(self, label: str, algorithm: KeyAlgorithm) -> GeneratedKey:
        if not _LABEL.match(label):
            raise CandorError(
                ErrorKind.CONFIG,
                f"key label {label!r} must be 1-64 of a-z, 0-9, '.', '_', '-' (starting alnum)",
            )
        token = self._token()
        key_id = secrets.token_bytes(16)
        common = {Attribute.TOKEN: True, Attribute.LABEL: label, Attribute.ID: key_id}
        public_template: dict[Attribute, Any] = {
            **common,
            Attribute.PRIVATE: False,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.WRAP: False,
        }
        private_template: dict[Attribute, Any] = {
            **common,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        if algorithm.is_rsa:
            key_type, key_length = KeyType.RSA, algorithm.rsa_bits
            public_template[Attribute.PUBLIC_EXPONENT] = b"\x01\x00\x01"
        else:
            key_type, key_length = KeyType.EC, None
            public_template[Attribute.EC_PARAMS] = ec_params_for(algorithm.curve)

        def run(session: Any) -> tuple[Any, Any]:
            if list(session.get_objects({Attribute.LABEL: label})):
                raise CandorError(
                    ErrorKind.CONFLICT,
                    f"key store {self._name!r}: a key labelled {label!r} already exists on "
                    f"PKCS#11 token {self._token_label!r}",
                )
            return session.generate_keypair(  # type: ignore[no-any-return]
                key_type,
                key_length,
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template=public_template,
                private_template=private_template,
            )

        public, private = token.call(f"generating a {algorithm.value} key", run)
        try:
            public_key = token.call("reading the public key", lambda _: public_key_from_token(private, public))
        except ValueError as exc:
            raise token.error(f"new key {label!r} has an unusable public key: {exc}") from None
        return GeneratedKey(handle=key_id.hex(), algorithm=algorithm, public_key=public_key)

    def _objects(self, handle: str) -> tuple[Any, Any | None]:
        key_id = _parse_handle(handle)
        token = self._token()

        def run(session: Any) -> tuple[Any, Any | None]:
            private = _find(session, ObjectClass.PRIVATE_KEY, key_id)
            public = _find(session, ObjectClass.PUBLIC_KEY, key_id)
            if len(private) != 1:
                what = "no private key" if not private else f"{len(private)} private keys"
                raise token.error(f"{what} with handle {handle}")
            return private[0], public[0] if len(public) == 1 else None

        return token.call("finding a key", run)

    def load(self, handle: str, algorithm: KeyAlgorithm) -> CAPrivateKey:
        token = self._token()
        private, public = self._objects(handle)
        try:
            public_key = token.call("reading a key", lambda _: public_key_from_token(private, public))
        except ValueError as exc:
            raise token.error(f"key {handle} cannot be used: {exc}") from None
        try:
            actual = algorithm_of(public_key)
        except CandorError as exc:
            raise token.error(f"key {handle} cannot be used: {exc.message}") from None
        if actual is not algorithm:
            raise token.error(f"key {handle} is {actual.value}, expected {algorithm.value}")
        if not token.call("reading a key", lambda _: bool(private[Attribute.SIGN])):
            raise token.error(f"key {handle} is not allowed to sign (CKA_SIGN is false)")
        if algorithm.is_rsa:
            return Pkcs11RSAPrivateKey(token, private, public_key, handle)
        return Pkcs11ECPrivateKey(token, private, public_key, handle)

    def protection(self, handle: str) -> KeyProtection:
        """The token's own flags. A key that was ever extractable or not always sensitive counts as such."""
        private, _ = self._objects(handle)
        names = [
            Attribute.EXTRACTABLE,
            Attribute.NEVER_EXTRACTABLE,
            Attribute.SENSITIVE,
            Attribute.ALWAYS_SENSITIVE,
        ]
        flags = self._token().call("reading key attributes", lambda _: private.get_attributes(names))
        extractable = bool(flags.get(Attribute.EXTRACTABLE, True)) or not flags.get(Attribute.NEVER_EXTRACTABLE)
        sensitive = bool(flags.get(Attribute.SENSITIVE)) and bool(flags.get(Attribute.ALWAYS_SENSITIVE))
        return KeyProtection(
            location=self.location, extractable=extractable, sensitive=sensitive, encrypted_at_rest=True
        )

    def close(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            _release(shared)


def open_pkcs11_store(name: str, config: Pkcs11KeyStoreConfig, pin: str) -> Pkcs11KeyBackend:
    """Open the token a configuration names, logging in with *pin* (resolved by the caller)."""
    return Pkcs11KeyBackend.from_config(name, config, pin)
