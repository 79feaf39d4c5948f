"""Read a redaction policy (who and what is internal, what to pseudonymise) from a YAML file."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from mamori.intel.errors import IntelError
from mamori.intel.redact import PiiKind, RedactionPolicy

SECRET_ENV = "MAMORI_REDACTION_SECRET"


def load_policy(path: str | Path | None) -> RedactionPolicy:
    """The policy in a YAML file (keys: internal_users, internal_networks, internal_domains,
    known_names, pseudonymise); the pseudonym key comes from ``MAMORI_REDACTION_SECRET``."""
    secret = os.environ.get(SECRET_ENV, "mamori")
    if path is None:
        return RedactionPolicy(secret=secret)
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise IntelError(f"cannot read the redaction policy: {exc}", where=str(source)) from None
    if not isinstance(data, dict):
        raise IntelError("a redaction policy is a mapping", where=str(source))
    try:
        kinds = frozenset(PiiKind(k) for k in data.get("pseudonymise", ["internal_user", "internal_ip"]))
    except ValueError as exc:
        raise IntelError(str(exc), where=f"{source}: pseudonymise", hint="kinds: " + ", ".join(PiiKind)) from None
    return RedactionPolicy(
        pseudonymise=kinds,
        secret=secret,
        internal_users=tuple(str(u) for u in data.get("internal_users", [])),
        internal_networks=tuple(str(n) for n in data.get("internal_networks", [])),
        internal_domains=tuple(str(d) for d in data.get("internal_domains", [])),
        known_names=tuple(str(n) for n in data.get("known_names", [])),
    )
