"""The PKCS#11 key backend against a real SoftHSM2 token."""

from __future__ import annotations

import copy
import datetime
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, ObjectClass

from candor.config import Pkcs11KeyStoreConfig, SecretSource
from candor.errors import CandorError, ErrorKind
from candor.keys.pkcs11 import Pkcs11KeyBackend, open_pkcs11_store
from candor.keys.pkcs11_signer import translate
from candor.policy.algorithms import CAPrivateKey, CAPublicKey, KeyAlgorithm
from softhsm import SoftHsm, SoftHsmToken

pytestmark = pytest.mark.softhsm

MESSAGE = b"to be signed by the token"


def _backend(softhsm: SoftHsm, token: SoftHsmToken, name: str = "hsm") -> Pkcs11KeyBackend:
    return Pkcs11KeyBackend(name, module=softhsm.module, token_label=token.label, pin=token.pin)


@pytest.fixture(scope="module")
def token(softhsm: SoftHsm) -> SoftHsmToken:
    return softhsm.make_token()


@pytest.fixture(scope="module")
def store(softhsm: SoftHsm, token: SoftHsmToken) -> Iterator[Pkcs11KeyBackend]:
    backend = _backend(softhsm, token)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def p256(store: Pkcs11KeyBackend) -> tuple[str, CAPrivateKey]:
    generated = store.generate("shared-p256", KeyAlgorithm.ECDSA_P256)
    return generated.handle, store.load(generated.handle, KeyAlgorithm.ECDSA_P256)


@pytest.fixture(scope="module")
def rsa2048(store: Pkcs11KeyBackend) -> tuple[str, CAPrivateKey]:
    generated = store.generate("shared-rsa2048", KeyAlgorithm.RSA_2048)
    return generated.handle, store.load(generated.handle, KeyAlgorithm.RSA_2048)


def _sign(key: CAPrivateKey, data: bytes, algorithm: hashes.HashAlgorithm | Prehashed) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), algorithm)
    return key.sign(data, ec.ECDSA(algorithm))


def _verify(public: CAPublicKey, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm) -> None:
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, data, padding.PKCS1v15(), algorithm)
    else:
        public.verify(signature, data, ec.ECDSA(algorithm))


def _self_signed(key: CAPrivateKey, algorithm: hashes.HashAlgorithm) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Candor PKCS#11 test")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, algorithm)
    )


def _one_line_key_error(info: pytest.ExceptionInfo[CandorError], *forbidden: str) -> str:
    message = str(info.value)
    assert info.value.kind is ErrorKind.KEY
    assert "\n" not in message
    assert "Traceback" not in message
    for secret in forbidden:
        assert secret not in message
    return message


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm), ids=str)
def test_generate_sign_verify(store: Pkcs11KeyBackend, algorithm: KeyAlgorithm) -> None:
    generated = store.generate(f"key-{algorithm.value}", algorithm)
    assert len(generated.handle) == 32
    assert generated.handle == generated.handle.lower()
    key = store.load(generated.handle, algorithm)
    expected = rsa.RSAPrivateKey if algorithm.is_rsa else ec.EllipticCurvePrivateKey
    assert isinstance(key, expected)
    assert key.public_key() == generated.public_key
    if algorithm.is_rsa:
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == algorithm.rsa_bits
        assert key.public_key().public_numbers().e == 65537
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == algorithm.curve_name

    digest = algorithm.signature_hash()
    _verify(generated.public_key, _sign(key, MESSAGE, digest), MESSAGE, digest)
    for other in (hashes.SHA256(), hashes.SHA384(), hashes.SHA512()):
        _verify(generated.public_key, _sign(key, MESSAGE, other), MESSAGE, other)
    prehashed = hashes.Hash(digest)
    prehashed.update(MESSAGE)
    _verify(generated.public_key, _sign(key, prehashed.finalize(), Prehashed(digest)), MESSAGE, digest)
    with pytest.raises(InvalidSignature):
        _verify(generated.public_key, _sign(key, MESSAGE, digest), MESSAGE + b"!", digest)

    certificate = _self_signed(key, digest)
    certificate.verify_directly_issued_by(certificate)
    assert certificate.public_key() == generated.public_key
    assert certificate.signature_hash_algorithm is not None
    assert certificate.signature_hash_algorithm.name == digest.name


