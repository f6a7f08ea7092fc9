"""Every token is recorded before it leaves ("did we issue this token?"), on SQLite and PostgreSQL, and the
``candor tsa`` commands answer from the records: ``lookup``, ``verify``, ``list``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from tsa_support import POLICY, Harness, harness, post, read_reply, request, sha256, tsa_home, tst_info

from candor.config import database_url, load_config
from candor.storage import Database
from candor.storage.models_tsa import TsaToken, TsaUnit
from support import assert_one_line_error, run_cli


def test_a_returned_token_is_already_durably_recorded_with_what_it_attests(tsa: Harness) -> None:
    reply = read_reply(asyncio.run(tsa.respond(request(data=b"recorded"))))
    assert reply.token is not None
    tst = tst_info(reply.token)
    serial = int(tst["serialNumber"])
    config = load_config(tsa.context.data_dir)
    other = Database(database_url(config.database, tsa.context.data_dir))  # another connection: committed data only
    try:
        with other.session() as session:
            row = session.scalars(select(TsaToken).where(TsaToken.serial_hex == format(serial, "032x"))).one()
            unit = session.get(TsaUnit, row.unit_id)
    finally:
        other.dispose()
    assert unit is not None and unit.name == "tsa-ca1-unit-1"
    assert (row.policy, row.imprint_algorithm, row.imprint) == (POLICY, "2.16.840.1.101.3.4.2.1", sha256(b"recorded"))
    assert row.gen_time == tst["genTime"].asDateTime


def test_lookup_answers_did_we_issue_this_token(tsa: Harness, p256_home: Path) -> None:
    reply = read_reply(asyncio.run(tsa.respond(request(data=b"look me up"))))
    serial = int(tst_info(reply.token or b"")["serialNumber"])
    found = run_cli("--data-dir", p256_home, "tsa", "lookup", "--serial", format(serial, "x"))
    assert found.code == 0 and f"serial {serial:032x}" in found.out and "unit tsa-ca1-unit-1" in found.out
    by_imprint = run_cli("--data-dir", p256_home, "tsa", "lookup", "--digest", sha256(b"look me up").hex())
    assert by_imprint.code == 0 and f"serial {serial:032x}" in by_imprint.out
    missing = run_cli("--data-dir", p256_home, "tsa", "lookup", "--serial", "42")
    assert_one_line_error(missing, "no token with this serial was issued")
    assert missing.code == 6


def test_tsa_verify_accepts_a_token_and_refuses_a_changed_one_in_one_line(
    tsa: Harness, p256_home: Path, tmp_path: Path
) -> None:
    from tsa_support import served

    data = tmp_path / "data.txt"
    data.write_bytes(b"the verified file\n")
    with served(tsa) as url:
        reply = post(url, request(data=data.read_bytes(), cert_req=False))[2]
        rejection = post(url, request(algorithm="sha1", digest=bytes(20)))[2]
    token = read_reply(reply).token
    assert token is not None
    files = {"reply.tsr": reply, "token.der": token, "rejection.tsr": rejection}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    for name in ("reply.tsr", "token.der"):
        result = run_cli("--data-dir", p256_home, "tsa", "verify", tmp_path / name, "--data", data)
        assert result.code == 0, result.err
        assert result.out.startswith("token OK: serial ") and "(imprint matches the data)" in result.out
        assert len(result.out.strip().splitlines()) == 1
    digest = run_cli(
        "--data-dir", p256_home, "tsa", "verify", tmp_path / "reply.tsr", "--digest", sha256(data.read_bytes()).hex()
    )
    assert digest.code == 0
    changed = bytearray(reply)
    changed[-10] ^= 0x01  # inside the signature
    (tmp_path / "changed.tsr").write_bytes(bytes(changed))
    for name, fragment in (("changed.tsr", "signature"), ("rejection.tsr", "rejection")):
        refused = run_cli("--data-dir", p256_home, "tsa", "verify", tmp_path / name, "--data", data)
        assert_one_line_error(refused, "token invalid", fragment)
        assert refused.code == 8
    other = run_cli("--data-dir", p256_home, "tsa", "verify", tmp_path / "reply.tsr", "--digest", "00" * 32)
    assert_one_line_error(other, "token invalid", "imprint")


def test_tsa_list_marks_the_unit_that_signs(p256_home: Path) -> None:
    listed = run_cli("--data-dir", p256_home, "tsa", "list")
    assert listed.code == 0
    assert listed.out.startswith("* tsa-ca1-unit-1 ") and "ecdsa-p256" in listed.out


@pytest.mark.postgres
def test_tokens_are_recorded_in_postgresql_with_group_commit(tmp_path: Path, postgres_schema_url: str) -> None:
    home = tsa_home(tmp_path / "pg", database=postgres_schema_url)
    with harness(home) as tsa:

        async def burst() -> list[bytes]:
            return list(await asyncio.gather(*(tsa.respond(request(data=b"%d" % i)) for i in range(300))))

        replies = [read_reply(r) for r in asyncio.run(burst())]
        assert all(r.status == 0 for r in replies)
        with tsa.db.session() as session:
            assert len(session.scalars(select(TsaToken.serial_hex)).all()) == 300
        assert tsa.tsa.recorder.commits < 300
