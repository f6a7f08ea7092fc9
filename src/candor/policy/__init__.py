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

__all__ = ["ALLOWED", "CAPrivateKey", "CAPublicKey", "KeyAlgorithm", "algorithm_of", "parse_key_algorithm"]