def test_private_key_stays_on_the_token(
    softhsm: SoftHsm, token: SoftHsmToken, store: Pkcs11KeyBackend, p256: tuple[str, CAPrivateKey]
) -> None:
    handle, key = p256
    # Read the flags over a session of our own rather than through the backend.
    session = pkcs11.lib(str(softhsm.module.resolve())).get_token(token_label=token.label).open()
    try:
        (private,) = session.get_objects(
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: bytes.fromhex(handle)}
        )
        names = [Attribute.EXTRACTABLE, Attribute.SENSITIVE, Attribute.NEVER_EXTRACTABLE, Attribute.TOKEN]
        names += [Attribute.DECRYPT, Attribute.DERIVE, Attribute.UNWRAP, Attribute.SIGN, Attribute.LABEL]
        flags = private.get_attributes(names)
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[Attribute.VALUE]
    finally:
        session.close()
    assert flags[Attribute.EXTRACTABLE] is False
    assert flags[Attribute.SENSITIVE] is True
    assert flags[Attribute.NEVER_EXTRACTABLE] is True
    assert flags[Attribute.TOKEN] is True
    assert flags[Attribute.SIGN] is True
    assert (flags[Attribute.DECRYPT], flags[Attribute.DERIVE], flags[Attribute.UNWRAP]) == (
        False,
        False,
        False,
    )
    assert flags[Attribute.LABEL] == "shared-p256"

    protection = store.protection(handle)
    assert (protection.extractable, protection.sensitive, protection.encrypted_at_rest) == (False, True, True)
    assert token.label in protection.location
    assert str(softhsm.module) in protection.location

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    refusals = [
        lambda: key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
        key.private_numbers,
        lambda: key.exchange(ec.ECDH(), ec.generate_private_key(ec.SECP256R1()).public_key()),
    ]
    for refuse in refusals:
        with pytest.raises(CandorError, match="private key material never leaves the token") as info:
            refuse()
        _one_line_key_error(info)


def test_rsa_key_refuses_export_and_decrypt(rsa2048: tuple[str, CAPrivateKey]) -> None:
    _, key = rsa2048
    assert isinstance(key, rsa.RSAPrivateKey)
    for refuse in (
        lambda: key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption()),
        key.private_numbers,
        lambda: key.decrypt(b"\x00" * 256, padding.PKCS1v15()),
    ):
        with pytest.raises(CandorError, match="never leaves the token"):
            refuse()


def _pkcs11_tool_objects(output: str) -> list[dict[str, str]]:
    objects: list[dict[str, str]] = []
    for line in output.splitlines():
        if line and not line.startswith(" "):
            objects.append({"kind": line.split(";")[0].strip()})
        elif ":" in line and objects:
            name, _, value = line.strip().partition(":")
            objects[-1][name.strip()] = value.strip()
    return objects


def test_pkcs11_tool_sees_a_sensitive_never_extractable_key(
    softhsm: SoftHsm, token: SoftHsmToken, rsa2048: tuple[str, CAPrivateKey]
) -> None:
    handle, _ = rsa2048
    objects = _pkcs11_tool_objects(softhsm.pkcs11_tool(token, "--list-objects"))
    private = [o for o in objects if o["kind"] == "Private Key Object" and o.get("ID") == handle]
    public = [o for o in objects if o["kind"] == "Public Key Object" and o.get("ID") == handle]
    assert len(private) == 1, objects
    assert len(public) == 1, objects
    access = {flag.strip() for flag in private[0]["Access"].split(",")}
    assert {"sensitive", "always sensitive", "never extractable", "local"} <= access
    assert "extractable" not in access
    assert private[0]["Usage"] == "sign"
    assert private[0]["label"] == public[0]["label"] == "shared-rsa2048"
    assert public[0]["Usage"] == "verify"


