"""OCSP responder throughput (issue 6, acceptance 5) on this machine, every peer in the same run.

1. Pre-signing: 100,000 serial rows are inserted under tls-e1 (Core SQL, one transaction) and
   ``OcspSigner.presign_all`` signs and stores a response for each with the P-256 delegated responder, on one
   core: ``presign_per_s_per_core`` is responses per CPU second.
2. Candor's responder: ``OcspApp`` over uvicorn (httptools, uvloop) with the protocol ``candor serve`` uses
   (``OcspProtocol``: pre-signed answers written from the parser's callbacks), in ``--workers`` processes sharing
   one SO_REUSEPORT port, each loading the 100,000 responses from the database; wrk (Debian) cycles through the
   100,000 distinct GET URLs with a Lua script.
3. The ceiling: the same stack and processes answering every request with fixed bytes of the same size from the
   same protocol callbacks (``QuickProtocol``). ``BENCH_OCSP_STACK=asgi`` runs both as bare ASGI apps on uvicorn's
   own httptools protocol instead (the stack of the earlier figures).
4. ``openssl ocsp`` as responder (index.txt with the same serials, ``-rsigner/-rkey/-CA``, one process, signing
   each response), in its own network namespace (it binds every address), driven by ApacheBench with POSTs
   (it stalls on wrk's probe connection; ../shared/reference/ct-ocsp-tsa-notes.md).
5. A nonce flood against ``[ocsp] nonce = "sign"``: every GET carries a 16-octet nonce, so none is in the index by
   its bytes and each asks for a signature; each worker signs at most ``on_demand_concurrency`` at once and answers
   the rest from the pre-signed store. wrk counts the answers signed for the request (``Cache-Control:
   no-store``). The same flood against ``nonce = "cache"`` is the baseline.
6. Refresh: the clock moved past ``refresh_at``, every response re-signed (the UPDATE path) on one core with the
   in-memory index as a sink, as ``candor serve``'s pre-signer does at half the validity.

The last line is one JSON object: responses_per_s, p99_ms, ratio_to_ceiling, ratio_to_openssl,
presign_per_s_per_core (and the figures of 5 and 6).
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from candor.clock import SystemClock

# What `candor init` ships ([ocsp] in its candor.toml): one SingleResponse (SHA-1 CertID) per response.
SETTINGS_TOML = {"validity_hours": 72, "sha256_cert_ids": False}


ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "issuance")]

COUNT = int(os.environ.get("BENCH_OCSP_COUNT", "100000"))
DURATION = os.environ.get("BENCH_OCSP_DURATION", "10s")
CONNECTIONS = int(os.environ.get("BENCH_OCSP_CONNECTIONS", "64"))
# "quick": the OCSP protocol (candor.revocation.ocsp.protocol) answering pre-signed responses in uvicorn's parser
# callbacks, and the ceiling through the same protocol; "asgi": both as bare ASGI apps on uvicorn's own protocol
STACK = os.environ.get("BENCH_OCSP_STACK", "quick")
NONCE_PATHS = 20_000  # distinct nonce requests wrk cycles through (each still asks for a signature)

LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local n = #paths
local i = 0
local threads = {}
signed = 0
setup = function(thread) threads[#threads + 1] = thread end
init = function(args) i = math.random(n) end
request = function()
  i = i %% n + 1
  return wrk.format("GET", paths[i])
end
%s
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("signed") end
  io.write(string.format(
    "JSON {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p99_us\\": %%d, \\"errors\\": %%d, \\"non2xx\\": %%d, "
    .. "\\"signed\\": %%d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, total))
end
"""
# For the nonce run only (a Lua call per response slows wrk): count the answers signed for the request.
COUNT_SIGNED = """
response = function(status, headers, body)
  if headers["Cache-Control"] == "no-store" or headers["cache-control"] == "no-store" then signed = signed + 1 end
end
"""


