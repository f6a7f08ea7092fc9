"""A deliberately low-level ACME client for tests: every field of every request is the test's to break."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from acme_harness import AcmeHarness
from issuing import csr_for
from jose_requests import public_jwk_of, signed_raw

URN = "urn:ietf:params:acme:error:"


class Raw:
    """A deliberately low-level ACME client: every field of every request is the test's to break."""

    def __init__(self, harness: AcmeHarness, key_name: str, alg: str = "ES256") -> None:
        parts = urlsplit(harness.directory)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.host, self.port = parts.hostname or "", parts.port or 80
        self.key_name = key_name
        self.alg = alg
        self.kid: str | None = None

    def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/jose+json"
    ) -> tuple[int, Any, dict[str, str]]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            data = response.read()
            headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        parsed = json.loads(data) if data and headers.get("content-type", "").endswith("json") else data
        return response.status, parsed, headers

    def nonce(self) -> str:
        return self.request("HEAD", "/acme/new-nonce")[2]["replay-nonce"]

    def post(
        self,
        path: str,
        payload: dict[str, Any] | None,
        *,
        alg: str | None = None,
        use_jwk: bool = False,
        nonce: str | None = None,
        url: str | None = None,
        header_changes: dict[str, Any] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        alg = alg or self.alg
        header: dict[str, Any] = {"alg": alg, "nonce": nonce or self.nonce(), "url": url or self.origin + path}
        if use_jwk or self.kid is None:
            header["jwk"] = public_jwk_of(self.key_name)
        else:
            header["kid"] = self.kid
        header.update(header_changes or {})
        raw = b"" if payload is None else json.dumps(payload).encode()
        jws = signed_raw(header, raw, self.key_name, alg)
        return self.request("POST", path, json.dumps(jws).encode())

    def register(self) -> Raw:
        status, _body, headers = self.post("/acme/new-account", {"termsOfServiceAgreed": True}, use_jwk=True)
        assert status in (200, 201)
        self.kid = headers["location"]
        return self


def expect_problem(reply: tuple[int, Any, dict[str, str]], acme_type: str, status: int) -> None:
    code, body, headers = reply
    assert code == status, body
    assert headers["content-type"] == "application/problem+json"
    assert body["type"] == URN + acme_type, body
    assert "replay-nonce" in headers and body["status"] == status
    assert "Traceback" not in json.dumps(body)


def issued_certificate(harness: AcmeHarness, client: Raw, name: str) -> bytes:
    from candor.acme.jwk import key_authorization

    status, order, _headers = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": name}]})
    assert status == 201
    _, authz, _ = client.post(urlsplit(order["authorizations"][0]).path, None)
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    if authz["status"] != "valid":
        harness.responder_routes[f"/.well-known/acme-challenge/{challenge['token']}"] = route_for(
            key_authorization(challenge["token"], public_jwk_of(client.key_name))
        )
        client.post(urlsplit(challenge["url"]).path, {})
    csr = base64.urlsafe_b64encode(csr_for([name])).rstrip(b"=").decode()
    status, finished, _ = client.post(urlsplit(order["finalize"]).path, {"csr": csr})
    assert status == 200 and finished["status"] == "valid", finished
    _, pem, _ = client.post(urlsplit(finished["certificate"]).path, None)
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509_first(pem).public_bytes(Encoding.DER)


def x509_first(pem: bytes) -> Any:
    from cryptography import x509

    return x509.load_pem_x509_certificates(pem)[0]


def route_for(body: str) -> Any:
    from validation_fakes import Route

    return Route(200, body.encode())
