"""The filters a reader can put on objects (TAXII 2.1 section 3.4), as one frozen value.

``from_params`` reads them from URL query parameters and rejects what the specification does not
allow, naming the parameter, so the TAXII server can answer 400 with a useful message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mamori.intel.errors import IntelError
from mamori.intel.timestamps import normalise_timestamp

VERSION_KEYWORDS = frozenset({"first", "last", "all"})
SPEC_VERSIONS = frozenset({"2.0", "2.1"})


@dataclass(frozen=True)
class ObjectQuery:
    """Filters and paging of a read: every tuple is an OR of values; empty means no filter."""

    added_after: str | None = None
    limit: int | None = None
    next: str | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    spec_versions: tuple[str, ...] = ()


_ALLOWED = {
    "objects": {
        "added_after",
        "limit",
        "next",
        "match[id]",
        "match[type]",
        "match[version]",
        "match[spec_version]",
    },
    "object": {"added_after", "limit", "next", "match[version]", "match[spec_version]"},
    "manifest": {
        "added_after",
        "limit",
        "next",
        "match[id]",
        "match[type]",
        "match[version]",
        "match[spec_version]",
    },
    "versions": {"added_after", "limit", "next", "match[spec_version]"},
    "delete": {"match[version]", "match[spec_version]"},
}


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def from_params(params: Mapping[str, str], endpoint: str) -> ObjectQuery:
    """Read and check the filter parameters allowed on a TAXII endpoint (``objects``, ``manifest``...)."""
    allowed = _ALLOWED[endpoint]
    for key in params:
        if key not in allowed:
            raise IntelError(
                f"unsupported query parameter {key!r}",
                where=f"{endpoint} request",
                hint="allowed here: " + ", ".join(sorted(allowed)),
            )
    added_after = None
    if "added_after" in params:
        added_after = normalise_timestamp(params["added_after"], where="added_after")
    limit = None
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            raise IntelError("limit must be a whole number", where="limit", hint="e.g. limit=100") from None
        if limit < 1:
            raise IntelError("limit must be at least 1", where="limit", hint="e.g. limit=100")
    next_token = params.get("next") or None
    if next_token is not None and not next_token.isdigit():
        raise IntelError("next is not a token this server issued", where="next", hint="use the value of 'next'")
    versions: list[str] = []
    for value in _split(params.get("match[version]", "")):
        versions.append(value if value in VERSION_KEYWORDS else normalise_timestamp(value, where="match[version]"))
    spec_versions = _split(params.get("match[spec_version]", ""))
    for value in spec_versions:
        if value not in SPEC_VERSIONS:
            raise IntelError(f"unknown spec_version {value!r}", where="match[spec_version]", hint="use 2.0 or 2.1")
    return ObjectQuery(
        added_after=added_after,
        limit=limit,
        next=next_token,
        ids=_split(params.get("match[id]", "")),
        types=_split(params.get("match[type]", "")),
        versions=tuple(versions),
        spec_versions=spec_versions,
    )
