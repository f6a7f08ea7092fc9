"""Policy as data: the rules a certificate, key or name must meet, each citing its source."""

from __future__ import annotations

from candor.policy.algorithms import (
    ALLOWED,
    CAPrivateKey,
    CAPublicKey,
    KeyAlgorithm,
    algorithm_of,
    parse_key_algorithm,
)
from candor.policy.dated import DatedRule, MpicRequirement, PolicySnapshot, allowed_non_corroborations, rules_at
from candor.policy.keys import AcceptedKey, check_subscriber_key
from candor.policy.names import (
    MAX_IDENTIFIERS,
    Identifier,
    check_common_name,
    check_identifiers,
    is_public_suffix,
    normalize_identifier,
    registered_domain,
)
from candor.policy.psl import psl_version

__all__ = [
    "ALLOWED",
    "MAX_IDENTIFIERS",
    "AcceptedKey",
    "CAPrivateKey",
    "CAPublicKey",
    "DatedRule",
    "Identifier",
    "KeyAlgorithm",
    "MpicRequirement",
    "PolicySnapshot",
    "algorithm_of",
    "allowed_non_corroborations",
    "check_common_name",
    "check_identifiers",
    "check_subscriber_key",
    "is_public_suffix",
    "normalize_identifier",
    "parse_key_algorithm",
    "psl_version",
    "registered_domain",
    "rules_at",
]
