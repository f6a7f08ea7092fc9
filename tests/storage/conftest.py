"""Fixtures for storage tests: a committed CA hierarchy on the ``db`` fixture's database."""

from __future__ import annotations

import pytest
from storage_pki import CA, Hierarchy, make_ca, register

from candor.storage import Database


@pytest.fixture(scope="session")
def cas() -> tuple[CA, CA, CA]:
    root = make_ca("Candor Test Root")
    return root, make_ca("Candor Test TLS", root), make_ca("Candor Test TLS 2", root)


@pytest.fixture
def hierarchy(db: Database, cas: tuple[CA, CA, CA]) -> Hierarchy:
    """A root and two TLS issuers under it, committed."""
    root_ca, tls_ca, other_ca = cas
    with db.session() as session:
        _, root = register(session, "root-x1", root_ca, kind="root")
        _, tls = register(session, "tls-e1", tls_ca, kind="tls", parent=root)
        _, other = register(session, "tls-e2", other_ca, kind="tls", parent=root)
    return Hierarchy(root_ca, tls_ca, other_ca, root, tls, other)
