"""The responder's common case answered inside uvicorn's HTTP/1.1 protocol: a GET or POST whose OCSPRequest is,
byte for byte, a pre-signed response's no-nonce request is answered from the parser's callbacks with one
``transport.write`` of status line, headers and body, with no ASGI task, scope or message per request (uvicorn
otherwise runs a task for each request, which writes the header block and the body in two ``send()`` calls).

Everything else goes to the ASGI application unchanged, so one port still serves every path: any other path or
method, a request with a nonce or in another encoding (:class:`~candor.revocation.ocsp.http.OcspApp` parses it),
garbage, a body without a Content-Length or larger than ``max_request_bytes``, a GET with a body, ``Expect:
100-continue``, HTTP/1.0, ``Connection: close``, an upgrade, and any request that arrives while an earlier one on
the connection is still with the application or while the client is not reading its answers (pipelined answers keep
their order, and uvicorn's flow control still applies). What a quick answer says is what
:meth:`OcspApp.entry_answer` says, after uvicorn's default headers (Server, Date), as the ASGI path sends it; the
access log, off in ``candor serve``, does not see quick answers.

Built on :class:`uvicorn.protocols.http.httptools_impl.HttpToolsProtocol` (uvicorn and httptools are pinned): its
connection handling (flow control, shutdown, the 400 for what httptools cannot parse) is kept, and its parser
callbacks handle every request this module does not answer. The keep-alive timeout is uvicorn's, kept with one
timer per idle period rather than one armed and cancelled per request.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from candor.revocation.ocsp.http import Answer, OcspApp, decode_get

# Encoded header lines shared by many answers, by their (name, value) pair; bounded (values come and go with time).
_LINES: dict[tuple[bytes, bytes], bytes] = {}
_MAX_LINES = 4096
_OK = STATUS_LINE[200]


class QuickProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol answering what :meth:`quick_answer` answers in one write. Subclasses define
    :meth:`quick_candidate` and :meth:`quick_answer`; by default every request goes to the application."""

    max_body: ClassVar[int] = 0  # the largest POST body answered here (a larger one goes to the application)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._quick = False  # the request being parsed may be answered here
        self._method = b""
        self._conditional = False  # it has an If-None-Match header
        self._body: list[bytes] = []
        self._defaults: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")
        self._idle_since: float | None = None  # when the connection last became idle (None: a request is open)

    # -- what a subclass answers --------------------------------------------------------------------------
    def quick_candidate(self, method: bytes, url: bytes) -> bool:
        """Whether a request with this method and URL might be answered here (once its body is read)."""
        return False

    def quick_answer(self, method: bytes, url: bytes, body: bytes) -> bytes | None:
        """The complete HTTP response (status line, headers and body) to write, or None to hand the request to the
        application. :meth:`encode` makes it from an :data:`Answer`; :attr:`headers` are the request's."""
        return None

    def default_lines(self) -> bytes:
        """uvicorn's default headers (Server, Date), encoded; uvicorn replaces the list when the Date changes."""
        defaults, encoded = self._defaults
        if defaults is not self.server_state.default_headers:
            defaults = self.server_state.default_headers
            encoded = b"".join([b"%s: %s\r\n" % pair for pair in defaults])
            self._defaults = (defaults, encoded)
        return encoded

    def encode(self, answer: Answer) -> bytes:
        status, headers, body = answer
        parts = [STATUS_LINE[status], self.default_lines()]
        parts += [_line(pair) for pair in headers]
        parts.append(b"\r\n")
        parts.append(body)
        return b"".join(parts)

    # -- parser callbacks ---------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        # The scope is made only when the application is to have the request (_to_application)
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._quick = self._conditional = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        elif name == b"if-none-match":
            self._conditional = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        self._method = method = parser.get_method()
        cycle = self.cycle
        length = self._body_length()
        if (
            (length == 0 if method == b"GET" else method == b"POST" and length is not None and length <= self.max_body)
            and (cycle is None or cycle.response_complete)
            and not self.pipeline
            and not self.expect_100_continue
            and not self.flow.write_paused  # a client not reading its answers: the application's send() waits
            and parser.should_keep_alive()
            and parser.get_http_version() == "1.1"
            and not parser.should_upgrade()
            and self.quick_candidate(method, self.url)
        ):
            self._quick = True
        else:
            self._to_application()

    def on_body(self, body: bytes) -> None:
        if self._quick:
            # at most max_body: a POST's Content-Length, which httptools holds to (a GET with a body is not quick)
            self._body.append(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._quick:
            super().on_message_complete()
            return
        self._quick = False
        body = b"".join(self._body) if self._body else b""
        self._body = []
        try:
            response = self.quick_answer(self._method, self.url, body)
        except Exception:  # as the application's own failure would be: logged; the application answers
            self.logger.exception("quick answer failed; the application answers")
            response = None
        if response is None:
            self._to_application()
            cycle = self.cycle
            cycle.body = bytearray(body)
            cycle.more_body = False
            cycle.message_event.set()
            return
        self.transport.write(response)
        self.on_response_complete()

    # -- keep-alive: one timer per idle period ------------------------------------------------------------
    def _unset_keepalive_if_required(self) -> None:
        # uvicorn calls this when data arrives and when a response completes: the connection is busy until the
        # next response completes. The timer, if armed, finds that out when it fires.
        self._idle_since = None

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive timer armed only when none is: the request count, reading resumed,
        # the next pipelined request started, or the idle period begun
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_since = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        since = self._idle_since
        if since is None:  # busy: the next completed response arms the timer again
            return
        left = since + self.timeout_keep_alive - self.loop.time()
        if left > 0:  # it became busy, then idle again, since the timer was armed
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_due)
        else:
            self.timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    # -- internals ----------------------------------------------------------------------------------------
    def _body_length(self) -> int | None:
        """The length of a body this protocol may read itself: its one Content-Length, 0 without one; None when
        uvicorn's handling is to read it (chunked, a Content-Length twice or not a number)."""
        found = None
        for name, value in self.headers:
            if name == b"content-length":
                if found is not None or not value.isdigit():
                    return None
                found = int(value)
            elif name == b"transfer-encoding":
                return None
        return found or 0

    def _to_application(self) -> None:
        """Give the request parsed so far to uvicorn's own handling (scope, ASGI task or pipeline queue)."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()  # the scope, as uvicorn makes it
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers
        super().on_headers_complete()


class OcspProtocol(QuickProtocol):
    """:class:`QuickProtocol` answering the pre-signed responses of :attr:`apps` (the responders whose
    :attr:`~OcspApp.prefix` a path is under): make one with :meth:`serving`."""

    apps: ClassVar[tuple[OcspApp, ...]] = ()
    # per app: the app, its prefix, the prefix and "/", its request size limit, and the capped Cache-Control line
    # followed by the blank line that ends the header block
    routes: ClassVar[tuple[tuple[OcspApp, str, str, int, bytes], ...]] = ()

    @classmethod
    def serving(cls, apps: Sequence[OcspApp]) -> type[OcspProtocol]:
        """A protocol class for uvicorn's ``Config(http=...)`` answering for *apps*, which the ASGI application
        must serve at their prefixes too (it answers every request this protocol does not)."""
        limit = max((app.settings.max_request_bytes for app in apps), default=0)
        routes = tuple(
            (app, app.prefix, app.prefix + "/", app.settings.max_request_bytes, b"%s: %s\r\n\r\n" % app.capped)
            for app in apps
        )
        return type(cls.__name__, (cls,), {"apps": tuple(apps), "routes": routes, "max_body": limit})

    def quick_candidate(self, method: bytes, url: bytes) -> bool:
        return url.startswith(b"/ocsp")

    def quick_answer(self, method: bytes, url: bytes, body: bytes) -> bytes | None:
        path = _path(self.root_path, url)
        if path is None:
            return None
        for app, prefix, under, limit, tail in self.routes:
            if path.startswith(under) or path == prefix:
                if method == b"GET":
                    raw = decode_get(path[len(under) :], limit)
                    if raw is None:
                        return None
                elif len(body) <= limit:
                    raw = body
                else:
                    return None
                entry = app.index.by_request.get(raw)
                if entry is None:
                    return None
                if self._conditional or entry.next_update_ts - app.timestamp() < app.cap:
                    return self.encode(app.entry_answer(entry, self.headers))  # 304, tryLater, a shorter max-age
                # what entry_answer answers in the usual case: the response, its headers and the capped max-age
                return b"".join(
                    (_OK, self.default_lines(), entry.lines, b"etag: ", entry.etag, b"\r\n", tail, entry.der)
                )
        return None


def _line(pair: tuple[bytes, bytes]) -> bytes:
    line = _LINES.get(pair)
    if line is None:
        line = b"%s: %s\r\n" % pair
        if pair[0] != b"etag":  # an ETag is one response's own
            if len(_LINES) >= _MAX_LINES:
                _LINES.clear()
            _LINES[pair] = line
    return line


def _path(root_path: str, url: bytes) -> str | None:
    """scope["path"] as uvicorn makes it from the request target; None when uvicorn would fail on it."""
    if not url.startswith(b"/") or b"?" in url or b"#" in url:
        try:  # uvicorn's own parse, for the rare target with a query or fragment
            raw = httptools.parse_url(url).path
        except httptools.HttpParserInvalidURLError:
            return None
    else:
        raw = url
    try:
        path = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if "%" in path:
        path = _unquote(path)
    return root_path + path if root_path else path


def _unquote(path: str) -> str:
    """``urllib.parse.unquote(path)`` (what uvicorn does), several times faster for what base64 is escaped with in
    a GET path (RFC 6960 A.1: '+', '/' and '=' URL-encoded); unquote itself for anything else."""
    quick = path.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
    if "%" in quick:
        return urllib.parse.unquote(path)
    return quick
