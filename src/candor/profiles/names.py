"""Distinguished names for CA certificates (BR 7.1.2.10.2, encoded in the order of BR 7.1.4.2)."""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict, Field, field_validator


class CASubject(BaseModel):
    """The subject of a CA certificate. countryName, organizationName and commonName are required
    (BR 7.1.2.10.2); organizationalUnitName is not offered because the BR forbid it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = Field(description="ISO 3166-1 alpha-2 code")
    state: str | None = Field(default=None, min_length=1, max_length=128)
    locality: str | None = Field(default=None, min_length=1, max_length=128)
    organization: str = Field(min_length=1, max_length=64)
    common_name: str = Field(min_length=1, max_length=64)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise ValueError("must be a two-letter upper-case ISO 3166-1 code, e.g. 'US' (BR 7.1.4.3)")
        return value

    @field_validator("organization", "common_name", "state", "locality")
    @classmethod
    def _meaningful(cls, value: str | None) -> str | None:
        if value is not None and (value.strip() != value or not any(ch.isalnum() for ch in value)):
            raise ValueError("must not be blank, padded with spaces, or punctuation only (BR 7.1.4.3)")
        return value

    def to_name(self) -> x509.Name:
        attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, self.country)]
        if self.state is not None:
            attributes.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, self.state))
        if self.locality is not None:
            attributes.append(x509.NameAttribute(NameOID.LOCALITY_NAME, self.locality))
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization))
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, self.common_name))
        return x509.Name([x509.RelativeDistinguishedName([a]) for a in attributes])
