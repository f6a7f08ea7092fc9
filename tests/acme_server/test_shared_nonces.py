"""RFC 8555 6.5 with the nonces in shared memory (``candor serve`` on SQLite): a nonce is accepted at most once
by any process that shares the store, expires, and one this store did not issue (made up, altered, another
run's) is refused."""

from __future__ import annotations

import base64
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from candor.acme.shared_nonces import SharedNonces
from candor.clock import FakeClock


@pytest.fixture
def store() -> Iterator[SharedNonces]:
    nonces = SharedNonces(FakeClock(), window=1 << 12)
    try:
        yield nonces
    finally:
        nonces.close()


def _fork(child: Callable[[], object]) -> int:
    """Run *child* in a forked process, which exits 0 once it returns (1 if it raises) and never returns into
    pytest; the parent gets the child's pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            child()
            code = 0
        finally:
            os._exit(code)
    return pid


def _read_bytes(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    os.close(fd)
    return data


def test_a_nonce_is_good_once(store: SharedNonces) -> None:
    nonce = store.issue()
    assert len(nonce) == 43 and "=" not in nonce
    assert store.redeem(nonce)
    assert not store.redeem(nonce)
    used, fresh = store.exchange(nonce)
    assert not used and fresh != nonce
    assert store.exchange(fresh)[0]


def test_a_nonce_is_accepted_once_by_two_forked_processes() -> None:
    """The parent and a forked child redeem the same nonces at once, in the same order so that they race on
    each: each nonce is accepted by exactly one of them."""
    store = SharedNonces(FakeClock(), window=1 << 12)
    issued = [store.issue() for _ in range(4000)]
    go_read, go_write = os.pipe()
    out_read, out_write = os.pipe()

    def redeem_all_at_the_parents_go() -> None:
        os.close(go_write)
        os.read(go_read, 1)
        os.write(out_write, bytes(store.redeem(value) for value in issued))

    pid = _fork(redeem_all_at_the_parents_go)
    os.close(go_read)
    os.close(out_write)
    os.write(go_write, b"!")
    os.close(go_write)
    mine = [store.redeem(value) for value in issued]
    theirs = [byte == 1 for byte in _read_bytes(out_read)]
    assert os.waitpid(pid, 0)[1] == 0
    assert all(a != b for a, b in zip(mine, theirs, strict=True))  # exactly one of the two, for every nonce
    store.close()


def test_nonces_issued_in_a_forked_process_are_the_parents_to_redeem(store: SharedNonces) -> None:
    """One counter for every process: a child's nonces are unique with the parent's, and good in the parent."""
    before = [store.issue() for _ in range(3)]
    read, write = os.pipe()
    pid = _fork(lambda: os.write(write, " ".join(store.issue() for _ in range(3)).encode()))
    os.close(write)
    child = _read_bytes(read).decode().split()
    assert os.waitpid(pid, 0)[1] == 0
    after = [store.issue() for _ in range(3)]
    assert len(set(before + child + after)) == 9
    assert all(store.redeem(value) for value in child)
    assert not any(store.redeem(value) for value in child)


def test_a_nonce_expires_at_its_lifetime() -> None:
    clock = FakeClock()
    store = SharedNonces(clock, lifetime=timedelta(minutes=5), window=1 << 12)
    kept, late = store.issue(), store.issue()
    clock.advance(timedelta(minutes=5) - timedelta(seconds=1))
    assert store.redeem(kept)
    clock.advance(timedelta(seconds=1))
    assert not store.redeem(late)  # expired at exactly its lifetime
    assert store.redeem(store.issue())  # fresh ones are good
    store.close()


def test_made_up_and_altered_nonces_are_refused(store: SharedNonces) -> None:
    nonce = store.issue()
    for index in range(len(nonce)):  # every character changed, one at a time
        changed = "B" if nonce[index] != "B" else "C"
        assert not store.redeem(nonce[:index] + changed + nonce[index + 1 :])
    raw = bytearray(base64.urlsafe_b64decode(nonce + "="))
    raw[7] ^= 1  # the serial of another nonce, the MAC left as it was
    assert not store.redeem(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())
    for value in ["", "A" * 43, "A" * 42 + "B", nonce + "A", nonce[:-1], "not a nonce!!", "=" * 43]:
        assert not store.redeem(value)
    assert store.redeem(nonce)  # none of the attempts used it


def test_another_spelling_of_a_nonce_is_refused(store: SharedNonces) -> None:
    """The last character carries two unused bits: a spelling with them set decodes to the same bytes, and is
    refused (each nonce has one spelling)."""
    nonce = store.issue()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = nonce[:-1] + alphabet[alphabet.index(nonce[-1]) + 1]
    assert base64.urlsafe_b64decode(other + "=") == base64.urlsafe_b64decode(nonce + "=")
    assert not store.redeem(other)
    assert store.redeem(nonce)


def test_a_nonce_of_another_store_is_refused() -> None:
    """Another key (another run of `candor serve`): the same serial and time, refused."""
    clock = FakeClock()
    first, second = SharedNonces(clock, window=1 << 12), SharedNonces(clock, window=1 << 12)
    theirs, ours = first.issue(), second.issue()
    assert theirs[:21] == ours[:21]  # serial 0 at the same second: only the MACs differ
    assert not second.redeem(theirs)
    assert second.redeem(ours)
    assert first.redeem(theirs)
    first.close()
    second.close()


def test_a_nonce_whose_slot_the_ring_reused_is_refused() -> None:
    """A ring of 8: serial s is good until serial s + 8 is issued, which takes its slot."""
    store = SharedNonces(FakeClock(), window=8)
    zero, one, two = store.issue(), store.issue(), store.issue()
    for _ in range(5):
        store.issue()  # serials 3 to 7
    assert store.redeem(zero)  # 8 issued: serial 0's slot is still its own
    assert not store.redeem(zero)
    store.issue()  # serial 8 takes serial 0's slot
    assert store.redeem(one)  # serial 1's is still its own
    store.issue()
    store.issue()  # serial 10 takes serial 2's slot, and clears its bit
    assert not store.redeem(two)
    assert store.redeem(store.issue())
    store.close()


def test_the_window_is_a_power_of_two() -> None:
    for window in (0, 4, 12, 1000):
        with pytest.raises(ValueError, match="power of two"):
            SharedNonces(FakeClock(), window=window)


def test_a_nonce_raced_by_many_threads_is_accepted_once(store: SharedNonces) -> None:
    for _ in range(20):
        nonce = store.issue()
        start = threading.Barrier(8)

        def race(_: int, nonce: str = nonce, start: threading.Barrier = start) -> bool:
            start.wait()
            return store.exchange(nonce)[0]

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(race, range(8)))
        assert results.count(True) == 1


def _holding_the_lock_in_a_child(store: SharedNonces, then: str) -> tuple[int, int]:
    """Fork a child that takes the store's lock and tells the parent (a byte on the pipe returned); then it
    waits for a byte from the parent before it releases the lock (*then* "release") or dies by SIGKILL with
    the lock held ("die"). Returns the child's pid and the write end of its pipe from the parent."""
    held_read, held_write = os.pipe()
    go_read, go_write = os.pipe()

    def hold() -> None:
        with store._locked():
            os.write(held_write, b"!")
            os.read(go_read, 1)
            if then == "die":
                os.kill(os.getpid(), signal.SIGKILL)

    pid = _fork(hold)
    os.close(held_write)
    os.close(go_read)
    assert os.read(held_read, 1) == b"!"
    os.close(held_read)
    return pid, go_write


@pytest.mark.parametrize("then", ["release", "die"])
def test_another_process_holding_the_lock_holds_off_every_exchange_until_it_lets_go_or_dies(
    store: SharedNonces, then: str
) -> None:
    """The lock is the processes' (not only this one's threads'): while a forked child holds it, an exchange
    here waits; it goes on when the child releases it, and when the child is killed holding it (the kernel
    drops a dead process's record locks: a worker killed at the wrong moment does not stop the others')."""
    nonce = store.issue()
    pid, go = _holding_the_lock_in_a_child(store, then)
    results: list[bool] = []
    exchange = threading.Thread(target=lambda: results.append(store.exchange(nonce)[0]), daemon=True)
    exchange.start()  # a daemon: a lock never released fails the test rather than hang it
    try:
        exchange.join(0.3)
        waited = exchange.is_alive()
    finally:
        os.write(go, b"!")
        os.close(go)
        status = os.waitpid(pid, 0)[1]
    exchange.join(10)
    assert waited
    assert results == [True]
    assert (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL) if then == "die" else status == 0