def serve(database_url: str, port: int, workers: int, fixed: int, nonce_home: str = "") -> None:
    """Run *workers* uvicorn processes on one SO_REUSEPORT socket: the responder (signing nonce requests with the
    key stores of *nonce_home* when given), or (*fixed* > 0) fixed bytes."""
    import uvicorn

    from candor.server import GC_THRESHOLDS, SWITCH_INTERVAL_SECONDS

    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)  # as candor serve's workers (it matters with threads: nonces)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            break
        children.append(pid)
    app: Any
    http: Any
    if fixed:
        from candor.revocation.ocsp.protocol import QuickProtocol

        body = b"\x30" * fixed
        headers = [(b"content-type", b"application/ocsp-response"), (b"content-length", b"%d" % fixed)]
        start = {"type": "http.response.start", "status": 200, "headers": headers}
        message = {"type": "http.response.body", "body": body}

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                await send(start)
                await send(message)

        class Fixed(QuickProtocol):
            """The same protocol and request handling as Candor's, every request answered with the fixed bytes."""

            def quick_candidate(self, method: bytes, url: bytes) -> bool:
                return True

            def quick_answer(self, method: bytes, url: bytes, body_: bytes) -> bytes | None:
                return self.encode((200, headers, body))

        http = Fixed if STACK == "quick" else "httptools"
    else:
        from candor.revocation.ocsp.http import OcspApp
        from candor.revocation.ocsp.index import ResponseIndex, load_from_database
        from candor.revocation.ocsp.settings import OcspSettings
        from candor.storage import Database

        index = ResponseIndex()
        db = Database(database_url)
        load_from_database(db, index)
        if not nonce_home:
            db.dispose()
            app = OcspApp(index, OcspSettings(**SETTINGS_TOML))
        else:
            from candor.config import load_config
            from candor.keys import KeyStores
            from candor.revocation.ocsp.ondemand import NonceSigner

            settings = OcspSettings(**SETTINGS_TOML, nonce="sign")
            stores = KeyStores(load_config(Path(nonce_home)).keys.stores, base_dir=Path(nonce_home), environ={})
            signer = NonceSigner(db, stores, SystemClock(), settings, actor="bench")
            app = OcspApp(index, settings, on_demand=signer)
        from candor.revocation.ocsp.protocol import OcspProtocol

        http = OcspProtocol.serving([app]) if STACK == "quick" else "httptools"
    if os.environ.get("BENCH_OCSP_GC", "freeze") == "freeze":  # as candor serve's workers, once built
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
    config = uvicorn.Config(app, http=http, loop="uvloop", log_level="error", lifespan="off",
                            access_log=False)  # fmt: skip
    server = uvicorn.Server(config)
    os.write(1, b"READY\n")  # one write: the workers share the pipe
    server.run(sockets=[sock])


def wrk(url: str, paths_file: Path, scratch: Path, *, count_signed: bool = False) -> dict[str, float]:
    script = scratch / "cycle.lua"
    script.write_text(LUA % (paths_file, COUNT_SIGNED if count_signed else ""))
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", DURATION, "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    result = json.loads(line[5:])
    return {
        "rps": result["requests"] / result["seconds"],
        "p99_ms": result["p99_us"] / 1000,
        "errors": result["errors"] + result["non2xx"],
        "requests": result["requests"],
        "signed": result["signed"],
    }


def run_server(
    database_url: str, workers: int, fixed: int, *, nonce_home: Path | None = None
) -> tuple[subprocess.Popen[str], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", database_url, "--port", str(port), "--workers", str(workers),
         "--fixed", str(fixed), *(("--nonce-home", str(nonce_home)) if nonce_home else ())],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    for _ in range(workers):
        assert process.stdout.readline().strip() == "READY"
    time.sleep(1.0)
    return process, port


