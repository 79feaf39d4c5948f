"""Export a collection as a STIX bundle for someone outside: TLP enforced, personal data removed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from mamori.intel.query import ObjectQuery
from mamori.intel.redact import RedactionPolicy, Redactor
from mamori.intel.share import AuditEntry, redact_object
from mamori.intel.store import IntelStore, Reader


@dataclass(frozen=True)
class Export:
    """A bundle ready to hand over, and the redactions made in it."""

    bundle: dict[str, Any]
    audit: tuple[AuditEntry, ...]


def export_collection(
    store: IntelStore,
    collection: str,
    reader: Reader,
    *,
    policy: RedactionPolicy | None = None,
    redact: bool = True,
) -> Export:
    """Every object (latest versions) of a collection that ``reader`` may receive under TLP, redacted."""
    info = store.require_collection(collection)
    redactor = Redactor(policy)
    objects: list[dict[str, Any]] = []
    audit: list[AuditEntry] = []
    token: str | None = None
    while True:
        page = store.objects(info.id, ObjectQuery(next=token), reader)
        for item in page.items:
            obj = item.as_dict()
            if redact:
                obj, entries = redact_object(obj, redactor)
                audit.extend(entries)
            objects.append(obj)
        if not page.more:
            break
        token = page.next
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
    return Export(bundle, tuple(audit))
