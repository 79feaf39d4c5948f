"""Share a stored incident: read it and its alerts from the records database, in the shape
``prepare_share`` reads, so an analyst shares "incident 12" rather than hand-written JSON.

The incident becomes the report (its title, and a description summarising status, severity, hosts,
ATT&CK tactics and what each alert saw); each alert gives its ATT&CK tags, times, count, the
indicator it matched (threat-intel alerts) and its shareable observables (external addresses, file
hashes, the process image's name). User names and internal addresses are never observables: the
incident's own users are added to the redaction policy, so they are pseudonymised wherever they
appear, and private address ranges count as internal.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from mamori.cases.records import Incident
from mamori.cases.workflow import get_incident, linked_alerts
from mamori.intel.errors import IntelError
from mamori.intel.redact import RedactionPolicy
from mamori.intel.share import ShareDraft, prepare_share
from mamori.intel.store import IntelStore
from mamori.intel.tlp import Tlp
from mamori.store.records import Alert

# Addresses that are never intelligence for a partner: they name our own machines.
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
                    "fc00::/7", "fe80::/10", "::1/128")
INTEL_RULE_PREFIX = "intel:"


@dataclass(frozen=True)
class IncidentShareInput:
    """An incident and its alerts as ``prepare_share`` reads them, and the user names they involve."""

    incident: dict[str, Any]
    alerts: list[dict[str, Any]]
    users: tuple[str, ...]


def _names(values: Iterable[object]) -> list[str]:
    found: list[str] = []
    for value in values:
        text = str(value).strip() if value is not None else ""
        if text and text not in found:
            found.append(text)
    return found


def _image_name(process: str | None) -> str | None:
    """The executable's file name of a process (no folders: a path may carry a user's name)."""
    if not process:
        return None
    first = process.strip().strip('"').split('"')[0]
    name = first.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name or None


def _ip_kind(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    return "ipv6" if address.version == 6 else "ip"


def alert_input(alert: Alert) -> dict[str, Any]:
    """One stored alert in the shape ``build_bundle`` reads: title, ATT&CK tags, times, count,
    explanation, shareable entities and (for a threat-intel match) the indicator's id."""
    entities: dict[str, list[str]] = {}
    if alert.ip and (kind := _ip_kind(alert.ip.strip())):
        entities.setdefault(kind, []).append(alert.ip.strip())
    if alert.file_hash:
        entities["hash"] = [h.strip().split("=", 1)[-1] for h in alert.file_hash.split(",") if h.strip()]
    if image := _image_name(alert.process):
        entities["file"] = [image]
    tags = list(alert.tags or [])
    item: dict[str, Any] = {
        "id": f"alert-{alert.id}",
        "title": alert.rule_title,
        "rule": {"id": alert.rule_id, "title": alert.rule_title, "level": alert.level, "tags": tags},
        "tags": tags,
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
        "count": alert.count,
        "explanation": alert.explanation,
        "entities": entities,
    }
    if alert.rule_id.startswith(INTEL_RULE_PREFIX):
        item["indicator_id"] = alert.rule_id.removeprefix(INTEL_RULE_PREFIX)
    return item


def describe(incident: Incident, alerts: Sequence[Alert]) -> str:
    """A plain-text summary of an incident for partners: status, severity, when, hosts, ATT&CK, and
    what each alert saw (the redactor removes the personal data this may carry)."""
    entities: Mapping[str, Any] = incident.entities or {}
    hosts = _names(a.host for a in alerts) or _names(entities.get("host") or [])
    lines = [
        f"Incident {incident.id}: status {incident.status}, severity {incident.severity}.",
        f"Seen from {incident.first_seen.isoformat()} to {incident.last_seen.isoformat()} "
        f"in {len(alerts)} alert(s).",
    ]
    if hosts:
        lines.append("Hosts: " + ", ".join(hosts) + ".")
    if incident.tactics:
        lines.append("ATT&CK tactics: " + ", ".join(incident.tactics) + ".")
    if incident.techniques:
        lines.append("ATT&CK techniques: " + ", ".join(incident.techniques) + ".")
    for alert in alerts:
        where = f" on {alert.host}" if alert.host else ""
        seen = f" ({alert.count}x)" if alert.count > 1 else ""
        lines.append(f"- {alert.rule_title} [{alert.level}]{where}{seen}")
        for detail in alert.explanation.splitlines()[:3]:
            if detail.strip():
                lines.append(f"  {detail.strip()}")
    return "\n".join(lines)


