"""``[[ct.logs]]`` in candor.toml: the CT logs this Candor runs.

Kept free of imports from the rest of Candor so that :mod:`candor.config` can use it. Paths are relative to
the data directory. Example::

    [[ct.logs]]
    name = "log-a"                      # the ceremony's [[ct_logs]] name; its key has the same label
    operator = "Candor Local Log Operator A"
    roots = ["public/issuers/root-x1.pem"]
    mmd_seconds = 60                    # static-ct-api logs: at most one minute (Chrome, Apple)
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from candor.ct.submit.settings import CtSubmitSettings
from candor.dburl import check_database_url

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CtLogSettings(_Strict):
    name: str
    operator: str = Field(min_length=1, max_length=64)
    key_label: str | None = None  # default: the log's name (what the ceremony labels its key)
    roots: list[Path] = Field(min_length=1)  # PEM files of the accepted roots (RFC 6962 4.7)
    mmd_seconds: int = Field(default=60, ge=1, le=86_400)  # RFC 6962 3; browsers: <= 24 h, static-ct-api <= 60 s
    integrate_interval_ms: int = Field(default=500, ge=10, le=60_000)
    integrate_batch: int = Field(default=4096, ge=1, le=65_536)  # integrate early once this many entries wait
    static_dir: Path | None = None  # default: public/ct/<name>; the static-ct-api files go here
    url_prefix: str | None = None  # default: /ct/<name>; the RFC 6962 API is at <prefix>/ct/v1/
    origin: str | None = None  # default: the public base URL's host and the prefix (checkpoint origin line)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-48 of a-z, 0-9 and '-', starting with a letter or digit")
        return value

    @field_validator("url_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or value.endswith("/") or " " in value):
            raise ValueError("must start with '/' and not end with one")
        return value

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if value is not None and ("://" in value or value.endswith("/") or any(c.isspace() or c == "+" for c in value)):
            raise ValueError("is the submission prefix without scheme or trailing slash (static-ct-api), no spaces")
        return value

    @model_validator(mode="after")
    def _interval(self) -> CtLogSettings:
        if self.integrate_interval_ms >= self.mmd_seconds * 1000:
            raise ValueError("integrate_interval_ms must be shorter than the maximum merge delay")
        return self

    @property
    def prefix(self) -> str:
        return self.url_prefix or f"/ct/{self.name}"

    def origin_for(self, public_base_url: str) -> str:
        """The checkpoint origin: the submission prefix without its scheme (static-ct-api "Checkpoints")."""
        if self.origin is not None:
            return self.origin
        return f"{urlsplit(public_base_url).netloc}{self.prefix}"

    def static_path(self, data_dir: Path) -> Path:
        directory = self.static_dir or Path("public") / "ct" / self.name
        return directory if directory.is_absolute() else data_dir / directory

    def root_paths(self, data_dir: Path) -> list[Path]:
        return [path if path.is_absolute() else data_dir / path for path in self.roots]

    @property
    def mmd(self) -> timedelta:
        return timedelta(seconds=self.mmd_seconds)


class CtConfig(_Strict):
    logs: list[CtLogSettings] = Field(default_factory=list)  # the logs this data directory runs
    submit: CtSubmitSettings = Field(default_factory=CtSubmitSettings)  # where precertificates are logged
    # The logs' own database (a relative SQLite path is the data directory's), so that a log's writes never queue
    # behind the CA's on one SQLite write lock, nor the CA's behind the log's: a log is another operator's
    # service, and the CA needs none of its tables. None: the logs' tables are in the CA's [database].
    database: str | None = None

    @field_validator("database")
    @classmethod
    def _database(cls, url: str | None) -> str | None:
        return None if url is None else check_database_url(url)

    @model_validator(mode="after")
    def _distinct(self) -> CtConfig:
        names = [log.name for log in self.logs]
        prefixes = [log.prefix for log in self.logs]
        if len(set(names)) != len(names) or len(set(prefixes)) != len(prefixes):
            raise ValueError("each CT log needs its own name and URL prefix")
        return self
