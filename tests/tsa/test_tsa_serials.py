"""Token serial numbers (RFC 3161 2.4.2: unique per TSA, up to 160 bits): a million are unique; threads, forked
processes and restarts do not repeat one; and should one repeat, the database refuses it and no token leaves."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import threading

from tsa_support import Harness, read_reply, request, tst_info

from candor.tsa.serials import COUNTER_BITS, SERIAL_BITS, SerialAllocator


def test_a_million_serials_are_unique_positive_and_under_160_bits() -> None:
    allocator = SerialAllocator()
    serials = {allocator.next() for _ in range(1_000_000)}
    assert len(serials) == 1_000_000
    assert min(serials) > 0 and max(serials) < 2**SERIAL_BITS <= 2**160
    assert {s.bit_length() for s in serials} == {SERIAL_BITS}  # 16 octets in DER, none with a leading zero


def test_threads_sharing_an_allocator_never_get_the_same_serial() -> None:
    allocator = SerialAllocator()
    drawn: list[list[int]] = [[] for _ in range(8)]

    def draw(into: list[int]) -> None:
        into.extend(allocator.next() for _ in range(25_000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(itertools.chain.from_iterable(drawn))) == 8 * 25_000


def _draw_in_child(allocator: SerialAllocator, queue: multiprocessing.Queue[list[int]]) -> None:
    queue.put([allocator.next() for _ in range(1000)])


def test_a_forked_worker_and_a_restart_draw_other_serials() -> None:
    allocator = SerialAllocator()
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[int]] = context.Queue()
    child = context.Process(target=_draw_in_child, args=(allocator, queue))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(timeout=30)
    ours = [allocator.next() for _ in range(1000)]
    restarted = [SerialAllocator().next() for _ in range(1000)]  # a new process's allocator
    assert len(set(theirs) | set(ours) | set(restarted)) == 3000
    assert len({s >> COUNTER_BITS for s in theirs}) == 1 and theirs[0] >> COUNTER_BITS != ours[0] >> COUNTER_BITS


def test_a_prefix_whose_counter_runs_out_is_replaced() -> None:
    allocator = SerialAllocator()
    allocator._count = itertools.count((1 << COUNTER_BITS) - 2)
    first, second, third = allocator.next(), allocator.next(), allocator.next()
    assert first >> COUNTER_BITS == second >> COUNTER_BITS != third >> COUNTER_BITS
    assert len({first, second, third}) == 3


class Repeating(SerialAllocator):
    def next(self) -> int:
        return (1 << 126) | 42


def test_a_repeated_serial_is_refused_by_the_database_and_no_token_leaves(tsa: Harness) -> None:
    tsa.tsa.app.service.serials = Repeating()

    async def both() -> tuple[bytes, bytes]:
        first = await tsa.respond(request(data=b"one"))
        return first, await tsa.respond(request(data=b"two"))

    first, second = (read_reply(r) for r in asyncio.run(both()))
    assert first.status == 0 and first.token is not None
    assert int(tst_info(first.token)["serialNumber"]) == (1 << 126) | 42
    assert second.failures == {"systemFailure"} and second.token is None
