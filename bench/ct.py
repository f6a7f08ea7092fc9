"""CT log throughput: add-pre-chain submissions per second, sustained, with integration, on loopback.

A fresh data directory (``candor init``: the default ceremony, whose log keys are log-a and log-b) gets a
``[[ct.logs]]`` entry; a separate process serves log-a with uvicorn (the RFC 6962 routes, the batch writer,
the sequencer and the static-ct-api files), on SQLite with full fsync. Precertificates of the embedded
default's ECDSA issuer (tls-e1) are made beforehand. Concurrent keep-alive clients then submit them for a
fixed time. Counted: only entries present in a signed tree head at the end (entries_per_s), and for each
submission the time from sending it to the first signed tree head that covers it (sth_latency_s, from
polling get-sth every 20 ms). The last line printed is one JSON object.

Environment: BENCH_CT_SECONDS (default 20), BENCH_CT_CLIENTS (default 64), BENCH_CT_RATE (precertificates
made per second of the run, default 2500), BENCH_CT_PROFILE (a path: py-spy records the log process there).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CANDOR = ROOT / ".venv" / "bin" / "candor"
SECONDS = float(os.environ.get("BENCH_CT_SECONDS", "20"))
CLIENTS = int(os.environ.get("BENCH_CT_CLIENTS", "64"))
RATE = int(os.environ.get("BENCH_CT_RATE", "2500"))
PROFILE = os.environ.get("BENCH_CT_PROFILE")
LOG_SECTION = """
[[ct.logs]]
name = "log-a"
operator = "Candor Local Log Operator A"
roots = ["public/issuers/root-x1.pem"]
mmd_seconds = 60
integrate_interval_ms = 500
"""


def serve(home: Path, port: int) -> None:
    """The log process: log-a of *home* on 127.0.0.1:*port* until terminated."""
    import signal

    import uvicorn
    from starlette.applications import Starlette

    from candor.clock import SystemClock
    from candor.config import database_url, load_config
    from candor.ct.log import ct_log_routes, open_log
    from candor.keys import KeyStores
    from candor.storage import Database

    config = load_config(home)
    db = Database(database_url(config.database, home))
    stores = KeyStores(config.keys.stores, base_dir=home, environ=os.environ)
    settings = config.ct.logs[0]
    ct_log = open_log(
        settings,
        db=db,
        clock=SystemClock(),
        stores=stores,
        data_dir=home,
        public_base_url=config.server.public_base_url,
    )
    ct_log.start()
    app = Starlette(routes=ct_log_routes(ct_log, prefix=settings.prefix))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    server.run()
    ct_log.close()
    stores.close()
    db.dispose()


def make_precertificates(home: Path, count: int) -> list[bytes]:
    """*count* add-pre-chain request bodies: precertificates signed by the default issuer tls-e1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    from candor.config import database_url, load_config
    from candor.keys import KeyAlgorithm, KeyStores
    from candor.storage import Database, issuer_by_name

    config = load_config(home)
    db = Database(database_url(config.database, home))
    stores = KeyStores(config.keys.stores, base_dir=home, environ=os.environ)
    with db.session() as session:
        issuer = issuer_by_name(session, "tls-e1")
        assert issuer is not None
        issuer_der, store, handle = issuer.certificate_der, issuer.key.store, issuer.key.handle
    key = stores.get(store).load(handle, KeyAlgorithm.ECDSA_P256)
    issuer_name = x509.load_der_x509_certificate(issuer_der).subject
    subscriber = ec.generate_private_key(ec.SECP256R1()).public_key()
    now = datetime.now(UTC)
    issuer_b64 = base64.b64encode(issuer_der).decode()
    bodies = []
    for index in range(count):
        name = f"h{index}.bench.example.com"
        precert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(issuer_name)
            .public_key(subscriber)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=True)
            .add_extension(x509.PrecertPoison(), critical=True)
            .sign(key, hashes.SHA256())  # type: ignore[arg-type]
        )
        chain = [base64.b64encode(precert.public_bytes(Encoding.DER)).decode(), issuer_b64]
        bodies.append(json.dumps({"chain": chain}).encode())
    stores.close()
    db.dispose()
    return bodies


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> tuple[int, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def _post(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def load(port: int, bodies: list[bytes]) -> dict[str, float]:
    path = "/ct/log-a/ct/v1/add-pre-chain"
    sent: dict[int, float] = {}  # leaf index -> when its submission was sent
    covered: dict[int, float] = {}  # leaf index -> latency to the first tree head that includes it
    answered: list[float] = []  # add-pre-chain round trips: the SCT comes back once the entry is durable
    errors = 0
    queue = iter(bodies)
    stop_at = time.monotonic() + SECONDS
    sth_raw = b"GET /ct/log-a/ct/v1/get-sth HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for body in queue:
            if time.monotonic() >= stop_at:
                break
            started = time.monotonic()
            status, answer = await _request(reader, writer, _post(path, body))
            if status != 200:
                errors += 1
                continue
            answered.append(time.monotonic() - started)
            extensions = base64.b64decode(json.loads(answer)["extensions"])
            sent[int.from_bytes(extensions[3:8], "big")] = started  # static-ct-api leaf_index
        writer.close()

    async def watch(until: float) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        size = 0
        waiting: list[int] = []
        while time.monotonic() < until:
            _, answer = await _request(reader, writer, sth_raw)
            seen, new_size = time.monotonic(), json.loads(answer)["tree_size"]
            if new_size > size:
                for index in range(size, new_size):
                    if index in sent:
                        covered[index] = seen - sent[index]
                    else:
                        waiting.append(index)
                size = new_size
            if time.monotonic() > stop_at and size >= (max(sent) + 1 if sent else 0):
                break
            await asyncio.sleep(0.02)
        writer.close()
        return size

    started = time.monotonic()
    watcher = asyncio.create_task(watch(stop_at + 60))  # the MMD: everything must be in a tree head by then
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    elapsed = time.monotonic() - started
    final_size = await watcher
    latencies = sorted(covered.values())
    answered.sort()
    in_tree = sum(1 for index in sent if index < final_size)
    return {
        "submitted": len(sent),
        "in_tree": in_tree,
        "errors": errors,
        "elapsed": elapsed,
        "entries_per_s": in_tree / elapsed,
        "sth_latency_s": statistics.mean(latencies) if latencies else float("nan"),
        "sth_latency_p99_s": latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
        "sth_latency_max_s": latencies[-1] if latencies else float("nan"),
        "sct_latency_p50_s": answered[len(answered) // 2] if answered else float("nan"),
        "sct_latency_p99_s": answered[int(len(answered) * 0.99)] if answered else float("nan"),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(Path(sys.argv[2]), int(sys.argv[3]))
        return
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        port = _free_port()
        subprocess.run([str(CANDOR), "--data-dir", str(home), "init", "--port", str(port)], check=True,
                       capture_output=True)  # fmt: skip
        with (home / "candor.toml").open("a") as config:
            config.write(LOG_SECTION)
        made = time.monotonic()
        bodies = make_precertificates(home, int(RATE * SECONDS))
        print(f"made {len(bodies)} precertificates in {time.monotonic() - made:.1f} s")
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(home), str(port)])
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    asyncio.run(asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1))
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the log did not start"
                    time.sleep(0.1)
            spy = None
            if PROFILE:
                spy = subprocess.Popen(
                    [str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(server.pid), "--duration",
                     str(int(SECONDS)), "--rate", "200", "--threads", "-f", "raw", "-o", PROFILE],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            result = asyncio.run(load(port, bodies))
            if spy is not None:
                spy.wait(timeout=60)
        finally:
            server.terminate()
            server.wait(timeout=60)
    rate, latency = result["entries_per_s"], result["sth_latency_s"]
    print(
        f"{result['in_tree']:.0f} of {result['submitted']:.0f} submissions in a signed tree head; "
        f"{result['errors']:.0f} errors; {CLIENTS} clients for {result['elapsed']:.1f} s"
    )
    print(f"add-pre-chain with integration: {rate:.0f} entries/s on {os.cpu_count()} cores (SQLite, full fsync)")
    print(
        f"submission to signed tree head: mean {latency:.3f} s, p99 {result['sth_latency_p99_s']:.3f} s, "
        f"max {result['sth_latency_max_s']:.3f} s (integration every 500 ms)"
    )
    print(f"add-pre-chain round trip (SCT after a durable commit): p50 {result['sct_latency_p50_s']:.3f} s, "
          f"p99 {result['sct_latency_p99_s']:.3f} s")  # fmt: skip
    print(
        json.dumps(
            {
                "entries_per_s": round(rate, 1),
                "sth_latency_s": round(latency, 3),
                "sth_latency_p99_s": round(result["sth_latency_p99_s"], 3),
                "sct_latency_p50_s": round(result["sct_latency_p50_s"], 3),
                "submitted": int(result["submitted"]),
                "in_tree": int(result["in_tree"]),
                "errors": int(result["errors"]),
                "clients": CLIENTS,
                "seconds": SECONDS,
                "cores": os.cpu_count(),
                "database": "sqlite",
            }
        )
    )


if __name__ == "__main__":
    main()
