"""TAXII 2.1 inside ``mamori serve``: the real taxii2-client against the running service, with the
service's own API tokens deciding who may read and write."""

from __future__ import annotations

import httpx
import pytest
from service_testing import Running

taxii = pytest.importorskip("taxii2client.v21", reason="taxii2-client is a test dependency")
TokenAuth = pytest.importorskip("taxii2client.common").TokenAuth

MEDIA = "application/taxii+json;version=2.1"
INDICATOR = {
    "type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
    "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z", "name": "C2 address",
    "pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
    "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],  # TLP:GREEN
}


def test_service_serves_taxii_discovery_to_token_holders_only(service: Running) -> None:
    with httpx.Client(base_url=service.url, headers={"Accept": MEDIA}) as client:
        assert client.get("/taxii2/").status_code == 401
        answer = client.get("/taxii2/", headers=service.headers("viewer"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/taxii+json")
    assert answer.json()["api_roots"]


def test_analyst_writes_and_viewer_reads_through_taxii2_client(service: Running) -> None:
    analyst = service.tokens["analyst"]
    viewer = service.tokens["viewer"]
    with httpx.Client(base_url=service.url, headers={"Accept": MEDIA, "Authorization": f"Bearer {analyst}"}) as c:
        roots = c.get("/taxii2/").json()["api_roots"]
    root_url = roots[0] if roots[0].startswith("http") else f"{service.url}{roots[0]}"
    writer_root = taxii.ApiRoot(root_url, auth=TokenAuth(analyst))
    writable = [c for c in writer_root.collections if c.can_write]
    assert writable, "an analyst may write"
    collection = writable[0]
    status = collection.add_objects({"type": "bundle", "id": "bundle--6b0f1c43-27e4-4b76-a2a1-2f4b2ae01a11",
                                     "objects": [INDICATOR]})
    assert status.status == "complete" and status.success_count == 1
    reader_root = taxii.ApiRoot(root_url, auth=TokenAuth(viewer))
    reader_collection = next(c for c in reader_root.collections if c.id == collection.id)
    assert not reader_collection.can_write
    objects = reader_collection.get_objects().get("objects", [])
    assert any(o["id"] == INDICATOR["id"] for o in objects)


def test_an_indicator_published_over_taxii_raises_an_alert_on_live_events(service: Running) -> None:
    import time
    from datetime import UTC, datetime

    indicator = {**INDICATOR, "id": "indicator--1f0e6a70-3c2b-4d8e-9b1a-5e6f7a8b9c0d", "name": "Live C2",
                 "pattern": "[ipv4-addr:value = '203.0.113.99']"}
    analyst = {"Authorization": f"Bearer {service.tokens['analyst']}"}
    with httpx.Client(base_url=service.url, headers=analyst) as client:
        taxii_headers = {"Accept": MEDIA, "Content-Type": MEDIA}
        root = client.get("/taxii2/", headers=taxii_headers).json()["api_roots"][0].rstrip("/").rsplit("/", 1)[-1]
        inbox = next(c for c in client.get(f"/taxii2/{root}/collections/", headers=taxii_headers).json()["collections"]
                     if c.get("can_write"))
        posted = client.post(f"/taxii2/{root}/collections/{inbox['id']}/objects/", headers=taxii_headers,
                             json={"objects": [indicator]})
        assert posted.status_code == 202
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {"EventTime": now, "Hostname": "WS7", "EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational",
                 "Image": "C:\\Users\\bob\\a.exe", "DestinationIp": "203.0.113.99", "DestinationPort": "443"}
        assert client.post("/api/v1/ingest", json=[event]).status_code == 202
        deadline = time.monotonic() + 30
        alerts: list[dict[str, object]] = []
        while time.monotonic() < deadline and not alerts:
            listed = client.get("/api/v1/alerts", params={"host": "WS7"}).json()["alerts"]
            alerts = [a for a in listed if str(a.get("rule_id", "")).startswith("intel:")]
            time.sleep(0.2)
    assert alerts, "the indicator match should become an alert"
    assert "Live C2" in str(alerts[0]["rule_title"] if "rule_title" in alerts[0] else alerts[0])
