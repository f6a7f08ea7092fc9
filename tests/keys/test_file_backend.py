from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from candor.errors import CandorError, ErrorKind
from candor.keys import FileKeyBackend, KeyAlgorithm, check_key, parse_key_algorithm

PASSPHRASE = "correct horse battery staple"


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_generate_load_and_sign(tmp_path: Path, algorithm: KeyAlgorithm) -> None:
    store = FileKeyBackend("file", directory=tmp_path, passphrase=PASSPHRASE)
    generated = store.generate("k1", algorithm)
    path = tmp_path / generated.handle
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reopened = FileKeyBackend("file", directory=tmp_path, passphrase=PASSPHRASE)
    spki = generated.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    check_key(reopened, handle=generated.handle, algorithm=algorithm, public_key_der=spki, label="k1")
    protection = reopened.protection(generated.handle)
    assert protection.encrypted_at_rest


def test_wrong_passphrase_is_a_key_error(tmp_path: Path) -> None:
    FileKeyBackend("file", directory=tmp_path, passphrase=PASSPHRASE).generate("k1", KeyAlgorithm.ECDSA_P256)
    other = FileKeyBackend("file", directory=tmp_path, passphrase="another long passphrase")
    with pytest.raises(CandorError) as caught:
        other.load("k1.key", KeyAlgorithm.ECDSA_P256)
    assert caught.value.kind is ErrorKind.KEY and "wrong passphrase" in caught.value.message
    assert PASSPHRASE not in caught.value.message


def test_existing_keys_are_never_overwritten(tmp_path: Path) -> None:
    store = FileKeyBackend("file", directory=tmp_path, passphrase=PASSPHRASE)
    first = store.generate("k1", KeyAlgorithm.ECDSA_P256)
    before = (tmp_path / first.handle).read_bytes()
    with pytest.raises(CandorError) as caught:
        store.generate("k1", KeyAlgorithm.ECDSA_P256)
    assert caught.value.kind is ErrorKind.CONFLICT
    assert (tmp_path / first.handle).read_bytes() == before


def test_an_unencrypted_key_file_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    clear = ec.generate_private_key(ec.SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    (tmp_path / "k1.key").write_bytes(clear)
    store = FileKeyBackend("file", directory=tmp_path, passphrase=PASSPHRASE)
    with pytest.raises(CandorError, match="not an encrypted PKCS#8 key"):
        store.load("k1.key", KeyAlgorithm.ECDSA_P256)


def test_a_key_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    store = FileKeyBackend("file", directory=tmp_path, passphrase=PASSPHRASE)
    store.generate("k1", KeyAlgorithm.ECDSA_P256)
    with pytest.raises(CandorError, match="expected ecdsa-p384"):
        store.load("k1.key", KeyAlgorithm.ECDSA_P384)


@pytest.mark.parametrize("handle", ["../k1.key", ".hidden.key", "k1.pem", "a/b.key"])
def test_handles_cannot_escape_the_directory(tmp_path: Path, handle: str) -> None:
    store = FileKeyBackend("file", directory=tmp_path, passphrase=PASSPHRASE)
    with pytest.raises(CandorError, match="invalid key handle"):
        store.load(handle, KeyAlgorithm.ECDSA_P256)


@pytest.mark.parametrize("value", ["rsa-1024", "rsa-8192", "secp256k1", "ecdsa-p521", "ed25519", "brainpoolP256r1"])
def test_forbidden_or_unoffered_ca_algorithms_are_refused_by_name(value: str) -> None:
    with pytest.raises(CandorError) as caught:
        parse_key_algorithm(value)
    assert value in caught.value.message and "ecdsa-p256" in caught.value.message


def test_signature_hash_follows_br_7_1_3_2() -> None:
    assert isinstance(KeyAlgorithm.ECDSA_P256.signature_hash(), hashes.SHA256)
    assert isinstance(KeyAlgorithm.ECDSA_P384.signature_hash(), hashes.SHA384)
    assert isinstance(KeyAlgorithm.RSA_4096.signature_hash(), hashes.SHA256)
