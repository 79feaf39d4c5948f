"""Sharing an incident from a running `mamori serve`: events fire a rule, the alert becomes an incident, an analyst
prepares a redacted share of it, reviews the redactions, publishes, and a partner reads the report over TAXII
(real service child, real taxii2-client), with TLP enforced on the way out and on every read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from service_testing import Running, process_event, running_service, wait_for, whoami_rule
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from mamori.store.records import AuditEntry

taxii = pytest.importorskip("taxii2client.v21", reason="taxii2-client is a test dependency")
TokenAuth = pytest.importorskip("taxii2client.common").TokenAuth

MEDIA = "application/taxii+json;version=2.1"
RULE_ID = "0c1a0000-0000-4000-8000-0000000000a6"
EMAIL = "taro.yamada@example.co.jp"
PHONE = "03-1234-5678"
PERSONAL = (EMAIL, PHONE, "taro.yamada", "tanaka")


@pytest.fixture(scope="module")
def sharing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A service whose TLP partners are viewer-user and admin-user (analyst-user is no partner)."""
    with running_service(tmp_path_factory.mktemp("share"), {"whoami.yml": whoami_rule(RULE_ID)},
                         extra={"MAMORI_TAXII_PARTNERS": "viewer-user,admin-user"}) as running:
        yield running


def _incident_on(service: Running, host: str, user: str) -> dict[str, Any]:
    """Ingest a whoami event on ``host`` by ``user`` whose command line carries personal data; the incident it
    becomes (hosts and users differ between tests, so each test has an incident of its own)."""
    event = process_event(None, f"cmd /c whoami /all & net user {user} & echo {EMAIL} {PHONE}", host, user)
    with httpx.Client(base_url=service.url, headers=service.headers("analyst")) as client:
        assert client.post("/api/v1/ingest", json=[event]).status_code == 202

        def found() -> dict[str, Any] | None:
            for incident in client.get("/api/v1/incidents").json()["incidents"]:
                hosts = [str(h).lower() for h in (incident.get("entities") or {}).get("host", [])]
                if host.lower() in hosts:
                    return dict(incident)
            return None

        incident: dict[str, Any] = wait_for(found, timeout=60.0, interval=0.2)
    return incident


@pytest.fixture(scope="module")
def green_incident(sharing: Running) -> dict[str, Any]:
    return _incident_on(sharing, "WS-SHARE", "tanaka")


def _outgoing(service: Running, role: str) -> Any:
    """The outgoing collection as ``role``'s token sees it through taxii2-client."""
    token = service.tokens[role]
    with httpx.Client(base_url=service.url, headers={"Accept": MEDIA, "Authorization": f"Bearer {token}"}) as c:
        roots = c.get("/taxii2/").json()["api_roots"]
    root_url = roots[0] if roots[0].startswith("http") else f"{service.url}{roots[0]}"
    api_root = taxii.ApiRoot(root_url, auth=TokenAuth(token))
    return next(c for c in api_root.collections if c.title == "Shared by us")