def load_incident_input(session: Session, incident_id: int) -> IncidentShareInput:
    """Incident ``incident_id`` and its alerts from the records database, ready to share
    (``IncidentNotFound`` when there is none)."""
    incident = get_incident(session, incident_id)
    alerts = linked_alerts(session, incident_id)
    users = _names([*((incident.entities or {}).get("user") or []), *(a.user for a in alerts)])
    shown = {
        "id": f"mamori-incident-{incident.id}-{incident.created_at.isoformat()}",
        "title": incident.title,
        "description": describe(incident, alerts),
        "status": incident.status,
        "severity": incident.severity,
        "first_seen": incident.first_seen.isoformat(),
        "last_seen": incident.last_seen.isoformat(),
        "tactics": list(incident.tactics or []),
        "techniques": list(incident.techniques or []),
    }
    return IncidentShareInput(shown, [alert_input(a) for a in alerts], tuple(users))


def incident_policy(base: RedactionPolicy, users: Iterable[str]) -> RedactionPolicy:
    """``base`` with the incident's user names (``DOMAIN\\name`` and ``name``) as internal users and
    private address ranges as internal networks, so neither leaves in clear."""
    names = set(base.internal_users)
    for user in users:
        names.add(user)
        names.add(user.replace("/", "\\").rsplit("\\", 1)[-1].split("@", 1)[0])
    names.discard("")
    networks = tuple(dict.fromkeys((*base.internal_networks, *PRIVATE_NETWORKS)))
    return dataclasses.replace(base, internal_users=tuple(sorted(names)), internal_networks=networks)


def parse_partners(text: str) -> frozenset[str]:
    """The partner names of a ``taxii_partners`` setting (comma-separated)."""
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def check_audience(tlp: Tlp, audience: Sequence[str], partners: Iterable[str]) -> None:
    """Refuse a share the TLP forbids before anything is built: RED never leaves, AMBER needs named
    partners, and every name given must be a configured partner."""
    where = "audience"
    if tlp >= Tlp.RED:
        raise IntelError("TLP:RED information never leaves Mamori", where="tlp", hint="choose a lower TLP")
    known = set(partners)
    strangers = sorted(set(audience) - known)
    if strangers:
        raise IntelError(f"not TLP partners: {', '.join(strangers)}", where=where,
                         hint="partners are the users named in the taxii_partners setting: "
                              + (", ".join(sorted(known)) or "none configured"))
    if tlp >= Tlp.AMBER and not audience:
        raise IntelError(f"{tlp.label} may go only to named partners", where=where,
                         hint="name the partners it is for")


def share_incident(store: IntelStore, session: Session, incident_id: int, *, tlp: Tlp,
                   audience: Sequence[str] = (), collection: str = "outgoing",
                   policy: RedactionPolicy | None = None, organisation: str = "Mamori SOC") -> ShareDraft:
    """Prepare (never publish) a redacted draft share of a stored incident, for the sender to review."""
    loaded = load_incident_input(session, incident_id)
    return prepare_share(store, collection=collection, tlp=tlp, audience=audience, alerts=loaded.alerts,
                         incident=loaded.incident, policy=incident_policy(policy or RedactionPolicy(), loaded.users),
                         organisation=organisation)


def draft_dict(draft: ShareDraft) -> dict[str, Any]:
    """A share as the API shows it: TLP, audience, status, the bundle, every redaction and exclusion."""
    return {
        "id": draft.id, "status": draft.status, "tlp": draft.tlp.label, "audience": list(draft.audience),
        "collection": draft.collection_id, "bundle": draft.bundle,
        "redactions": [dataclasses.asdict(e) for e in draft.audit],
        "excluded": [dataclasses.asdict(e) for e in draft.excluded],
    }


__all__ = ["IncidentShareInput", "alert_input", "check_audience", "describe", "draft_dict", "incident_policy",
           "load_incident_input", "parse_partners", "prepare_from_records", "share_incident"]


def prepare_from_records(incident_id: int, data_dir: Path | None, db: Path | None, *, tlp: Tlp,
                         audience: Sequence[str], collection: str, policy: RedactionPolicy,
                         organisation: str) -> tuple[str, IntelStore, Path]:
    """Prepare a draft share of a stored incident from a ``mamori serve`` data folder (for the CLI).

    The records database is only read, never migrated (it is the service's); the draft goes into the
    folder's intel store (or ``db``), the one whose TAXII server publishes it. Partners are checked
    against the folder's settings. Returns the draft's id, the store and its path.
    """
    from mamori.config import load_settings
    from mamori.store.db import check_service_records, read_service_records

    settings = load_settings(None, data_dir=data_dir)
    check_service_records(settings.data_dir, settings.database_url)
    check_audience(tlp, audience, parse_partners(settings.taxii_partners))
    location = db or settings.data_dir / "intel.db"
    store = IntelStore.open(location)
    store.create_collection("Shared by us", alias=collection, outgoing=True,
                            description="Mamori's findings for partners (redacted, TLP enforced)")
    with read_service_records(settings.db_url) as session:
        draft = share_incident(store, session, incident_id, tlp=tlp, audience=audience, collection=collection,
                               policy=policy, organisation=organisation)
    return draft.id, store, location
