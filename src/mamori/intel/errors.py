"""Errors of the threat-intelligence room; each says where it happened and what to do."""

from __future__ import annotations

from mamori.errors import MamoriError


class IntelError(MamoriError):
    """A threat-intelligence input or request that cannot be handled; ``where`` names the source."""


class PatternNotSupported(IntelError):
    """A STIX pattern that parses but uses something the matcher does not evaluate (with the reason)."""
