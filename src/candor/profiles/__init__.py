"""Certificate profiles: pure functions from a request, policy and the time to a certificate template."""

from __future__ import annotations

from candor.profiles.ca import (
    POLICY_DV,
    POLICY_EV,
    POLICY_IV,
    POLICY_OV,
    POLICY_TIMESTAMPING,
    TLS_POLICIES,
    IssuerInfo,
    ocsp_responder,
    root_ca,
    tls_subordinate_ca,
    tsa_subordinate_ca,
)
from candor.profiles.names import CASubject
from candor.profiles.template import CertificateTemplate, to_builder

__all__ = [
    "POLICY_DV",
    "POLICY_EV",
    "POLICY_IV",
    "POLICY_OV",
    "POLICY_TIMESTAMPING",
    "TLS_POLICIES",
    "CASubject",
    "CertificateTemplate",
    "IssuerInfo",
    "ocsp_responder",
    "root_ca",
    "tls_subordinate_ca",
    "to_builder",
    "tsa_subordinate_ca",
]
