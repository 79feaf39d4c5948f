"""Shared by the API tests: the id of the Whoami rule the shared service child loads (tests query by it)."""

from __future__ import annotations

WHOAMI_RULE_ID = "0c1a0000-0000-4000-8000-000000000001"