def timed_presign(signer: Any, what: str) -> float:
    """``signer.presign_all()`` pinned to one core; responses per CPU second. A first pass of 10 loads the responder
    key and lints the template outside the timing."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if cores is not None:
        os.sched_setaffinity(0, {sorted(cores)[0]})
    try:
        signer.presign_new(limit=10)
        cpu, wall = time.process_time(), time.perf_counter()
        last = [0.0]

        def progress(done: int, _total: int) -> None:
            if time.perf_counter() - last[0] > 1.0:
                last[0] = time.perf_counter()
                print(f"  {what} {done:,}", flush=True)

        signed = signer.presign_all(progress=progress)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        if cores is not None:
            os.sched_setaffinity(0, cores)
    print(f"{what} {signed + 10:,} responses in {wall:.2f} s ({cpu:.2f} s CPU): {signed / cpu:,.0f}/s per core")
    return float(signed / cpu)


def nonce_request(hashes: Any, serial: int) -> bytes:
    """An OCSPRequest for *serial* with a fresh 16-octet nonce (what openssl ocsp sends without -no_nonce)."""
    from candor.revocation.ocsp import der

    cert_id = hashes.cert_ids(serial, sha256=False)[0]
    extensions = der.sequence(der.nonce_extension(secrets.token_bytes(16)))  # requestExtensions [2] EXPLICIT
    request_list = der.sequence(der.sequence(cert_id))
    return der.sequence(der.sequence(request_list, der.tlv(0xA2, extensions)))


def stop(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # a worker still draining keep-alive connections
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fixed", type=int, default=0)
    parser.add_argument("--nonce-home", default="")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workers, args.fixed, args.nonce_home)
        return

    load_start = os.getloadavg()[0]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509 import ocsp
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from issuing import build_home, open_ca  # type: ignore[import-not-found]
    from sqlalchemy import insert

    from candor.keys import KeyAlgorithm
    from candor.revocation.ocsp.index import ResponseIndex
    from candor.revocation.ocsp.presign import OcspSigner
    from candor.revocation.ocsp.responses import IssuerHashes, request_for
    from candor.revocation.ocsp.settings import OcspSettings
    from candor.storage import repositories
    from candor.storage.models import SerialRecord
    from candor.storage.serials import serial_to_hex

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        home = build_home(scratch / "home")
        ca = open_ca(home, now=datetime.now(UTC).replace(microsecond=0))
        now = ca.clock.now()
        with ca.db.session() as session:
            issuer = repositories.issuer_by_name(session, "tls-e1")
            assert issuer is not None
            issuer_id, issuer_der = issuer.id, issuer.certificate_der
            issuer_key_ref = (issuer.key.store, issuer.key.handle, issuer.key.algorithm)
        serials = [secrets.randbits(127) | (1 << 100) for _ in range(COUNT)]
        rows = [
            {"issuer_id": issuer_id, "serial_hex": serial_to_hex(s),
             "status": "issued", "expires_at": now + timedelta(days=90), "created_at": now}
            for s in serials
        ]  # fmt: skip
        with ca.db.engine.begin() as connection:
            connection.execute(insert(SerialRecord.__table__), rows)  # type: ignore[arg-type]
        print(f"inserted {COUNT} serials under tls-e1", flush=True)

        # 1. pre-signing on one core
        signer = OcspSigner(ca.db, ca.stores, ca.clock, OcspSettings(**SETTINGS_TOML), actor="bench")
        presign = timed_presign(signer, "pre-signed")

        # the 100,000 GET paths (RFC 6960 A.1), as openssl -no_nonce would send them
        issuer_certificate = x509.load_der_x509_certificate(issuer_der)
        hashes_ = IssuerHashes.of(issuer_certificate)
        paths = scratch / "paths.txt"
        with paths.open("w") as out:
            for serial in serials:
                request = request_for(hashes_.cert_ids(serial, sha256=False)[0])
                out.write(
                    "/ocsp/tls-e1/" + base64.b64encode(request).decode().replace("+", "%2B").replace("/", "%2F") + "\n"
                )

        database_url = str(ca.db.engine.url.render_as_string(hide_password=False))
        ca.db.dispose()
        results: dict[str, dict[str, float]] = {}
        size = 0
        for label in ("candor", "ceiling"):
            process, port = run_server(database_url, args.workers, 0 if label == "candor" else size)
            try:
                with paths.open() as first:
                    sample = urllib.request.urlopen(f"http://127.0.0.1:{port}{first.readline().strip()}").read()
                if label == "candor":
                    response = ocsp.load_der_ocsp_response(sample)
                    assert next(iter(response.responses)).certificate_status is ocsp.OCSPCertStatus.GOOD
                    size = len(sample)
                results[label] = wrk(f"http://127.0.0.1:{port}", paths, scratch)
            finally:
                stop(process)
            print(f"{label}: {results[label]['rps']:,.0f} responses/s, p99 {results[label]['p99_ms']:.2f} ms, "
                  f"errors {results[label]['errors']:.0f} ({len(sample)} bytes)", flush=True)  # fmt: skip

        # 5. a nonce flood against nonce = "sign"
        nonced = scratch / "nonced.txt"
        with nonced.open("w") as out:
            for serial in serials[:NONCE_PATHS]:
                request = nonce_request(hashes_, serial)
                out.write("/ocsp/tls-e1/" + base64.b64encode(request).decode().replace("+", "%2B").replace("/", "%2F"))
                out.write("\n")
        for label, nonce_home in (("nonce", home), ("nonce_cache", None)):
            process, port = run_server(database_url, args.workers, 0, nonce_home=nonce_home)
            try:
                results[label] = wrk(f"http://127.0.0.1:{port}", nonced, scratch, count_signed=True)
            finally:
                stop(process)
            flood = results[label]
            print(f"nonce flood, {'sign' if nonce_home else 'cache'}: {flood['rps']:,.0f} responses/s, "
                  f"p99 {flood['p99_ms']:.2f} ms, {flood['signed'] / max(flood['requests'], 1):.1%} signed on demand",
                  flush=True)  # fmt: skip

        # 4. openssl ocsp: its own responder key and certificate from the same issuer, the same serials
        issuer_key = ca.stores.get(issuer_key_ref[0]).load(issuer_key_ref[1], KeyAlgorithm(issuer_key_ref[2]))
        responder_key = ec.generate_private_key(ec.SECP256R1())
        responder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openssl bench responder")]))
            .issuer_name(issuer_certificate.subject)
            .public_key(responder_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
            .add_extension(x509.OCSPNoCheck(), critical=False)
            .sign(issuer_key, hashes.SHA256())
        )
        (scratch / "rsigner.pem").write_bytes(responder.public_bytes(serialization.Encoding.PEM))
        (scratch / "rkey.pem").write_bytes(
            responder_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (scratch / "ca.pem").write_bytes(issuer_certificate.public_bytes(serialization.Encoding.PEM))
        expiry = (now + timedelta(days=90)).strftime("%y%m%d%H%M%SZ")
        (scratch / "index.txt.attr").write_text("unique_subject = no\n")
        with (scratch / "index.txt").open("w") as index_file:
            for serial in serials:
                index_file.write(f"V\t{expiry}\t\t{serial:X}\tunknown\t/CN=bench\n")
        (scratch / "req.der").write_bytes(request_for(hashes_.cert_ids(serials[0], sha256=False)[0]))
        openssl_rps = openssl_peer(scratch)
        print(f"openssl ocsp: {openssl_rps:,.0f} responses/s (ab, POST, one process)", flush=True)

        # 6. refresh at half the validity: every response re-signed (UPDATE), the in-memory index as a sink
        settings = OcspSettings(**SETTINGS_TOML)
        ca.clock.advance(settings.refresh_after + timedelta(seconds=1))
        refresher = OcspSigner(ca.db, ca.stores, ca.clock, settings, actor="bench", sinks=[ResponseIndex()])
        refresh = timed_presign(refresher, "refreshed")
        ca.stores.close()

    candor = results["candor"]
    summary = {
        "responses_per_s": round(candor["rps"]),
        "p99_ms": round(candor["p99_ms"], 2),
        "ratio_to_ceiling": round(candor["rps"] / results["ceiling"]["rps"], 3),
        "ratio_to_openssl": round(candor["rps"] / openssl_rps, 2) if openssl_rps else None,
        "presign_per_s_per_core": round(presign),
        "refresh_with_index_per_s_per_core": round(refresh),
        "nonce_flood_per_s": round(results["nonce"]["rps"]),
        "nonce_flood_p99_ms": round(results["nonce"]["p99_ms"], 2),
        "nonce_signed_fraction": round(results["nonce"]["signed"] / max(results["nonce"]["requests"], 1), 3),
        "nonce_flood_cache_mode_per_s": round(results["nonce_cache"]["rps"]),
        "nonce_flood_cache_mode_p99_ms": round(results["nonce_cache"]["p99_ms"], 2),
        "ceiling_per_s": round(results["ceiling"]["rps"]),
        "openssl_per_s": round(openssl_rps),
        "workers": args.workers,
        "connections": CONNECTIONS,
        "serials": COUNT,
        "cores": os.cpu_count(),
        "stack": STACK,
        "load_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],  # at the start and at the end
    }
    print(json.dumps(summary))


def openssl_peer(scratch: Path) -> float:
    """openssl ocsp -port in a network namespace of its own, ApacheBench POSTing in the same namespace."""
    if shutil.which("ab") is None or shutil.which("unshare") is None:
        print("openssl peer skipped: needs ab (Debian apache2-utils) and unshare", flush=True)
        return 0.0
    script = f"""
ip link set lo up
cd {scratch}
openssl ocsp -index index.txt -port 18888 -rsigner rsigner.pem -rkey rkey.pem -CA ca.pem -nmin 60 >openssl.log 2>&1 &
pid=$!
sleep 1
ab -q -n 20000 -c 16 -p req.der -T application/ocsp-request http://127.0.0.1:18888/ 2>&1
kill $pid || true; tail -3 openssl.log
"""
    done = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    out = done.stdout
    if "Requests per second" not in out:
        print(f"openssl peer failed: {done.stdout[-500:]} {done.stderr[-500:]}", flush=True)
    match = re.search(r"Requests per second:\s+([\d.]+)", out)
    return float(match.group(1)) if match else 0.0


if __name__ == "__main__":
    main()
