"""Responses shared through Redis by several responder nodes (DESIGN.md: stateless front ends; Let's Encrypt
served OCSP from Redis in front of its signers).

The signer side publishes each signed response under its lookup keys (issuerKeyHash + serial), expiring at
its nextUpdate, and announces the keys on a channel. A responder node looks a key up in Redis when its memory
misses, and follows the channel so that a re-signed response (a revocation) replaces the copy in its memory
at once.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from collections.abc import Sequence
from typing import Any

from candor.revocation.ocsp.entries import Entry
from candor.revocation.ocsp.index import ResponseIndex
from candor.revocation.ocsp.settings import OcspRedisSettings

log = logging.getLogger(__name__)


class RedisResponses:
    """A :class:`~candor.revocation.ocsp.presign.ResponseSink` for the signer, and the remote store the HTTP
    app consults on a miss (:class:`~candor.revocation.ocsp.http.RemoteResponses`)."""

    def __init__(self, settings: OcspRedisSettings) -> None:
        import redis

        self.settings = settings
        self._sync: Any = redis.Redis.from_url(settings.url)
        self.channel = settings.prefix + "updates"

    def _key(self, key: bytes) -> bytes:
        return self.settings.prefix.encode() + key

    def publish(self, entries: Sequence[Entry]) -> None:
        pipe = self._sync.pipeline(transaction=False)
        announced: list[bytes] = []
        for entry in entries:
            value = entry.to_bytes()
            expire_at_ms = int(entry.next_update_ts * 1000)
            for key in entry.keys:
                pipe.set(self._key(key), value, pxat=expire_at_ms)
            announced.append(bytes((len(entry.keys[0]),)) + entry.keys[0])
        for start in range(0, len(announced), 1000):
            pipe.publish(self.channel, b"".join(announced[start : start + 1000]))
        pipe.execute()

    def get_sync(self, key: bytes) -> Entry | None:
        value = self._sync.get(self._key(key))
        return None if value is None else _decoded(value)

    async def get(self, key: bytes) -> Entry | None:
        # The (thread-safe) blocking client in a worker thread: only memory misses come here, and no
        # connection is tied to the server's event loop.
        try:
            value = await asyncio.to_thread(self._sync.get, self._key(key))
        except Exception as exc:  # Redis down: answer from memory only (the miss becomes unauthorized)
            log.warning("OCSP: Redis lookup failed: %s", exc)
            return None
        return None if value is None else _decoded(value)

    def follow(self, index: ResponseIndex) -> Follower:
        """Keep *index* current with every response published from now on (a daemon thread)."""
        follower = Follower(self, index)
        follower.start()
        return follower

    def close(self) -> None:
        self._sync.close()


class Follower:
    """Reads the update channel and replaces the announced entries in a node's memory."""

    def __init__(self, shared: RedisResponses, index: ResponseIndex) -> None:
        self.shared = shared
        self.index = index
        self._pubsub: Any = shared._sync.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(shared.channel)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ocsp-redis-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.2)
            except Exception as exc:
                log.warning("OCSP: Redis channel failed: %s", exc)
                self._stop.wait(1.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:  # a Redis error or a bad value must not end the thread: this node would stop following
                self._apply(message["data"])
            except Exception:
                log.exception("OCSP: applying announced responses failed")

    def _apply(self, announced: bytes) -> None:
        keys = _split_keys(announced)
        values = self.shared._sync.mget([self.shared._key(k) for k in keys])
        self.index.publish([e for e in (_decoded(v) for v in values if v is not None) if e is not None])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()


def _split_keys(announced: bytes) -> list[bytes]:
    """Announced keys are SHA-1 issuerKeyHash (20 bytes) + serial content (1..21 bytes), so each is prefixed
    with its length when published; see :meth:`RedisResponses.publish`."""
    keys: list[bytes] = []
    offset = 0
    while offset < len(announced):
        size = announced[offset]
        keys.append(announced[offset + 1 : offset + 1 + size])
        offset += 1 + size
    return keys


def _decoded(value: bytes) -> Entry | None:
    """A stored entry, or None for a value that is not one (another writer under the prefix, a truncated write):
    a miss, never an exception on the request path."""
    try:
        return Entry.from_bytes(value)
    except (ValueError, IndexError, OverflowError, OSError, struct.error):
        log.warning("OCSP: a value in Redis is not a stored response (%d bytes); ignored", len(value))
        return None
