"""The RFC 6962 section 4 HTTP API: answers, and a 400 with a JSON error (never a 500) for every bad input,
with nothing added to the tree for a refused submission."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator

import pytest
from ct_pki import Pki, certificate, precertificate
from ct_reference import ref_mth, ref_root_from_path
from starlette.applications import Starlette
from starlette.testclient import TestClient

from candor.ct.log.app import MAX_BODY_BYTES, ct_log_routes
from candor.ct.log.service import CtLog
from candor.ct.log.tls import parse_merkle_tree_leaf

PREFIX = "/ct/log-a"
V1 = f"{PREFIX}/ct/v1"
Serial = Callable[[], int]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def client(ct_log: CtLog) -> Iterator[TestClient]:
    app = Starlette(routes=ct_log_routes(ct_log, prefix=PREFIX))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def submit(client: TestClient, chain: list[bytes], *, pre: bool = True) -> dict[str, object]:
    response = client.post(f"{V1}/add-pre-chain" if pre else f"{V1}/add-chain", json={"chain": [b64(c) for c in chain]})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_add_pre_chain_and_read_it_back(client: TestClient, ct_log: CtLog, pki: Pki, serial: Serial) -> None:
    sct = submit(client, [precertificate(pki.issuer, serial()), pki.issuer.der])
    assert set(sct) == {"sct_version", "id", "timestamp", "extensions", "signature"}
    assert base64.b64decode(str(sct["id"])) == hashlib.sha256(ct_log.public_key_der).digest()
    submit(client, [certificate(pki.issuer, serial()), pki.issuer.der, pki.root.der], pre=False)
    ct_log.integrate()
    sth = client.get(f"{V1}/get-sth").json()
    assert sth["tree_size"] == 2
    entries = client.get(f"{V1}/get-entries", params={"start": 0, "end": 5}).json()["entries"]
    leaves = [base64.b64decode(e["leaf_input"]) for e in entries]
    assert len(leaves) == 2 and ref_mth(leaves) == base64.b64decode(sth["sha256_root_hash"])
    assert parse_merkle_tree_leaf(leaves[0]).timestamp == sct["timestamp"]
    leaf_hash = hashlib.sha256(b"\x00" + leaves[1]).digest()
    proof = client.get(f"{V1}/get-proof-by-hash", params={"hash": b64(leaf_hash), "tree_size": 2}).json()
    assert proof["leaf_index"] == 1
    path = [base64.b64decode(p) for p in proof["audit_path"]]
    assert ref_root_from_path(1, 2, leaf_hash, path) == base64.b64decode(sth["sha256_root_hash"])
    both = client.get(f"{V1}/get-entry-and-proof", params={"leaf_index": 1, "tree_size": 2}).json()
    assert both["leaf_input"] == entries[1]["leaf_input"] and both["audit_path"] == proof["audit_path"]
    assert client.get(f"{V1}/get-sth-consistency", params={"first": 1, "second": 2}).json()["consistency"]
    assert client.get(f"{V1}/get-roots").json() == {"certificates": [b64(pki.root.der)]}


def test_get_entries_returns_at_most_256(client: TestClient, ct_log: CtLog, pki: Pki, serial: Serial) -> None:
    chains = [[precertificate(pki.issuer, serial()), pki.issuer.der] for _ in range(260)]
    for future in [ct_log.submit(ct_log.check(chain, precertificate=True)) for chain in chains]:
        future.result(timeout=30)
    ct_log.integrate()
    entries = client.get(f"{V1}/get-entries", params={"start": 2, "end": 300}).json()["entries"]
    assert len(entries) == 256  # RFC 6962 4.6: a log may return a prefix
    assert len(client.get(f"{V1}/get-entries", params={"start": 255, "end": 1000}).json()["entries"]) == 5


def _bad_submissions(pki: Pki, number: int) -> list[tuple[str, str, object]]:
    pre = [precertificate(pki.issuer, number), pki.issuer.der]
    stranger = [b64(precertificate(pki.stranger, number)), b64(pki.stranger.der)]
    cert = [b64(certificate(pki.issuer, number)), b64(pki.issuer.der)]
    return [
        ("unknown root", "add-pre-chain", {"chain": stranger}),
        ("garbage DER", "add-pre-chain", {"chain": [b64(b"garbage"), b64(pki.issuer.der)]}),
        ("certificate to add-pre-chain", "add-pre-chain", {"chain": cert}),
        ("precertificate to add-chain", "add-chain", {"chain": [b64(c) for c in pre]}),
        ("bad base64", "add-pre-chain", {"chain": ["not base64!", b64(pki.issuer.der)]}),
        ("no chain", "add-pre-chain", {"chains": [b64(c) for c in pre]}),
        ("not a list", "add-pre-chain", {"chain": b64(pre[0])}),
        ("not strings", "add-pre-chain", {"chain": [1, 2]}),
        ("eleven certificates", "add-chain", {"chain": [b64(pki.issuer.der)] * 11}),
    ]  # fmt: skip


def test_bad_submissions_are_400_and_add_nothing(client: TestClient, ct_log: CtLog, pki: Pki, serial: Serial) -> None:
    for case, endpoint, body in _bad_submissions(pki, serial()):
        response = client.post(f"{V1}/{endpoint}", json=body)
        assert response.status_code == 400, (case, response.text)
        assert response.json()["error"], case
    for raw in (b"{not json", b"\xff\xfe", b"[]", b"null"):
        response = client.post(f"{V1}/add-chain", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400 and "error" in response.json()
    assert ct_log.pending() == 0
    assert ct_log.integrate().tree_size == 0


def test_oversized_bodies_are_refused_before_reading(client: TestClient, ct_log: CtLog) -> None:
    declared = client.post(f"{V1}/add-chain", content=b"{}", headers={"content-length": str(MAX_BODY_BYTES + 1)})
    assert declared.status_code == 400 and "larger" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"chain": ["'
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"A" * 1024
        yield b'"]}'

    streamed = client.post(f"{V1}/add-chain", content=chunks())
    assert streamed.status_code == 400 and "larger" in streamed.json()["error"]
    assert ct_log.integrate().tree_size == 0


def test_bad_read_parameters_are_400(client: TestClient, ct_log: CtLog, pki: Pki, serial: Serial) -> None:
    submit(client, [precertificate(pki.issuer, serial()), pki.issuer.der])
    submit(client, [precertificate(pki.issuer, serial()), pki.issuer.der])
    ct_log.integrate()
    unknown = b64(hashlib.sha256(b"unknown").digest())
    cases = [
        ("get-entries", {"start": 2, "end": 3}),  # past the tree head
        ("get-entries", {"start": 1, "end": 0}),
        ("get-entries", {"start": -1, "end": 0}),
        ("get-entries", {"start": "a", "end": 0}),
        ("get-entries", {"start": 0}),
        ("get-proof-by-hash", {"hash": unknown, "tree_size": 2}),
        ("get-proof-by-hash", {"hash": "%%%", "tree_size": 2}),
        ("get-proof-by-hash", {"hash": b64(b"short"), "tree_size": 2}),
        ("get-proof-by-hash", {"hash": unknown, "tree_size": 3}),
        ("get-proof-by-hash", {"hash": unknown, "tree_size": 0}),
        ("get-sth-consistency", {"first": 1, "second": 3}),
        ("get-sth-consistency", {"first": 2, "second": 1}),
        ("get-sth-consistency", {"first": 1}),
        ("get-entry-and-proof", {"leaf_index": 2, "tree_size": 2}),
        ("get-entry-and-proof", {"leaf_index": 0, "tree_size": 3}),
        ("get-entry-and-proof", {"leaf_index": 0, "tree_size": 99999999999999999999999}),
    ]
    for endpoint, params in cases:
        response = client.get(f"{V1}/{endpoint}", params=params)
        assert response.status_code == 400, (endpoint, params, response.text)
        assert json.loads(response.text)["error"]


def test_wrong_methods_are_refused(client: TestClient) -> None:
    assert client.get(f"{V1}/add-chain").status_code == 405
    assert client.post(f"{V1}/get-sth").status_code == 405
