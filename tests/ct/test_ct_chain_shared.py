"""Logs with the same roots share one chain checker, which answers a chain it accepted a moment ago as it did
then: a CA submitting each (pre)certificate to its two own logs checks it once. What it refused is checked again,
and what depends on the roots is never shared between different root sets."""

from __future__ import annotations

import pytest
from ct_pki import Pki, certificate, make_pki, precertificate

from candor.ct.log import chain as chain_module
from candor.ct.log.chain import ChainChecker, SubmissionError


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def _counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    parsed: list[int] = []
    original = chain_module._parse

    def counted(der: bytes, position: int) -> object:
        parsed.append(position)
        return original(der, position)

    monkeypatch.setattr(chain_module, "_parse", counted)
    return parsed


def test_logs_with_the_same_roots_check_a_chain_once(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = ChainChecker.for_roots([pki.root.certificate]), ChainChecker.for_roots([pki.root.certificate])
    assert first is second
    parsed = _counting_parses(monkeypatch)
    chain = [precertificate(pki.issuer, 0x5A11), pki.issuer.der]
    accepted = first.check(chain, precertificate=True)
    assert parsed.count(0) == 1
    assert second.check(list(chain), precertificate=True) is accepted
    assert parsed.count(0) == 1  # the leaf parsed (and its signature verified) once
    final = [certificate(pki.issuer, 0x5A11), pki.issuer.der]
    assert first.check(final, precertificate=False).entry != accepted.entry  # another chain: checked on its own
    with pytest.raises(SubmissionError):  # the same bytes as the other kind are refused, not answered from memory
        first.check(chain, precertificate=False)


def test_a_refused_chain_is_checked_again(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    checker = ChainChecker.for_roots([pki.root.certificate])
    parsed = _counting_parses(monkeypatch)
    broken = [precertificate(pki.issuer, 0x5A12), pki.stranger.der]
    for _ in range(2):
        with pytest.raises(SubmissionError):
            checker.check(broken, precertificate=True)
    assert parsed.count(0) == 2


def test_different_roots_do_not_share_what_was_accepted(pki: Pki) -> None:
    ours = ChainChecker.for_roots([pki.root.certificate])
    theirs = ChainChecker.for_roots([pki.other_root.certificate])
    assert ours is not theirs
    chain = [precertificate(pki.issuer, 0x5A13), pki.issuer.der]
    ours.check(chain, precertificate=True)
    with pytest.raises(SubmissionError):
        theirs.check(chain, precertificate=True)


def test_the_memory_of_accepted_chains_is_bounded(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain_module, "_ACCEPTED_CAP", 2)
    checker = ChainChecker([pki.root.certificate])
    chains = [[precertificate(pki.issuer, 0x5A20 + n), pki.issuer.der] for n in range(3)]
    for chain in chains:
        checker.check(chain, precertificate=True)
    parsed = _counting_parses(monkeypatch)
    checker.check(chains[0], precertificate=True)  # the oldest was forgotten: checked again
    checker.check(chains[2], precertificate=True)
    assert parsed.count(0) == 1
