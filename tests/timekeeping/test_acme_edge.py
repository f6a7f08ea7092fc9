"""WS-08e through ACME: a finalize while the clock is untrusted is answered serverInternal (503) with nothing
about the clock in the problem, the order stays ready, and the same order finalizes once the clock is back."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterator
from pathlib import Path

import josepy
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "acme_server"))

from acme import challenges, client, messages
from acme_harness import AcmeHarness, acme_server
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from issuing import build_home, csr_for
from validation_fakes import Route

from candor.timekeeping import SUSPENDED, ClockMonitor, FakeTime, FakeTimeSource, WatchRules
from support import record_issued


@pytest.fixture
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeHarness]:
    with acme_server(build_home(tmp_path_factory.mktemp("acme-clock"))) as running:
        yield running


def test_finalize_waits_for_a_trustworthy_clock(harness: AcmeHarness) -> None:
    time = FakeTime()
    source = FakeTimeSource(time.clock)
    watch = ClockMonitor([source], WatchRules(), clock=time.clock, monotonic=time.monotonic)
    harness.ca.signer.clock_watch = watch
    key = josepy.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    network = client.ClientNetwork(key, user_agent="candor-tests", verify_ssl=False)
    acme = client.ClientV2(client.ClientV2.get_directory(harness.directory, network), network)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    csr = x509.load_der_x509_csr(csr_for(["www.example.com"])).public_bytes(serialization.Encoding.PEM)
    order = acme.new_order(csr)
    for authorization in order.authorizations:
        challenge = next(c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = challenge.response_and_validation(acme.net.key)
        harness.responder_routes["/" + challenge.chall.path.lstrip("/")] = Route(200, validation.encode())
        acme.answer_challenge(challenge, response)
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=30)  # noqa: DTZ005 (the acme library's API)
    ready = acme.poll_authorizations(order, deadline)

    source.offset = 2.0
    watch.poll()
    with pytest.raises(messages.Error) as refused:
        acme.begin_finalization(ready)
    assert refused.value.typ == "urn:ietf:params:acme:error:serverInternal"
    assert refused.value.detail == SUSPENDED
    assert harness.ca.order_status(int(ready.uri.rsplit("/", 1)[1])) == "ready"  # nothing claimed it

    source.offset = 0.0
    time.advance(16)
    watch.poll()
    finished = acme.poll_and_finalize(ready, deadline)
    chain = x509.load_pem_x509_certificates(finished.fullchain_pem.encode())
    record_issued(chain[0], tuple(chain[1:]), harness.ca.root_pem)


def test_the_refusal_is_a_503_the_client_may_retry() -> None:
    from candor.acme.problems import from_error
    from candor.errors import CandorError, ErrorKind

    response = from_error(CandorError(ErrorKind.UNAVAILABLE, SUSPENDED))
    assert response.status_code == 503
    assert b"serverInternal" in response.body
