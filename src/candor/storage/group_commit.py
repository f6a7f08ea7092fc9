"""Group commit: writes queue up, one thread stores them a batch per transaction.

A request hands its item to :meth:`BatchWriter.submit` and waits on the future; the writer drains everything
queued (up to ``max_batch``), stores it in one transaction and only then resolves the futures. While one commit
is on disk the next batch gathers, so the cost of a durable commit (and, on SQLite, of the write lock) is shared
by every item that arrived meanwhile, and nothing is answered before it is stored. Used by the CT log's write
path (an SCT is the log's promise, RFC 6962 3) and by the ACME nonces (:mod:`candor.acme.nonces`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class Overloaded(RuntimeError):
    """The queue is full: the caller should retry later (HTTP 503)."""


class BatchWriter(Generic[In, Out]):
    def __init__(
        self, store: Callable[[Sequence[In]], Sequence[Out]], *, max_batch: int, max_queued: int, name: str
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._queue: queue.SimpleQueue[tuple[In, Future[Out]] | None] = queue.SimpleQueue()
        self._name = name
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        self._thread.start()
        self._started = True

    def submit(self, item: In) -> Future[Out]:
        if not self._started:
            raise RuntimeError("the writer is not running")
        if self._queue.qsize() >= self._max_queued:
            raise Overloaded(f"{self._name}: the queue is full")
        future: Future[Out] = Future()
        self._queue.put((item, future))
        return future

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join()
            self._started = False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._write(batch)

    def _write(self, batch: list[tuple[In, Future[Out]]]) -> None:
        try:
            results = self._store([item for item, _ in batch])
        except Exception as exc:  # every item of the batch fails the same way; none was stored
            log.warning("%s: storing a batch of %d failed: %s", self._name, len(batch), exc)
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
