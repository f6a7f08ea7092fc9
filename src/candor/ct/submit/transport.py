"""One HTTP POST to a log, with a timeout and a bounded answer: the only network code of CT submission.

The standard library's :mod:`http.client` does this without a runtime dependency; tests and other deployments
can hand :class:`~candor.ct.submit.client.CtSubmitter` any object with the same ``post_json`` method.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

MAX_ANSWER_BYTES = 64 * 1024  # an SCT answer is a few hundred bytes; an error page is allowed some room


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    retry_after: float | None = None  # seconds, from a Retry-After header in delta-seconds form


class TransportError(Exception):
    """No HTTP answer: the connection failed, timed out, or the answer was not HTTP."""


class Transport(Protocol):
    def post_json(self, url: str, body: bytes, *, timeout: float) -> HttpAnswer: ...


class HttpTransport:
    """POST over HTTP/1.1, one connection per request (a submission is a handful of requests per certificate)."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, user_agent: str = "candor-ct-submit") -> None:
        self._ssl = ssl_context or ssl.create_default_context()
        self._user_agent = user_agent

    def post_json(self, url: str, body: bytes, *, timeout: float) -> HttpAnswer:
        parts = urlsplit(url)
        if parts.hostname is None or parts.scheme not in ("http", "https"):
            raise TransportError(f"not an http(s) URL: {url}")
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=self._ssl)
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": self._user_agent}
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read(MAX_ANSWER_BYTES + 1)
            if len(data) > MAX_ANSWER_BYTES:
                raise TransportError(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
            return HttpAnswer(response.status, data, _retry_after(response.getheader("Retry-After")))
        except TimeoutError:
            raise TransportError(f"no answer within {timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(_describe(exc)) from None
        finally:
            connection.close()


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None  # the HTTP-date form is not worth parsing for a backoff hint
    return float(value.strip())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


__all__ = ["MAX_ANSWER_BYTES", "HttpAnswer", "HttpTransport", "Transport", "TransportError"]
