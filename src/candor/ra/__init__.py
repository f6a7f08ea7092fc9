"""The registration authority: accounts, orders and authorizations, and the workflows that create them."""

from __future__ import annotations

from candor.ra.operator import operator_order

__all__ = ["operator_order"]
