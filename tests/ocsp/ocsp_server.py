"""A responder on a loopback port: the OCSP ASGI app under uvicorn, in a thread, with the protocol ``candor serve``
uses (httptools, pre-signed answers from the parser's callbacks: candor.revocation.ocsp.protocol) or, with
*quick* False, uvicorn's own httptools protocol."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from candor.revocation.ocsp.http import OcspApp
from candor.revocation.ocsp.protocol import OcspProtocol


@contextmanager
def serving(app: OcspApp, *, quick: bool = True) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    http = OcspProtocol.serving([app]) if quick else "httptools"
    config = uvicorn.Config(app, log_level="warning", http=http, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
