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
from candor.profiles.precert import (
    POISON_OID,
    SCT_LIST_OID,
    check_sct_list,
    final_certificate,
    final_certificate_without_scts,
    precertificate,
    tbs_without_poison_or_scts,
)
from candor.profiles.subscriber import SubscriberRequest, VettedOrganization, subscriber_certificate
from candor.profiles.template import CertificateTemplate, to_builder
from candor.profiles.tsa import timestamp_certificate, timestamp_certificate_problems

__all__ = [
    "POISON_OID",
    "POLICY_DV",
    "POLICY_EV",
    "POLICY_IV",
    "POLICY_OV",
    "POLICY_TIMESTAMPING",
    "SCT_LIST_OID",
    "TLS_POLICIES",
    "CASubject",
    "CertificateTemplate",
    "IssuerInfo",
    "SubscriberRequest",
    "VettedOrganization",
    "check_sct_list",
    "final_certificate",
    "final_certificate_without_scts",
    "ocsp_responder",
    "precertificate",
    "root_ca",
    "subscriber_certificate",
    "tbs_without_poison_or_scts",
    "timestamp_certificate",
    "timestamp_certificate_problems",
    "tls_subordinate_ca",
    "to_builder",
    "tsa_subordinate_ca",
]
