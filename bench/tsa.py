"""TSA throughput (issue 7, acceptance 5) on this machine: tokens per second over HTTP, the peer measured in the
same run.

1. A data directory made by the key ceremony, a [tsa] section and one ECDSA P-256 TSA unit (file key store).
2. Candor's TSA: ``TsaApp`` as ``candor serve`` builds it (cli/tsa_edge.open_tsa: the unit from the key store,
   the token recorder committing every token to the data directory's SQLite database, synchronous = FULL,
   before it is returned), over uvicorn (httptools, uvloop) in ``--workers`` processes sharing one
   SO_REUSEPORT port. wrk (Debian) POSTs one fixed TimeStampReq (SHA-256 imprint, nonce, certReq) from
   ``CONNECTIONS`` connections; client and server share the machine's cores.
3. The same with an RSA-3072 unit (certified next, so it is the unit that signs).
4. The ceiling: a bare ASGI app returning fixed bytes of the size of a token reply, same HTTP stack, same
   processes.
5. ``candor serve`` itself (P-256 again, ``[server] workers`` = ``--workers``): Starlette's router in front of
   the same app, and the clock watch of the data directory.

Every reply is checked to be granted, and every answered request to be recorded. The clock watch in 2-4 is a
TrustedClock (its cost is one attribute read per token; 5 uses the data directory's own).
The last line is one JSON object: tokens_per_s (P-256), tokens_per_s_rsa3072, ratio_to_ceiling, ...
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "issuance")]

DURATION = os.environ.get("BENCH_TSA_DURATION", "10s")
CONNECTIONS = int(os.environ.get("BENCH_TSA_CONNECTIONS", "64"))
POLICY = "1.3.6.1.4.1.32473.1.1"

LUA = """
local f = io.open("%s", "rb")
local body = f:read("*all")
f:close()
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/timestamp-query"
done = function(summary, latency, requests)
  io.write(string.format(
    "JSON {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p99_us\\": %%d, \\"errors\\": %%d, \\"non2xx\\": %%d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


def serve(home: str, port: int, workers: int, fixed: int) -> None:
    """Run *workers* uvicorn processes on one SO_REUSEPORT socket: Candor's TSA, or (*fixed* > 0) fixed bytes."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    for _ in range(workers - 1):
        if os.fork() == 0:
            break
    app: Any
    if fixed:
        headers = [(b"content-type", b"application/timestamp-reply"), (b"content-length", b"%d" % fixed)]
        start = {"type": "http.response.start", "status": 200, "headers": headers}
        message = {"type": "http.response.body", "body": b"\x30" * fixed}

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                while (await receive()).get("more_body"):
                    pass
                await send(start)
                await send(message)
    else:
        from candor.cli.context import Context
        from candor.cli.tsa_edge import open_tsa
        from candor.clock import SystemClock
        from candor.config import database_url, load_config
        from candor.keys import KeyStores
        from candor.storage import Database
        from candor.timekeeping import TrustedClock

        config = load_config(Path(home))
        db = Database(database_url(config.database, Path(home)))
        context = Context(data_dir=Path(home), config=config, db=db, clock=SystemClock(), environ={})
        stores = KeyStores(config.keys.stores, base_dir=Path(home), environ={})
        tsa = open_tsa(context, stores, TrustedClock("bench"), primary=False)
        assert tsa is not None
        app = tsa.app
    config = uvicorn.Config(app, http="httptools", loop="uvloop", log_level="error", lifespan="off",
                            access_log=False)  # fmt: skip
    os.write(1, b"READY\n")  # one write: the workers share the pipe
    uvicorn.Server(config).run(sockets=[sock])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(home: Path, workers: int, fixed: int) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(home), "--port", str(port), "--workers", str(workers),
         "--fixed", str(fixed)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    for _ in range(workers):
        assert process.stdout.readline().strip() == "READY"
    time.sleep(1.0)
    return process, port


def start_candor_serve(home: Path) -> tuple[subprocess.Popen[str], str]:
    log = home / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "candor", "--data-dir", str(home), "serve"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = log.read_text()
        found = re.search(r"TSA \(RFC 3161\): POST application/timestamp-query to (\S+)", text)
        if found and text.count("Application startup complete") >= 2:
            time.sleep(1.0)
            return process, found.group(1)
        time.sleep(0.2)
    raise SystemExit(f"candor serve did not start:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def cpu_seconds(group: int) -> float:
    """User + system CPU time of every process in process group *group* (the server and its workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks, all threads)
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url: str, body: Path, scratch: Path) -> dict[str, float]:
    script = scratch / "post.lua"
    script.write_text(LUA % body)
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", DURATION, "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result = json.loads(next(x for x in out.splitlines() if x.startswith("JSON "))[5:])
    return {
        "rps": result["requests"] / result["seconds"],
        "requests": result["requests"],
        "p99_ms": result["p99_us"] / 1000,
        "errors": result["errors"] + result["non2xx"],
    }


def post(url: str, body: bytes) -> bytes:
    headers = {"Content-Type": "application/timestamp-query"}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 (loopback, our own server)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback, our own server)
        return bytes(response.read())


