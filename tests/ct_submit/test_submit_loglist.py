"""The browsers' v3 log list: parsed and checked (log_id, states, keys, intervals), refused whole when wrong,
and the logs a certificate may use selected by state and temporal interval."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from submit_support import log_item, operator

from candor.ct.submit.loglist import LogKind, LogState, load_log_list, log_list_document, parse_log_list
from candor.errors import CandorError, ErrorKind

KEY_A = ec.generate_private_key(ec.SECP256R1())
KEY_B = ec.generate_private_key(ec.SECP256R1())
KEY_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_TILED = ec.generate_private_key(ec.SECP256R1())
H1 = ("2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z")
H2 = ("2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z")


def good_list() -> dict[str, object]:
    A_2026H2 = log_item(KEY_A, description="A 2026h2", url="https://a.example/2026h2/", interval=H1)
    A_RSA = log_item(KEY_RSA, description="A rsa", url="https://a.example/rsa", state="qualified")
    B_2027H1 = log_item(KEY_B, description="B 2027h1", url="https://b.example/", interval=H2)
    B_TILED = log_item(KEY_TILED, description="B tiled", url="https://b.example/t/", tiled=True, state="readonly")
    return {
        "version": "73.2",
        "log_list_timestamp": "2026-11-30T12:00:00Z",
        "operators": [
            operator("Operator A", [A_2026H2, A_RSA]),
            operator("Operator B", [B_2027H1], tiled=[B_TILED]),
        ],
    }


def parse(document: object) -> object:
    return parse_log_list(json.dumps(document))


def refused(document: object, fragment: str) -> None:
    with pytest.raises(CandorError) as caught:
        parse(document)
    assert caught.value.kind is ErrorKind.CONFIG
    assert fragment in caught.value.message, caught.value.message
    assert "\n" not in caught.value.message


def test_a_good_list_parses_with_kinds_states_and_urls() -> None:
    logs = parse_log_list(json.dumps(good_list())).logs
    assert [(log.description, log.operator, log.kind, log.state) for log in logs] == [
        ("A 2026h2", "Operator A", LogKind.RFC6962, LogState.USABLE),
        ("A rsa", "Operator A", LogKind.RFC6962, LogState.QUALIFIED),
        ("B 2027h1", "Operator B", LogKind.RFC6962, LogState.USABLE),
        ("B tiled", "Operator B", LogKind.STATIC_CT_API, LogState.READONLY),
    ]
    assert logs[1].submission_url == "https://a.example/rsa/"  # made to end with "/" for <url>ct/v1/...
    assert logs[0].endpoint("add-pre-chain") == "https://a.example/2026h2/ct/v1/add-pre-chain"
    assert logs[0].start_inclusive == datetime(2026, 7, 1, tzinfo=UTC)
    assert logs[3].monitoring_url == "https://b.example/t/"


def test_selection_takes_usable_and_qualified_logs_whose_interval_holds_not_after() -> None:
    log_list = parse_log_list(json.dumps(good_list()))

    def chosen(moment: datetime) -> list[str]:
        return [log.description for log in log_list.usable_for(moment)]

    assert chosen(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)) == ["A 2026h2", "A rsa"]
    assert chosen(datetime(2027, 1, 1, tzinfo=UTC)) == ["A rsa", "B 2027h1"]  # end_exclusive, start_inclusive
    assert chosen(datetime(2027, 7, 1, tzinfo=UTC)) == ["A rsa"]
    assert chosen(datetime(2026, 6, 30, tzinfo=UTC)) == ["A rsa"]  # before the first shard; readonly never


def test_a_log_id_that_is_not_the_hash_of_the_key_is_refused() -> None:
    document = good_list()
    document["operators"][0]["logs"][0] = log_item(  # type: ignore[index]
        KEY_A, description="A 2026h2", url="https://a.example/", log_id=b"\x01" * 32
    )
    refused(document, "log_id is not the base64 SHA-256 of its key")


def test_an_unknown_state_is_refused() -> None:
    document = good_list()
    document["operators"][1]["logs"][0]["state"] = {"frozen": {"timestamp": "2026-01-01T00:00:00Z"}}  # type: ignore[index]
    refused(document, "unknown state 'frozen'")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d.pop("operators"), "has no 'operators'"),
        (lambda d: d["operators"][0].pop("email"), "has no 'email'"),
        (lambda d: d["operators"][0]["logs"][0].pop("url"), "has no 'url'"),
        (lambda d: d["operators"][1]["tiled_logs"][0].pop("monitoring_url"), "has no 'monitoring_url'"),
        (lambda d: d["operators"][0]["logs"][0].update(key="not base64!"), "key is not valid base64"),
        (lambda d: d["operators"][0]["logs"][0].update(mmd=0), "mmd must be a positive"),
        (lambda d: d["operators"][0]["logs"][0].update(url="ftp://a.example/"), "http(s) URL"),
        (lambda d: d["operators"][0]["logs"][0].update(state={}), "exactly one of"),
        (
            lambda d: d["operators"][0]["logs"][0].update(
                temporal_interval={"start_inclusive": H1[1], "end_exclusive": H1[0]}
            ),
            "ends before",
        ),
        (
            lambda d: d["operators"][0]["logs"][0].update(
                temporal_interval={"start_inclusive": "2026-07-01", "end_exclusive": H1[1]}
            ),
            "no time zone",
        ),
        (lambda d: d["operators"][0]["logs"].append(d["operators"][0]["logs"][0]), "listed twice"),
    ],
)
def test_malformed_lists_are_refused_naming_the_problem(change: object, fragment: str) -> None:
    document = good_list()
    change(document)  # type: ignore[operator]
    refused(document, fragment)


WEAK_RSA = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  (refusing it is the point)


@pytest.mark.parametrize(
    "key",
    [WEAK_RSA, ec.generate_private_key(ec.SECP384R1()), ed25519.Ed25519PrivateKey.generate()],
    ids=["rsa1024", "p384", "ed25519"],
)
def test_keys_rfc_6962_does_not_allow_are_refused(key: object) -> None:
    document = good_list()
    document["operators"][0]["logs"][0] = log_item(key, description="odd", url="https://a.example/")  # type: ignore[arg-type, index]
    refused(document, "RFC 6962 2.1.4")


def test_not_json_and_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(CandorError, match="not JSON") as caught:
        parse_log_list(b"{", source="list.json")
    assert caught.value.kind is ErrorKind.CONFIG
    with pytest.raises(CandorError, match="cannot be read") as caught:
        load_log_list(tmp_path / "missing.json")
    assert caught.value.kind is ErrorKind.CONFIG


def test_the_document_writer_round_trips(tmp_path: Path) -> None:
    original = parse_log_list(json.dumps(good_list()))
    by_operator: dict[str, list] = {}
    for log in original.logs:
        by_operator.setdefault(log.operator, []).append(log)
    written = log_list_document([(name, "ct@example.com", logs) for name, logs in by_operator.items()])
    (tmp_path / "list.json").write_text(json.dumps(written))
    assert load_log_list(tmp_path / "list.json") == original
