"""The write path's group commit: submissions queue up, one thread stores them a batch per transaction.

A request hands its checked submission to :meth:`BatchWriter.submit` and waits on the future; the writer
drains everything queued (up to ``max_batch``), stores it in one transaction and only then resolves the
futures with their SCTs. While one commit is on disk the next batch gathers, so the cost of a durable commit
is shared by every submission that arrived meanwhile, and no SCT is ever returned for an entry that is not
stored (RFC 6962 3: the SCT is the log's promise).
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
    """The queue is full: the submitter should retry later (HTTP 503)."""


class BatchWriter(Generic[In, Out]):
    def __init__(
        self, store: Callable[[Sequence[In]], Sequence[Out]], *, max_batch: int, max_queued: int, name: str
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._queue: queue.SimpleQueue[tuple[In, Future[Out]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        self._thread.start()
        self._started = True

    def submit(self, item: In) -> Future[Out]:
        if not self._started:
            raise RuntimeError("the writer is not running")
        if self._queue.qsize() >= self._max_queued:
            raise Overloaded("the log's submission queue is full")
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
        except Exception as exc:  # every submission of the batch fails the same way; none got an SCT
            log.warning("storing a batch of %d submissions failed: %s", len(batch), exc)
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
