"""Database URLs as configured (``[database] url``, ``[ct] database``): which are accepted, and where a relative
SQLite path points. Free of imports from the rest of Candor, so that every settings module can use it."""

from __future__ import annotations

from pathlib import Path


def check_database_url(url: str) -> str:
    """*url* if Candor can use it (SQLite through a file path, PostgreSQL through psycopg 3); else ValueError."""
    if not (url.startswith("sqlite:///") or url.startswith("postgresql")):
        raise ValueError("must be a sqlite:///PATH or postgresql+psycopg://... URL")
    if url.startswith("postgresql") and not url.startswith("postgresql+psycopg://"):
        raise ValueError("PostgreSQL URLs must use the psycopg 3 driver: postgresql+psycopg://...")
    return url


def resolve_database_url(url: str, base_dir: Path) -> str:
    """The SQLAlchemy URL, with a relative SQLite path taken relative to *base_dir* (the data directory)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            return f"sqlite:///{(base_dir / relative).resolve()}"
    return url