def test_wrong_pin_is_rejected_without_echoing_it(softhsm: SoftHsm) -> None:
    token = softhsm.make_token()
    wrong = f"wrong-{secrets.token_hex(4)}"
    with pytest.raises(CandorError) as info:
        Pkcs11KeyBackend("hsm", module=softhsm.module, token_label=token.label, pin=wrong)
    assert _one_line_key_error(info, wrong, token.pin) == f"PKCS#11 token '{token.label}': PIN rejected"
    # The right PIN still works afterwards (SoftHSM has no retry counter).
    _backend(softhsm, token).close()


def test_wrong_pin_is_rejected_while_the_token_is_logged_in(
    softhsm: SoftHsm, token: SoftHsmToken, store: Pkcs11KeyBackend
) -> None:
    wrong = f"wrong-{secrets.token_hex(4)}"
    with pytest.raises(CandorError) as info:
        Pkcs11KeyBackend("again", module=softhsm.module, token_label=token.label, pin=wrong)
    assert _one_line_key_error(info, wrong, token.pin) == f"PKCS#11 token '{token.label}': PIN rejected"


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        (pkcs11.exceptions.PinLocked, "PIN locked"),
        (pkcs11.exceptions.PinIncorrect, "PIN rejected"),
        (pkcs11.exceptions.PinExpired, "PIN expired"),
        (pkcs11.exceptions.DeviceError, "login failed (DeviceError)"),
    ],
)
def test_pkcs11_errors_become_one_line_key_errors(exception: type[Exception], expected: str) -> None:
    error = translate(exception("multi\nline detail"), "root-token", "login")  # type: ignore[arg-type]
    assert error.kind is ErrorKind.KEY
    assert str(error).startswith(f"PKCS#11 token 'root-token': {expected}")
    assert "\n" not in str(error)
    assert "detail" not in str(error)


def test_unknown_token_label(softhsm: SoftHsm) -> None:
    with pytest.raises(CandorError) as info:
        Pkcs11KeyBackend("hsm", module=softhsm.module, token_label="no-such-token", pin="whatever-123")
    assert "'no-such-token' not found" in _one_line_key_error(info, "whatever-123")


def test_missing_or_unloadable_module(tmp_path: Path) -> None:
    with pytest.raises(CandorError) as info:
        Pkcs11KeyBackend("hsm", module=tmp_path / "absent.so", token_label="t", pin="1234")
    assert "no such file" in _one_line_key_error(info)
    garbage = tmp_path / "garbage.so"
    garbage.write_bytes(b"this is not a shared object\n" * 10)
    with pytest.raises(CandorError) as info:
        Pkcs11KeyBackend("hsm", module=garbage, token_label="t", pin="1234")
    assert "cannot be loaded" in _one_line_key_error(info)


def test_duplicate_label_is_refused(store: Pkcs11KeyBackend, p256: tuple[str, CAPrivateKey]) -> None:
    with pytest.raises(CandorError, match="already exists") as info:
        store.generate("shared-p256", KeyAlgorithm.ECDSA_P384)
    assert info.value.kind is ErrorKind.CONFLICT


def test_unknown_or_malformed_handle(store: Pkcs11KeyBackend) -> None:
    absent = secrets.token_hex(16)
    for handle in (absent, "not-hex", "ABCD", ""):
        with pytest.raises(CandorError) as info:
            store.load(handle, KeyAlgorithm.ECDSA_P256)
        _one_line_key_error(info)
    with pytest.raises(CandorError, match=f"no private key with handle {absent}"):
        store.protection(absent)


def test_algorithm_mismatch_is_refused(store: Pkcs11KeyBackend, p256: tuple[str, CAPrivateKey]) -> None:
    handle, _ = p256
    for wrong in (KeyAlgorithm.ECDSA_P384, KeyAlgorithm.RSA_2048):
        with pytest.raises(CandorError, match=f"is ecdsa-p256, expected {wrong.value}") as info:
            store.load(handle, wrong)
        _one_line_key_error(info)


