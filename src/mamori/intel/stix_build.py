"""Build STIX 2.1 objects (identity, observed data, sightings, attack patterns, reports) as dicts.

Ids are derived from content (UUIDv5) where the object stands for a fact, so building the same share
or the same sighting twice gives the same objects and the store keeps them once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mamori.intel.timestamps import normalise_timestamp, now_timestamp

NAMESPACE = uuid.UUID("6f0c3c0e-6d61-4d6f-b972-6d616d6f7269")
_ATTACK_TAG = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)


def stix_id(kind: str, *parts: str) -> str:
    """A deterministic STIX id for an object of ``kind`` standing for ``parts``."""
    return f"{kind}--{uuid.uuid5(NAMESPACE, kind + '|' + '|'.join(parts))}"


def _stamp(value: str | None) -> str:
    text = normalise_timestamp(value) if value else now_timestamp()
    return text[:-4] + "Z"  # milliseconds, as STIX producers usually write


def identity(name: str, *, identity_class: str = "organization") -> dict[str, Any]:
    """The identity Mamori shares as (``created_by_ref`` and ``where_sighted_refs``)."""
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": stix_id("identity", name),
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "name": name,
        "identity_class": identity_class,
    }


_SCO_KINDS = {
    "ip": "ipv4-addr",
    "ipv6": "ipv6-addr",
    "domain": "domain-name",
    "url": "url",
    "email": "email-addr",
}


def observables(entities: Mapping[str, Iterable[str]]) -> list[dict[str, Any]]:
    """STIX cyber-observables for alert entities (ips, domains, urls, e-mail addresses, file hashes)."""
    found: list[dict[str, Any]] = []
    for key, values in entities.items():
        for value in values:
            if key in _SCO_KINDS:
                kind = "ipv6-addr" if key == "ip" and ":" in value else _SCO_KINDS[key]
                found.append({"type": kind, "spec_version": "2.1", "id": stix_id(kind, value), "value": value})
            elif key == "hash":
                algo = {32: "MD5", 40: "SHA-1", 64: "SHA-256"}.get(len(value))
                if algo:
                    found.append(
                        {
                            "type": "file",
                            "spec_version": "2.1",
                            "id": stix_id("file", value.lower()),
                            "hashes": {algo: value.lower()},
                        }
                    )
            elif key == "file":
                found.append({"type": "file", "spec_version": "2.1", "id": stix_id("file", value), "name": value})
    return found


def observed_data(
    refs: Sequence[str], first: str | None, last: str | None, count: int, created_by: str
) -> dict[str, Any]:
    """An observed-data object grouping observables seen ``count`` times between two times."""
    return {
        "type": "observed-data",
        "spec_version": "2.1",
        "id": stix_id("observed-data", *refs, first or "", last or ""),
        "created": _stamp(None),
        "modified": _stamp(None),
        "created_by_ref": created_by,
        "first_observed": _stamp(first),
        "last_observed": _stamp(last or first),
        "number_observed": max(1, count),
        "object_refs": list(refs),
    }


def sighting(
    indicator_id: str,
    *,
    first_seen: str | None,
    last_seen: str | None,
    count: int,
    where: str | None = None,
    observed_refs: Sequence[str] = (),
    description: str = "",
) -> dict[str, Any]:
    """A sighting of an indicator: when, how often, where, and which observed data."""
    obj: dict[str, Any] = {
        "type": "sighting",
        "spec_version": "2.1",
        "id": stix_id("sighting", indicator_id, first_seen or "", last_seen or "", where or ""),
        "created": _stamp(None),
        "modified": _stamp(None),
        "sighting_of_ref": indicator_id,
        "first_seen": _stamp(first_seen),
        "last_seen": _stamp(last_seen or first_seen),
        "count": max(1, count),
    }
    if where:
        obj["where_sighted_refs"] = [where]
        obj["created_by_ref"] = where
    if observed_refs:
        obj["observed_data_refs"] = list(observed_refs)
    if description:
        obj["description"] = description
    return obj


def attack_patterns(tags: Iterable[str]) -> list[dict[str, Any]]:
    """Attack patterns for ATT&CK technique tags such as ``attack.t1059.001``."""
    found: dict[str, dict[str, Any]] = {}
    for tag in tags:
        match = _ATTACK_TAG.match(tag.strip())
        if not match:
            continue
        technique = match.group(1).upper()
        found[technique] = {
            "type": "attack-pattern",
            "spec_version": "2.1",
            "id": stix_id("attack-pattern", technique),
            "created": "2024-01-01T00:00:00.000Z",
            "modified": "2024-01-01T00:00:00.000Z",
            "name": technique,
            "external_references": [
                {
                    "source_name": "mitre-attack",
                    "external_id": technique,
                    "url": "https://attack.mitre.org/techniques/" + technique.replace(".", "/") + "/",
                }
            ],
        }
    return list(found.values())


def relationship(kind: str, source: str, target: str) -> dict[str, Any]:
    """A relationship (``indicates``, ``related-to``...) between two objects."""
    return {
        "type": "relationship",
        "spec_version": "2.1",
        "id": stix_id("relationship", kind, source, target),
        "created": _stamp(None),
        "modified": _stamp(None),
        "relationship_type": kind,
        "source_ref": source,
        "target_ref": target,
    }


def report(name: str, description: str, refs: Sequence[str], created_by: str, key: str) -> dict[str, Any]:
    """A report standing for an incident, referring to everything shared about it."""
    stamp = _stamp(None)
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": stix_id("report", key),
        "created": stamp,
        "modified": stamp,
        "created_by_ref": created_by,
        "name": name,
        "description": description,
        "report_types": ["threat-report"],
        "labels": ["incident"],
        "published": stamp,
        "object_refs": list(refs),
    }
