"""Alembic environment for Candor's schema.

Migrations are run by :meth:`candor.storage.Database.upgrade`, which hands over an open connection (inside a
transaction) through ``config.attributes["connection"]``. Offline mode (``--sql``) renders SQL for the URL
given as ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from candor.storage import models_acme, models_issuance  # noqa: F401  (registers their tables)
from candor.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    handed_over = config.attributes.get("connection")
    if not isinstance(handed_over, Connection):
        raise RuntimeError("run Candor's migrations through candor.storage.Database.upgrade()")
    run_online(handed_over)