def _visible(service: Running, role: str, object_id: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = _outgoing(service, role).get_objects().get("objects", [])
    return [o for o in objects if o["id"] == object_id]


def _report_of(share: dict[str, Any]) -> dict[str, Any]:
    return next(o for o in share["bundle"]["objects"] if o["type"] == "report")


def test_green_share_of_a_detected_incident_is_reviewed_published_and_read_by_a_partner_without_personal_data(
        sharing: Running, green_incident: dict[str, Any]) -> None:
    incident_id = green_incident["id"]
    with httpx.Client(base_url=sharing.url, headers=sharing.headers("analyst")) as client:
        prepared = client.post(f"/api/v1/incidents/{incident_id}/share", json={"tlp": "green"})
        assert prepared.status_code == 201, prepared.text
        draft = prepared.json()
        assert (draft["status"], draft["tlp"], draft["audience"]) == ("draft", "TLP:GREEN", [])
        report_id = _report_of(draft)["id"]
        assert _visible(sharing, "viewer", report_id) == [], "nothing leaves before publishing"
        review = client.get(f"/api/v1/intel/shares/{draft['id']}", headers=sharing.headers("viewer")).json()
        kinds = {r["kind"] for r in review["redactions"]}
        assert {"email", "phone", "internal_user"} <= kinds
        assert all(r["object_id"] == report_id for r in review["redactions"] if r["kind"] in {"email", "phone"})
        assert EMAIL not in json.dumps(review)
        published = client.post(f"/api/v1/intel/shares/{draft['id']}/publish")
        assert published.status_code == 200, published.text
        assert published.json()["status"] == "published" and published.json()["published"] >= 3
        again = client.post(f"/api/v1/intel/shares/{draft['id']}/publish")
        assert again.status_code == 409
    seen = _visible(sharing, "viewer", report_id)
    assert len(seen) == 1
    report = seen[0]
    assert report["name"] == green_incident["title"]
    assert f"Incident {incident_id}: status" in report["description"]
    assert "ATT&CK tactics: discovery" in report["description"]
    text = json.dumps(_outgoing(sharing, "viewer").get_objects(), ensure_ascii=False)
    for personal in PERSONAL:
        assert personal not in text
    assert _visible(sharing, "analyst", report_id), "TLP:GREEN goes to every reader"


def test_sharing_is_written_to_the_audit_log_with_the_analyst(sharing: Running,
                                                              green_incident: dict[str, Any]) -> None:
    incident_id = green_incident["id"]
    with httpx.Client(base_url=sharing.url, headers=sharing.headers("analyst")) as client:
        share_id = client.post(f"/api/v1/incidents/{incident_id}/share", json={"tlp": "clear"}).json()["id"]
        assert client.post(f"/api/v1/intel/shares/{share_id}/publish").status_code == 200
    engine = create_engine(f"sqlite:///{sharing.data_dir / 'mamori.db'}")
    try:
        with Session(engine) as session:
            rows = session.scalars(select(AuditEntry).where(AuditEntry.action.like("%share%"))).all()
            done = {(r.actor, r.action, r.detail.get("share_id") or r.target) for r in rows}
    finally:
        engine.dispose()
    assert ("analyst-user", "incident.share.prepare", share_id) in done
    assert ("analyst-user", "intel.share.publish", f"share {share_id}") in done


def test_red_share_is_refused_with_the_reason(sharing: Running, green_incident: dict[str, Any]) -> None:
    with httpx.Client(base_url=sharing.url, headers=sharing.headers("analyst")) as client:
        refused = client.post(f"/api/v1/incidents/{green_incident['id']}/share", json={"tlp": "red"})
    assert refused.status_code == 422
    assert refused.json()["detail"]["detail"] == "TLP:RED information never leaves Mamori"
    assert refused.json()["detail"]["where"] == "tlp"


def test_amber_goes_only_to_the_named_partner_and_never_to_a_non_partner(sharing: Running) -> None:
    incident = _incident_on(sharing, "WS-AMBER", "suzuki")
    assert "ws-share" not in [str(h).lower() for h in incident["entities"]["host"]]
    url = f"/api/v1/incidents/{incident['id']}/share"
    with httpx.Client(base_url=sharing.url, headers=sharing.headers("analyst")) as client:
        nobody = client.post(url, json={"tlp": "amber"})
        assert nobody.status_code == 422 and "only to named partners" in nobody.json()["detail"]["detail"]
        stranger = client.post(url, json={"tlp": "amber", "audience": ["analyst-user"]})
        assert stranger.status_code == 422
        assert stranger.json()["detail"]["detail"] == "not TLP partners: analyst-user"
        assert "admin-user, viewer-user" in stranger.json()["detail"]["hint"]
        prepared = client.post(url, json={"tlp": "amber", "audience": ["viewer-user"]})
        assert prepared.status_code == 201, prepared.text
        draft = prepared.json()
        assert client.post(f"/api/v1/intel/shares/{draft['id']}/publish").status_code == 200
    report_id = _report_of(draft)["id"]
    seen = _visible(sharing, "viewer", report_id)
    assert seen, "the named partner reads it"
    assert "suzuki" not in json.dumps(seen) and EMAIL not in json.dumps(seen)
    assert _visible(sharing, "admin", report_id) == [], "a partner it was not addressed to does not"
    assert _visible(sharing, "analyst", report_id) == [], "a non-partner never does"


def test_viewers_may_review_but_not_share_and_unknown_ids_are_404(sharing: Running,
                                                                 green_incident: dict[str, Any]) -> None:
    with httpx.Client(base_url=sharing.url, headers=sharing.headers("viewer")) as client:
        assert client.post(f"/api/v1/incidents/{green_incident['id']}/share", json={}).status_code == 403
        assert client.get("/api/v1/intel/shares/no-such-share").status_code == 404
    with httpx.Client(base_url=sharing.url, headers=sharing.headers("analyst")) as client:
        assert client.post("/api/v1/incidents/999999/share", json={}).status_code == 404
        assert client.post("/api/v1/intel/shares/no-such-share/publish").status_code == 404
        bad = client.post(f"/api/v1/incidents/{green_incident['id']}/share", json={"tlp": "purple"})
        assert bad.status_code == 422 and "unknown TLP level" in bad.json()["detail"]["detail"]