def test_unsupported_signature_schemes_are_refused(
    rsa2048: tuple[str, CAPrivateKey], p256: tuple[str, CAPrivateKey]
) -> None:
    _, rsa_key = rsa2048
    _, ec_key = p256
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    with pytest.raises(CandorError, match="padding EMSA-PSS is not supported"):
        rsa_key.sign(MESSAGE, pss, hashes.SHA256())
    with pytest.raises(CandorError, match="hash sha1 is not allowed"):
        rsa_key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    with pytest.raises(CandorError, match="hash sha1 is not allowed"):
        ec_key.sign(MESSAGE, ec.ECDSA(hashes.SHA1()))  # noqa: S303
    with pytest.raises(CandorError, match="digest size"):
        ec_key.sign(b"short", ec.ECDSA(Prehashed(hashes.SHA256())))


def test_copies_are_the_same_token_key(p256: tuple[str, CAPrivateKey]) -> None:
    _, key = p256
    assert copy.copy(key) is key
    assert copy.deepcopy(key) is key


def test_concurrent_signing(
    store: Pkcs11KeyBackend, p256: tuple[str, CAPrivateKey], rsa2048: tuple[str, CAPrivateKey]
) -> None:
    keys = [p256[1], rsa2048[1]]
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for round_ in range(15):
                key = keys[(index + round_) % 2]
                data = f"{index}:{round_}".encode()
                _verify(key.public_key(), _sign(key, data, hashes.SHA256()), data, hashes.SHA256())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)


def test_concurrent_generation_of_one_label_creates_one_key(store: Pkcs11KeyBackend) -> None:
    barrier = threading.Barrier(6)
    handles: list[str] = []
    conflicts: list[ErrorKind] = []

    def worker() -> None:
        barrier.wait()
        try:
            handles.append(store.generate("raced", KeyAlgorithm.ECDSA_P256).handle)
        except CandorError as exc:
            conflicts.append(exc.kind)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(handles) == 1
    assert conflicts == [ErrorKind.CONFLICT] * 5


def test_backends_on_one_token_share_the_login(softhsm: SoftHsm) -> None:
    token = softhsm.make_token()
    first = _backend(softhsm, token, "first")
    second = _backend(softhsm, token, "second")
    generated = first.generate("shared-login", KeyAlgorithm.ECDSA_P384)
    key = second.load(generated.handle, KeyAlgorithm.ECDSA_P384)
    first.close()
    first.close()  # closing twice is harmless
    _verify(generated.public_key, _sign(key, MESSAGE, hashes.SHA384()), MESSAGE, hashes.SHA384())
    with pytest.raises(CandorError, match="key store 'first' is closed"):
        first.load(generated.handle, KeyAlgorithm.ECDSA_P384)
    second.close()
    with pytest.raises(CandorError, match="session closed") as info:
        _sign(key, MESSAGE, hashes.SHA384())
    _one_line_key_error(info)
    # A new backend logs in again once every earlier one has closed.
    third = _backend(softhsm, token, "third")
    try:
        assert third.protection(generated.handle).extractable is False
    finally:
        third.close()


def test_open_from_config(softhsm: SoftHsm) -> None:
    token = softhsm.make_token()
    config = Pkcs11KeyStoreConfig(
        backend="pkcs11",
        module=softhsm.module,
        token_label=token.label,
        pin=SecretSource(env="CANDOR_HSM_PIN"),
    )
    backend = open_pkcs11_store("root", config, token.pin)
    try:
        assert backend.name == "root"
        assert backend.backend_type == "pkcs11"
        generated = backend.generate("from-config", KeyAlgorithm.ECDSA_P256)
        assert backend.load(generated.handle, KeyAlgorithm.ECDSA_P256).public_key() == generated.public_key
    finally:
        backend.close()
