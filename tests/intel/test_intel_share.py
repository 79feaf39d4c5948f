"""Sharing out: a bundle from an incident and alerts, TLP rules, redaction audit, publishing to partners."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from taxii2client.common import TokenAuth
from taxii2client.v21 import Collection

from mamori.intel.errors import IntelError
from mamori.intel.principal import Principal
from mamori.intel.redact import RedactionPolicy
from mamori.intel.serve import BackgroundServer
from mamori.intel.share import load_share, prepare_share, publish_share
from mamori.intel.store import IntelStore
from mamori.intel.taxii_server import create_taxii_app
from mamori.intel.tlp import Tlp, marking_for

INDICATOR = {
    "type": "indicator",
    "spec_version": "2.1",
    "id": "indicator--6b6c2e4f-8e0b-4a43-9d1c-0f8e2b1c3a5d",
    "created": "2024-04-01T00:00:00.000Z",
    "modified": "2024-04-01T00:00:00.000Z",
    "name": "C2 server",
    "pattern": "[ipv4-addr:value = '203.0.113.66']",
    "pattern_type": "stix",
    "valid_from": "2024-04-01T00:00:00Z",
    "object_marking_refs": [marking_for(Tlp.GREEN)],
}
RED_INDICATOR = {
    **INDICATOR,
    "id": "indicator--1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b",
    "object_marking_refs": [marking_for(Tlp.RED)],
}
POLICY = RedactionPolicy(
    internal_users=("yamada.taro",), internal_networks=("10.0.0.0/8",), internal_domains=("corp.example.jp",)
)
ALERTS: list[dict[str, Any]] = [
    {
        "id": "alert-1",
        "title": "C2 beacon from WS-042",
        "time": "2024-05-01T09:00:00Z",
        "count": 3,
        "rule": {
            "id": "intel:c2",
            "title": "C2 beacon",
            "level": "high",
            "tags": ["attack.t1071.001", "attack.command-and-control"],
        },
        "entities": {
            "ip": ["203.0.113.66", "10.1.2.3"],
            "user": ["yamada.taro"],
            "domain": ["c2.evil.example"],
        },
        "indicator_id": INDICATOR["id"],
        "explanation": "yamada.taro on 10.1.2.3 (tel 090-1234-5678) reached 203.0.113.66",
    },
    {
        "id": "alert-2",
        "title": "red intel",
        "time": "2024-05-01T10:00:00Z",
        "indicator_id": RED_INDICATOR["id"],
    },
]
INCIDENT = {
    "id": "INC-7",
    "title": "Phishing leading to C2",
    "description": "山田太郎さん (yamada.taro@corp.example.jp, マイナンバー 123456789018) opened the mail; "
    "card 4111 1111 1111 1111 was typed into the phishing page.",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IntelStore]:
    intel = IntelStore.open(tmp_path / "intel.db")
    feeds = intel.create_collection("Feeds", alias="feeds")
    intel.add_objects(feeds.id, [INDICATOR, RED_INDICATOR])
    intel.create_collection("Outgoing", alias="outgoing", outgoing=True)
    yield intel
    intel.close()


def test_a_share_bundles_indicators_sightings_attack_patterns_and_the_incident_as_a_report(
    store: IntelStore,
) -> None:
    draft = prepare_share(store, collection="outgoing", tlp=Tlp.GREEN, alerts=ALERTS, incident=INCIDENT, policy=POLICY)
    objects = draft.bundle["objects"]
    types = sorted({o["type"] for o in objects})
    assert types == sorted(
        {
            "marking-definition",
            "identity",
            "indicator",
            "sighting",
            "attack-pattern",
            "observed-data",
            "ipv4-addr",
            "domain-name",
            "relationship",
            "report",
        }
    )
    report = next(o for o in objects if o["type"] == "report")
    assert report["name"] == "Phishing leading to C2"
    assert set(report["object_refs"]) >= {INDICATOR["id"]}
    assert [o["name"] for o in objects if o["type"] == "attack-pattern"] == ["T1071.001"]
    assert all(marking_for(Tlp.GREEN) in o["object_marking_refs"] for o in objects if o["type"] != "marking-definition")


def test_tlp_red_intel_is_left_out_and_said_so(store: IntelStore) -> None:
    draft = prepare_share(store, collection="outgoing", tlp=Tlp.GREEN, alerts=ALERTS, policy=POLICY)
    ids = {o["id"] for o in draft.bundle["objects"]}
    assert RED_INDICATOR["id"] not in ids
    assert [e.object_id for e in draft.excluded] == [RED_INDICATOR["id"]]
    assert "TLP:RED" in draft.excluded[0].reason


def test_personal_data_is_removed_before_anything_leaves_and_each_removal_is_audited(
    store: IntelStore,
) -> None:
    draft = prepare_share(store, collection="outgoing", tlp=Tlp.GREEN, alerts=ALERTS, incident=INCIDENT, policy=POLICY)
    text = str(draft.bundle)
    for secret in (
        "yamada.taro",
        "10.1.2.3",
        "090-1234-5678",
        "123456789018",
        "4111 1111 1111 1111",
        "山田太郎",
    ):
        assert secret not in text, secret
    assert "203.0.113.66" in text  # the indicator itself is intelligence, not personal data
    kinds = sorted({e.kind for e in draft.audit})
    assert kinds == ["card", "email", "internal_ip", "internal_user", "my_number", "name", "phone"]
    report_entries = [e for e in draft.audit if e.field == "description" and e.object_id.startswith("report--")]
    assert {e.kind for e in report_entries} >= {"my_number", "card", "email", "name"}
    reviewed = load_share(store, draft.id)
    assert reviewed.audit == draft.audit and reviewed.status == "draft"


def test_red_is_refused_and_amber_needs_named_partners(store: IntelStore) -> None:
    with pytest.raises(IntelError, match="never leaves"):
        prepare_share(store, collection="outgoing", tlp=Tlp.RED, alerts=ALERTS)
    with pytest.raises(IntelError, match="named partners"):
        prepare_share(store, collection="outgoing", tlp=Tlp.AMBER, alerts=ALERTS)


def test_a_published_amber_share_reaches_only_its_partners_over_taxii(store: IntelStore, tmp_path: Path) -> None:
    draft = prepare_share(
        store,
        collection="outgoing",
        tlp=Tlp.AMBER,
        audience=["jpcert"],
        alerts=ALERTS[:1],
        incident=INCIDENT,
        policy=POLICY,
    )
    assert store.count(draft.collection_id) == 0  # nothing leaves before review
    status = publish_share(store, draft.id)
    assert status.failure_count == 0 and load_share(store, draft.id).status == "published"
    with pytest.raises(IntelError, match="already published"):
        publish_share(store, draft.id)
    tokens = {
        "jp": Principal("jpcert", frozenset({"outgoing"}), partner=True),
        "other": Principal("nisc", frozenset({"outgoing"}), partner=True),
        "anon": Principal("public", frozenset({"outgoing"})),
    }
    with BackgroundServer(create_taxii_app(tmp_path / "intel.db", tokens, store=store)) as server:
        url = f"{server.url}/taxii2/api/collections/{draft.collection_id}/"

        def ids(token: str) -> set[str]:
            with Collection(url, auth=TokenAuth(token)) as collection:
                return {
                    o["id"] for o in collection.get_objects().get("objects", []) if o["type"] != "marking-definition"
                }

        assert ids("jp") == {o["id"] for o in draft.bundle["objects"] if o["type"] != "marking-definition"}
        assert ids("other") == set()
        assert ids("anon") == set()
