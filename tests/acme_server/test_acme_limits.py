"""Rate limits answer rateLimited (HTTP 429) with Retry-After, counted from the stored records."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from acme_harness import acme_server
from acme_raw import Raw, expect_problem, issued_certificate
from issuing import build_home

from candor.ra.limits import Limits


@pytest.fixture(scope="module")
def limits_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("acme-limits"))


def _order(client: Raw, name: str) -> tuple[int, dict[str, object], dict[str, str]]:
    return client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": name}]})


def _retry_after(reply: tuple[int, object, dict[str, str]]) -> int:
    return int(reply[2]["retry-after"])


def test_new_orders_per_account(limits_home: Path) -> None:
    with acme_server(limits_home, limits=Limits(orders_per_account=2)) as harness:
        client = Raw(harness, "p256").register()
        assert _order(client, "www.example.com")[0] == 201
        assert _order(client, "example.com")[0] == 201
        refused = _order(client, "api.example.org")
        expect_problem(refused, "rateLimited", 429)
        assert 0 < _retry_after(refused) <= 3 * 3600 + 1


def test_new_accounts_per_address(tmp_path: Path) -> None:
    with acme_server(build_home(tmp_path / "home"), limits=Limits(accounts_per_address=1)) as harness:
        Raw(harness, "p384", "ES384").register()  # the one account 127.0.0.1 may open in the window
        reply = Raw(harness, "rsa2048_b", "RS256").post("/acme/new-account", {"termsOfServiceAgreed": True})
        expect_problem(reply, "rateLimited", 429)


def test_failed_validations_per_name(limits_home: Path) -> None:
    with acme_server(limits_home, limits=Limits(failed_validations_per_name=1)) as harness:
        client = Raw(harness, "p256_b").register()
        for attempt in range(2):
            _status, order, _headers = _order(client, "api.example.org")
            _, authz, _ = client.post(_path(order["authorizations"][0]), None)  # type: ignore[index]
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            reply = client.post(_path(challenge["url"]), {})  # nothing answers on port 80: it fails
            if attempt == 0:
                assert reply[1]["status"] == "invalid"  # type: ignore[index]
            else:
                expect_problem(reply, "rateLimited", 429)


def test_certificates_per_registered_domain(limits_home: Path) -> None:
    with acme_server(limits_home, limits=Limits(certificates_per_registered_domain=1)) as harness:
        client = Raw(harness, "ed25519", "EdDSA").register()
        issued_certificate(harness, client, "www.example.com")  # the first certificate for example.com
        expect_problem(_order(client, "example.com"), "rateLimited", 429)
        assert _order(client, "api.example.org")[0] == 201  # another registered domain is not limited


def _path(url: object) -> str:
    from urllib.parse import urlsplit

    return urlsplit(str(url)).path


def test_a_capped_count_refuses_and_dates_retry_after_as_a_full_count_would(tmp_path: Path) -> None:
    """The counts read at most the limit's worth of rows, oldest first: more orders than the limit in the window
    still refuse, and Retry-After is still when the oldest of them leaves the window."""
    from candor.errors import RateLimitError
    from candor.policy.names import Identifier
    from candor.ra.limits import check_new_order

    with acme_server(build_home(tmp_path / "home")) as harness:
        client = Raw(harness, "p256").register()
        clock = harness.ca.clock
        first = clock.now()
        for index in range(5):
            assert _order(client, f"n{index}.example.com")[0] == 201
            clock.advance(timedelta(minutes=10))
        account_id = int(str(client.kid).rsplit("/", 1)[1])
        names = [Identifier("dns", "more.example.com")]
        with harness.ca.db.reader() as connection:
            for limit in (2, 5):
                with pytest.raises(RateLimitError) as refused:
                    check_new_order(
                        connection, account_id=account_id, identifiers=names, now=clock.now(),
                        limits=Limits(orders_per_account=limit),
                    )  # fmt: skip
                oldest_leaves = first + timedelta(hours=3) - clock.now()
                assert refused.value.retry_after == int(oldest_leaves.total_seconds()) + 1
            check_new_order(
                connection, account_id=account_id, identifiers=names, now=clock.now(),
                limits=Limits(orders_per_account=6),
            )  # fmt: skip


def test_no_limit_reads_a_whole_table(tmp_path: Path) -> None:
    """Each count is an index search (SQLite's plan): none scans orders, authorizations, challenges, issued names
    or accounts, which grow with every order the CA ever took."""
    from candor.ra import limits

    statements = {
        "orders": limits._ORDERS_OF, "pending": limits._PENDING_OF, "issued": limits._ISSUED_FOR,
        "failed": limits._FAILED_FOR, "accounts": limits._ACCOUNTS_FROM,
    }  # fmt: skip
    home = build_home(tmp_path / "home")
    with acme_server(home) as harness, harness.ca.db.reader() as connection:
        for name, statement in statements.items():
            compiled = statement.compile(dialect=connection.dialect)
            values = compiled.construct_params({key: 1 for key in compiled.params if compiled.params[key] is None})
            positional = tuple(values[key] for key in compiled.positiontup or ())
            plan = [row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional)]
            assert any(step.startswith("SEARCH") for step in plan), (name, plan)
            tables = ("orders", "authorizations", "challenges", "issued_names", "accounts")
            assert not [step for step in plan if step.split()[:2] in (["SCAN", t] for t in tables)], (name, plan)