def granted(reply: bytes) -> bool:
    return reply[2:7] == bytes.fromhex("3003020100") or reply[4:9] == bytes.fromhex("3003020100")


def recorded(home: Path) -> int:
    from sqlalchemy import func, select

    from candor.config import database_url, load_config
    from candor.storage import Database
    from candor.storage.models_tsa import TsaToken

    db = Database(database_url(load_config(home).database, home))
    try:
        with db.session() as session:
            return session.scalar(select(func.count()).select_from(TsaToken)) or 0
    finally:
        db.dispose()


def measure(label: str, url: str, body: Path, scratch: Path, home: Path | None, group: int) -> dict[str, float]:
    before = recorded(home) if home is not None else 0
    sample = post(url, body.read_bytes())
    if home is not None:
        assert granted(sample), sample[:40].hex()
    cpu = cpu_seconds(group)
    result = wrk(url, body, scratch)
    result["cpu_us"] = (cpu_seconds(group) - cpu) / result["requests"] * 1e6  # server CPU per answered request
    result["size"] = len(sample)
    if home is not None:  # every answered request has its record (wrk's count excludes unanswered ones)
        result["recorded"] = recorded(home) - before - 1
        assert result["recorded"] >= result["requests"], result
    print(f"{label}: {result['rps']:,.0f}/s, p99 {result['p99_ms']:.2f} ms, errors {result['errors']:.0f}, "
          f"{len(sample)} bytes, server CPU {result['cpu_us']:.0f} us/request"
          + (f", {result['recorded']:,.0f} recorded" if home else ""), flush=True)  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fixed", type=int, default=0)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workers, args.fixed)
        return

    from issuing import build_home  # type: ignore[import-not-found]

    from support import run_cli  # type: ignore[import-not-found]

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        home = build_home(scratch / "home")
        with (home / "candor.toml").open("a") as config:
            config.write(f'\n[tsa]\npolicy = "{POLICY}"\n')
        certified = run_cli("--data-dir", home, "tsa", "certify", "--key-type", "ecdsa-p256")
        assert certified.code == 0, certified.err
        body = scratch / "request.tsq"
        data = scratch / "data.bin"
        data.write_bytes(b"benchmark\n")
        made = subprocess.run(["openssl", "ts", "-query", "-data", data, "-sha256", "-cert", "-out", body],
                              capture_output=True, check=False)  # fmt: skip
        assert made.returncode == 0, made.stderr
        results: dict[str, dict[str, float]] = {}
        for label in ("p256", "ceiling", "rsa3072"):
            if label == "rsa3072":
                certified = run_cli("--data-dir", home, "tsa", "certify", "--key-type", "rsa-3072")
                assert certified.code == 0, certified.err
            fixed = int(results["p256"]["size"]) if label == "ceiling" else 0
            process, port = start(home, args.workers, fixed)
            try:
                url = f"http://127.0.0.1:{port}/tsa"
                results[label] = measure(label, url, body, scratch, None if fixed else home, process.pid)
            finally:
                stop(process)

        # candor serve itself, on a data directory of its own (candor init: P-256 unit, its clock watch)
        served_home = scratch / "served"
        port = free_port()
        assert run_cli("--data-dir", served_home, "init", "--port", port, "--acme-port", free_port()).code == 0
        text = (served_home / "candor.toml").read_text()
        text = re.sub(r"(?m)^workers = 1$", f"workers = {args.workers}", text)
        text = re.sub(r"(?s)\[\[ct\.logs\]\].*?(?=\[ocsp\])", "", text)  # own CT logs need one process
        (served_home / "candor.toml").write_text(text)
        process, url = start_candor_serve(served_home)
        try:
            results["candor_serve"] = measure("candor serve", url, body, scratch, served_home, process.pid)
        finally:
            stop(process)

    p256, rsa, ceiling = results["p256"], results["rsa3072"], results["ceiling"]
    summary = {
        "tokens_per_s": round(p256["rps"]),
        "tokens_per_s_rsa3072": round(rsa["rps"]),
        "ratio_to_ceiling": round(p256["rps"] / ceiling["rps"], 3),
        "ceiling_per_s": round(ceiling["rps"]),
        "tokens_per_s_candor_serve": round(results["candor_serve"]["rps"]),
        "p99_ms": round(p256["p99_ms"], 2),
        "server_cpu_us_per_token": round(p256["cpu_us"]),
        "server_cpu_us_per_token_rsa3072": round(rsa["cpu_us"]),
        "server_cpu_us_per_reply_ceiling": round(ceiling["cpu_us"]),
        "server_cpu_us_per_token_candor_serve": round(results["candor_serve"]["cpu_us"]),
        "p99_ms_rsa3072": round(rsa["p99_ms"], 2),
        "reply_bytes": int(p256["size"]),
        "workers": args.workers,
        "connections": CONNECTIONS,
        "cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
