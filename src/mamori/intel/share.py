"""Share threat intelligence with partners: build a STIX bundle from an incident or alerts, enforce
TLP, remove personal information, let the sender review every redaction, then publish.

``prepare_share`` never publishes: it stores a draft and its redaction audit. ``publish_share``
puts the reviewed bundle into an outgoing collection, marked with the share's TLP and addressed to
its partners, where the TAXII server enforces TLP again on every read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mamori.intel import stix_build
from mamori.intel.errors import IntelError
from mamori.intel.models import RedactionAuditRow, ShareRow
from mamori.intel.redact import Finding, RedactionPolicy, Redactor
from mamori.intel.store import IntelStore, Status
from mamori.intel.timestamps import now_timestamp
from mamori.intel.tlp import Tlp, marking_definition, marking_for, tlp_of

# Keys whose values are identifiers, timestamps or vocabulary, never free text to redact.
_STRUCTURAL = frozenset(
    {
        "type", "id", "spec_version", "created", "modified", "valid_from", "valid_until", "first_seen",
        "last_seen", "first_observed", "last_observed", "published", "pattern_type", "pattern_version",
        "object_marking_refs", "created_by_ref", "relationship_type", "source_ref", "target_ref",
        "sighting_of_ref", "hashes", "source_name", "external_id", "report_types", "indicator_types",
        "identity_class", "extensions", "definition_type", "number_observed", "count", "confidence",
    }
)  # fmt: skip
_IOC_VALUE_TYPES = frozenset({"ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr"})


@dataclass(frozen=True)
class AuditEntry:
    """One redaction, as the sender reviews it: which object and field, what kind, what replaced it."""

    object_id: str
    field: str
    kind: str
    preview: str
    replacement: str


@dataclass(frozen=True)
class Exclusion:
    """An object left out of a share, and why (its TLP is stricter than the share's, or RED)."""

    object_id: str
    reason: str


@dataclass(frozen=True)
class ShareDraft:
    """A prepared share: its bundle (already redacted), redactions and exclusions, awaiting review."""

    id: str
    tlp: Tlp
    audience: tuple[str, ...]
    collection_id: str
    bundle: dict[str, Any]
    audit: tuple[AuditEntry, ...] = ()
    excluded: tuple[Exclusion, ...] = field(default_factory=tuple)
    status: str = "draft"


def _redact_value(value: Any, path: str, object_id: str, redactor: Redactor, ioc: bool, audit: list[AuditEntry]) -> Any:
    if isinstance(value, str):
        result = redactor.redact(value, ioc_field=ioc)
        audit.extend(_entries(result.findings, object_id, path))
        return result.text
    if isinstance(value, list):
        return [_redact_value(v, f"{path}[{i}]", object_id, redactor, ioc, audit) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {
            k: (v if _skip(k) else _redact_value(v, f"{path}.{k}", object_id, redactor, ioc, audit))
            for k, v in value.items()
        }
    return value


def _skip(key: str) -> bool:
    return key in _STRUCTURAL or key.endswith(("_ref", "_refs"))


def _entries(findings: Iterable[Finding], object_id: str, path: str) -> list[AuditEntry]:
    return [AuditEntry(object_id, path, str(f.kind), f.preview, f.replacement) for f in findings]


def redact_object(obj: Mapping[str, Any], redactor: Redactor) -> tuple[dict[str, Any], list[AuditEntry]]:
    """A copy of a STIX object with personal information removed from its free-text fields.

    In an indicator's ``pattern`` and an observable's ``value`` external addresses are the
    intelligence and stay; internal ones, numbers and other personal data are removed.
    """
    audit: list[AuditEntry] = []
    object_id = str(obj.get("id", ""))
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if _skip(key):
            out[key] = value
            continue
        ioc = key == "pattern" or (key == "value" and obj.get("type") in _IOC_VALUE_TYPES)
        out[key] = _redact_value(value, key, object_id, redactor, ioc, audit)
    return out, audit


def _stored_level(store: IntelStore, obj: Mapping[str, Any]) -> Tlp:
    return tlp_of(obj, Tlp.GREEN, store.known_markings(), unknown=Tlp.RED)


def build_bundle(
    store: IntelStore,
    *,
    alerts: Sequence[Mapping[str, Any]],
    incident: Mapping[str, Any] | None,
    tlp: Tlp,
    organisation: str,
    internal: Redactor,
) -> tuple[list[dict[str, Any]], list[Exclusion]]:
    """The STIX objects describing an incident or alerts (before redaction), and what was left out.

    Indicators come from the store (those the alerts matched); observables become observed data;
    each matched indicator gets a sighting; ATT&CK tags become attack patterns; the incident (or
    the set of alerts) becomes a report that refers to all of it.
    """
    me = stix_build.identity(organisation)
    objects: dict[str, dict[str, Any]] = {me["id"]: me}
    excluded: list[Exclusion] = []
    for alert in alerts:
        rule = alert.get("rule") or {}
        first, last = (
            alert.get("first_seen") or alert.get("time"),
            alert.get("last_seen") or alert.get("time"),
        )
        count = int(alert.get("count", 1))
        entities = {
            key: [v for v in values if not internal.find(str(v), ioc_field=True)]
            for key, values in (alert.get("entities") or {}).items()
        }
        scos = stix_build.observables(entities)
        for sco in scos:
            objects[sco["id"]] = sco
        observed = None
        if scos:
            observed = stix_build.observed_data([s["id"] for s in scos], first, last, count, me["id"])
            objects[observed["id"]] = observed
        patterns = stix_build.attack_patterns(rule.get("tags", []) or alert.get("tags", []) or [])
        for pattern in patterns:
            objects[pattern["id"]] = pattern
        indicator_id = alert.get("indicator_id")
        if indicator_id:
            indicator = store.find_object(str(indicator_id))
            level = _stored_level(store, indicator) if indicator else Tlp.CLEAR
            if indicator is None:
                excluded.append(Exclusion(str(indicator_id), "not in the intel store"))
            elif level >= Tlp.RED or level > tlp:
                excluded.append(Exclusion(str(indicator_id), f"{level.label} is stricter than the share's {tlp.label}"))
            else:
                objects[indicator["id"]] = dict(indicator)
                seen = stix_build.sighting(
                    indicator["id"],
                    first_seen=first,
                    last_seen=last,
                    count=count,
                    where=me["id"],
                    observed_refs=[observed["id"]] if observed else [],
                    description=str(alert.get("explanation", "")),
                )
                objects[seen["id"]] = seen
                for pattern in patterns:
                    rel = stix_build.relationship("indicates", indicator["id"], pattern["id"])
                    objects[rel["id"]] = rel
    if incident is not None:
        key = str(incident.get("id") or uuid.uuid4())
        name = str(incident.get("title") or f"Incident {key}")
        description = str(incident.get("description") or "")
    else:
        key = "|".join(sorted(str(a.get("id", "")) for a in alerts))
        name = "Alerts shared by " + organisation
        description = "\n".join(str(a.get("title") or (a.get("rule") or {}).get("title", "")) for a in alerts)
    refs = [ref for ref in objects if ref != me["id"]]
    rep = stix_build.report(name, description, refs or [me["id"]], me["id"], key)
    objects[rep["id"]] = rep
    marking = marking_for(tlp)
    for obj in objects.values():
        obj["object_marking_refs"] = sorted({*obj.get("object_marking_refs", []), marking})
    return [marking_definition(tlp), *objects.values()], excluded


def prepare_share(
    store: IntelStore,
    *,
    collection: str,
    tlp: Tlp,
    audience: Sequence[str] = (),
    alerts: Sequence[Mapping[str, Any]] = (),
    incident: Mapping[str, Any] | None = None,
    policy: RedactionPolicy | None = None,
    organisation: str = "Mamori SOC",
) -> ShareDraft:
    """Build, check and redact a share, and store it as a draft with its audit (nothing leaves yet).

    TLP:RED is refused outright; TLP:AMBER and AMBER+STRICT need the partners they go to.
    """
    if tlp >= Tlp.RED:
        raise IntelError("TLP:RED information never leaves Mamori", where="share", hint="choose a lower TLP")
    if tlp >= Tlp.AMBER and not audience:
        raise IntelError(
            f"{tlp.label} may go only to named partners",
            where="share",
            hint="name the partner tokens it is for",
        )
    outgoing = store.require_collection(collection)
    redactor = Redactor(policy)
    internal = Redactor(
        RedactionPolicy(
            internal_users=redactor.policy.internal_users,
            internal_networks=redactor.policy.internal_networks,
            internal_domains=redactor.policy.internal_domains,
        )
    )
    objects, excluded = build_bundle(
        store, alerts=alerts, incident=incident, tlp=tlp, organisation=organisation, internal=internal
    )
    audit: list[AuditEntry] = []
    clean: list[dict[str, Any]] = []
    for obj in objects:
        redacted, entries = redact_object(obj, redactor)
        clean.append(redacted)
        audit.extend(entries)
    draft = ShareDraft(
        id=str(uuid.uuid4()),
        tlp=tlp,
        audience=tuple(sorted(set(audience))),
        collection_id=outgoing.id,
        bundle={"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": clean},
        audit=tuple(audit),
        excluded=tuple(excluded),
    )
    with Session(store.engine) as session, session.begin():
        session.add(
            ShareRow(
                id=draft.id,
                created=now_timestamp(),
                status="draft",
                collection_id=outgoing.id,
                tlp=int(tlp),
                audience="\n".join(draft.audience),
                bundle=json.dumps({"bundle": draft.bundle, "excluded": [e.__dict__ for e in excluded]}),
            )
        )
        session.add_all(
            RedactionAuditRow(
                share_id=draft.id,
                object_id=e.object_id,
                field=e.field,
                kind=e.kind,
                preview=e.preview,
                replacement=e.replacement,
            )
            for e in audit
        )
    return draft


def load_share(store: IntelStore, share_id: str) -> ShareDraft:
    """A stored share with its redaction audit, for review."""
    with Session(store.engine) as session:
        row = session.get(ShareRow, share_id)
        if row is None:
            raise IntelError(f"no share {share_id!r}", where="share", hint="see `mamori intel share --list`")
        entries = session.scalars(
            select(RedactionAuditRow).where(RedactionAuditRow.share_id == share_id).order_by(RedactionAuditRow.id)
        )
        audit = tuple(AuditEntry(e.object_id, e.field, e.kind, e.preview, e.replacement) for e in entries)
        saved = json.loads(row.bundle)
        return ShareDraft(
            id=row.id,
            tlp=Tlp(row.tlp),
            audience=tuple(a for a in row.audience.split("\n") if a),
            collection_id=row.collection_id,
            bundle=saved["bundle"],
            audit=audit,
            excluded=tuple(Exclusion(**e) for e in saved.get("excluded", [])),
            status=row.status,
        )


def list_shares(store: IntelStore) -> list[tuple[str, str, str, str]]:
    """Every share as (id, created, status, TLP label), newest first."""
    with Session(store.engine) as session:
        rows = session.scalars(select(ShareRow).order_by(ShareRow.created.desc()))
        return [(r.id, r.created, r.status, Tlp(r.tlp).label) for r in rows]


def publish_share(store: IntelStore, share_id: str) -> Status:
    """Publish a reviewed draft into its outgoing collection, marked and addressed as prepared."""
    draft = load_share(store, share_id)
    if draft.status != "draft":
        raise IntelError(f"share {share_id} is already {draft.status}", where="share")
    if draft.tlp >= Tlp.RED:
        raise IntelError("TLP:RED information never leaves Mamori", where=f"share {share_id}")
    status = store.add_objects(
        draft.collection_id,
        draft.bundle["objects"],
        source=f"share:{share_id}",
        default_tlp=draft.tlp,
        audience=draft.audience if draft.tlp >= Tlp.AMBER else (),
    )
    with Session(store.engine) as session, session.begin():
        row = session.get(ShareRow, share_id)
        if row is not None:
            row.status = "published"
    return status
