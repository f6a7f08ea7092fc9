"""Reading an RFC 6962 log over HTTP: get-sth (4.3), get-sth-consistency (4.4), get-entries (4.6).

Standard library :mod:`http.client`, one connection per request, a timeout and a bound on every answer, like
the submission transport (:mod:`candor.ct.submit.transport`). Answers are parsed into typed values here, so
nothing downstream handles the log's JSON; anything malformed is a :class:`LogReadError` naming the endpoint.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from candor.ct.log.merkle import HASH_SIZE

MAX_ANSWER_BYTES = 32 * 1024 * 1024  # get-entries: a page of up to 1,000 entries with their chains
DEFAULT_PAGE = 1000  # entries asked for per get-entries request; a log may answer with fewer (RFC 6962 4.6)


class LogReadError(Exception):
    """The log did not answer, or answered something that is not what RFC 6962 section 4 describes."""


@dataclass(frozen=True)
class TreeHead:
    """RFC 6962 4.3 get-sth output: a signed tree head (3.5)."""

    tree_size: int
    timestamp: int  # ms since the epoch
    root_hash: bytes
    signature: bytes  # the TreeHeadSignature's DigitallySigned struct (RFC 5246 4.7)

    def describe(self) -> str:
        return f"size {self.tree_size} root {self.root_hash.hex()[:16]}… at {self.timestamp}"


@dataclass(frozen=True)
class RawEntry:
    """RFC 6962 4.6 get-entries item: the MerkleTreeLeaf and the chain data, at its index."""

    index: int
    leaf_input: bytes
    extra_data: bytes


class LogReader(Protocol):
    def get_sth(self) -> TreeHead: ...

    def get_consistency(self, first: int, second: int) -> list[bytes]: ...

    def get_entries(self, start: int, end: int) -> list[RawEntry]: ...


class HttpLogReader:
    """The read API of the log whose API base is *url* (the log list's ``url``; requests go to
    ``<url>ct/v1/...``)."""

    def __init__(self, url: str, *, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self._base = url if url.endswith("/") else url + "/"
        parts = urlsplit(self._base)
        if parts.hostname is None or parts.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url}")
        self._timeout = timeout
        self._ssl = ssl_context or ssl.create_default_context()

    def get_sth(self) -> TreeHead:
        """RFC 6962 4.3."""
        document = self._get("get-sth", {})
        size, timestamp = _uint64(document, "tree_size", "get-sth"), _uint64(document, "timestamp", "get-sth")
        root = _b64(document, "sha256_root_hash", "get-sth")
        if len(root) != HASH_SIZE:
            raise LogReadError("get-sth: sha256_root_hash is not 32 bytes")
        return TreeHead(size, timestamp, root, _b64(document, "tree_head_signature", "get-sth"))

    def get_consistency(self, first: int, second: int) -> list[bytes]:
        """RFC 6962 4.4: the consistency proof (2.1.2) between tree sizes *first* and *second*."""
        document = self._get("get-sth-consistency", {"first": first, "second": second})
        nodes = document.get("consistency")
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise LogReadError("get-sth-consistency: consistency is not a list of base64 hashes")
        return [_decode(n, "get-sth-consistency: consistency") for n in nodes]

    def get_entries(self, start: int, end: int) -> list[RawEntry]:
        """RFC 6962 4.6: entries *start*..*end* inclusive; the log may return a prefix, never more, never none."""
        document = self._get("get-entries", {"start": start, "end": end})
        items = document.get("entries")
        if not isinstance(items, list) or not items:
            raise LogReadError(f"get-entries {start}..{end}: no entries in the answer")
        if len(items) > end - start + 1:
            raise LogReadError(f"get-entries {start}..{end}: {len(items)} entries, more than asked for")
        entries: list[RawEntry] = []
        for offset, item in enumerate(items):
            where = f"get-entries: entry {start + offset}"
            if not isinstance(item, dict):
                raise LogReadError(f"{where} is not a JSON object")
            entries.append(RawEntry(start + offset, _b64(item, "leaf_input", where), _b64(item, "extra_data", where)))
        return entries

    def _get(self, endpoint: str, query: dict[str, int]) -> dict[str, object]:
        parts = urlsplit(self._base)
        assert parts.hostname is not None
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=self._timeout, context=self._ssl
            )
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self._timeout)
        path = f"{parts.path}ct/v1/{endpoint}" + (f"?{urlencode(query)}" if query else "")
        try:
            connection.request("GET", path, headers={"Accept": "application/json", "User-Agent": "candor-ct-audit"})
            response = connection.getresponse()
            body = response.read(MAX_ANSWER_BYTES + 1)
        except TimeoutError:
            raise LogReadError(f"{endpoint}: no answer within {self._timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise LogReadError(f"{endpoint}: {_describe(exc)}") from None
        finally:
            connection.close()
        if len(body) > MAX_ANSWER_BYTES:
            raise LogReadError(f"{endpoint}: the answer is larger than {MAX_ANSWER_BYTES} bytes")
        if response.status != 200:
            raise LogReadError(f"{endpoint}: HTTP {response.status} {_error_text(body)}".rstrip())
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise LogReadError(f"{endpoint}: the answer is not JSON") from None
        if not isinstance(document, dict):
            raise LogReadError(f"{endpoint}: the answer is not a JSON object")
        return document


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _uint64(document: dict[str, object], name: str, where: str) -> int:
    value = document.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
        raise LogReadError(f"{where}: {name} is missing or not a uint64")
    return value


def _b64(document: dict[str, object], name: str, where: str) -> bytes:
    value = document.get(name)
    if not isinstance(value, str):
        raise LogReadError(f"{where}: {name} is missing or not a string")
    return _decode(value, f"{where}: {name}")


def _decode(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise LogReadError(f"{where} is not valid base64") from None


def _error_text(body: bytes) -> str:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ""
    message = document.get("error") if isinstance(document, dict) else None
    return f"({str(message)[:200]})" if message else ""


__all__ = ["DEFAULT_PAGE", "HttpLogReader", "LogReadError", "LogReader", "RawEntry", "TreeHead"]
