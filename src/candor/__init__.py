"""Candor: an open-source certificate authority platform."""

__version__ = "0.1.0"
