"""The REST API through HTTP with a real client against a real uvicorn server: auth, roles, ingest,
search, alerts, rules, retro-hunt, health and metrics."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson
from api_fixtures import WHOAMI_RULE_ID as RULE_ID
from service_testing import Running, process_event, wait_for, whoami_rule


def _event(seq: int, command: str = "cmd /c whoami", host: str = "WS1") -> dict[str, Any]:
    """A process-creation event by alice; by default a whoami on WS1."""
    return process_event(seq, command, host, "alice")


def test_every_api_route_refuses_a_request_without_a_valid_token(service: Running) -> None:
    with httpx.Client(base_url=service.url) as client:
        for method, path in [("GET", "/api/v1/events"), ("GET", "/api/v1/alerts"), ("GET", "/api/v1/rules"),
                             ("POST", "/api/v1/ingest"), ("GET", "/api/v1/stats"), ("GET", "/metrics"),
                             ("GET", "/api/v1/health"), ("POST", "/api/v1/hunt")]:
            missing = client.request(method, path)
            wrong = client.request(method, path, headers={"Authorization": "Bearer mamori_not-a-real-token"})
            assert missing.status_code == 401, path
            assert wrong.status_code == 401, path
            assert missing.headers["www-authenticate"] == "Bearer"
        assert client.get("/healthz").json() == {"status": "ok"}


def test_roles_limit_what_a_token_may_do(service: Running) -> None:
    with httpx.Client(base_url=service.url) as client:
        viewer, analyst = service.headers("viewer"), service.headers("analyst")
        assert client.get("/api/v1/alerts", headers=viewer).status_code == 200
        refused = client.post("/api/v1/ingest", headers=viewer, json=[{"a": 1}])
        assert refused.status_code == 403
        assert "analyst" in refused.json()["detail"]
        assert client.post(f"/api/v1/rules/{RULE_ID}/disable", headers=analyst).status_code == 403
        assert client.post("/api/v1/pipeline/pause", headers=analyst).status_code == 403
        assert client.post("/api/v1/alerts/1/acknowledge", headers=viewer).status_code == 403
        assert client.get("/api/v1/quarantine", headers=viewer).status_code == 403


def test_ingested_events_are_searchable_and_raise_a_deduplicated_alert(service: Running) -> None:
    analyst = service.headers("analyst")
    with httpx.Client(base_url=service.url, headers=analyst) as client:
        answer = client.post("/api/v1/ingest", json=[_event(i) for i in range(3)])
        assert answer.status_code == 202
        assert answer.json()["accepted"] == 3
        ndjson = b"\n".join(orjson.dumps(_event(i, "notepad.exe", "WS2")) for i in range(3, 5))
        answer = client.post("/api/v1/ingest", content=gzip.compress(ndjson),
                             headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
        assert answer.status_code == 202
        alerts = wait_for(lambda: client.get("/api/v1/alerts", params={"rule_id": RULE_ID}).json()["alerts"])
        assert len(alerts) == 1
        alert = alerts[0]
        assert alert["count"] == 3
        assert alert["entities"]["host"] == "WS1"
        assert alert["entities"]["user"] == "alice"
        assert "CommandLine" in alert["explanation"]
        found = wait_for(lambda: client.get("/api/v1/events", params={"field": "Computer=WS2"}).json()["total"] == 2)
        assert found
        page = client.get("/api/v1/events", params={"q": "WHOAMI", "limit": 2}).json()
        assert page["total"] == 3
        assert len(page["events"]) == 2
        assert {e["_uid"] for e in page["events"]} <= set(alert["event_uids"])
        assert client.get("/api/v1/events", params={"source": "winjson", "since": "2000-01-01T00:00:00Z",
                                                    "until": "2000-01-02T00:00:00Z"}).json()["total"] == 0
        unknown = client.get("/api/v1/events", params={"field": "NoSuchField=1"})
        assert unknown.status_code == 400
        assert "NoSuchField" in unknown.json()["detail"]


def test_an_alert_can_be_acknowledged_and_assigned_and_the_change_is_kept(service: Running) -> None:
    with httpx.Client(base_url=service.url, headers=service.headers("analyst")) as client:
        client.post("/api/v1/ingest", json=[_event(100, "whoami /all", "WS9")])
        alert = wait_for(lambda: client.get("/api/v1/alerts", params={"host": "WS9"}).json()["alerts"])[0]
        assert client.post(f"/api/v1/alerts/{alert['id']}/acknowledge").json()["status"] == "acknowledged"
        assigned = client.post(f"/api/v1/alerts/{alert['id']}/assign", json={"assignee": "analyst-user"}).json()
        assert assigned["assignee"] == "analyst-user"
        again = client.get(f"/api/v1/alerts/{alert['id']}").json()
        assert (again["status"], again["assignee"]) == ("acknowledged", "analyst-user")
        assert client.get("/api/v1/alerts", params={"assignee": "analyst-user"}).json()["total"] >= 1
        assert client.get("/api/v1/alerts/999999").status_code == 404


def test_a_disabled_rule_stops_alerting_without_restart_and_can_be_enabled_again(service: Running) -> None:
    admin = service.headers("admin")
    with httpx.Client(base_url=service.url, headers=admin) as client:
        assert client.post(f"/api/v1/rules/{RULE_ID}/disable").json() == {"id": RULE_ID, "enabled": False}
        rules = client.get("/api/v1/rules").json()["rules"]
        assert [r["enabled"] for r in rules if r["id"] == RULE_ID] == [False]
        client.post("/api/v1/ingest", json=[_event(200, "whoami", "WS-OFF")])
        wait_for(lambda: client.get("/api/v1/events", params={"field": "Computer=WS-OFF"}).json()["total"] == 1)
        assert client.get("/api/v1/alerts", params={"host": "WS-OFF"}).json()["total"] == 0
        client.post(f"/api/v1/rules/{RULE_ID}/enable")
        client.post("/api/v1/ingest", json=[_event(201, "whoami", "WS-OFF")])
        assert wait_for(lambda: client.get("/api/v1/alerts", params={"host": "WS-OFF"}).json()["total"] == 1)


def test_a_new_rule_can_be_hunted_over_stored_events_and_a_loaded_rule_tested(service: Running) -> None:
    with httpx.Client(base_url=service.url, headers=service.headers("analyst")) as client:
        client.post("/api/v1/ingest", json=[_event(300, "powershell -enc AAAA", "WS-HUNT")])
        wait_for(lambda: client.get("/api/v1/events", params={"field": "Computer=WS-HUNT"}).json()["total"] == 1)
        rule = whoami_rule("0c1a0000-0000-4000-8000-0000000000ff").replace("whoami", "-enc")
        hunted = client.post("/api/v1/hunt", json={"rule": rule}, timeout=60).json()
        assert [h["host"] for h in hunted["hits"]] == ["WS-HUNT"]
        assert hunted["events_scanned"] >= 1
        tested = client.post(f"/api/v1/rules/{RULE_ID}/test", json={"limit": 1000}, timeout=60).json()
        assert tested["total"] >= 3
        assert all("whoami" in h["explanation"].lower() for h in tested["hits"])
        broken = client.post("/api/v1/hunt", json={"rule": "title: x\ndetection: {}\n"})
        assert broken.status_code == 400


def test_a_new_correlation_over_a_loaded_rule_can_be_hunted_and_an_unknown_name_is_refused(service: Running
                                                                                            ) -> None:
    correlation = ("title: Whoami twice on a host\nid: 5e0c0000-0000-4000-8000-0000000000c1\nlevel: high\n"
                   f"correlation:\n  type: event_count\n  rules: [{RULE_ID}]\n  group-by: [Computer]\n"
                   "  timespan: 1h\n  condition: {gte: 2}\n")
    with httpx.Client(base_url=service.url, headers=service.headers("analyst")) as client:
        client.post("/api/v1/ingest", json=[_event(400, "whoami", "WS-CORR"), _event(401, "whoami /all", "WS-CORR")])
        wait_for(lambda: client.get("/api/v1/events", params={"field": "Computer=WS-CORR"}).json()["total"] == 2)
        hunted = client.post("/api/v1/hunt", json={"rule": correlation}, timeout=60).json()
        fired = [h for h in hunted["hits"] if h["rule_id"] == "5e0c0000-0000-4000-8000-0000000000c1"]
        assert fired and all(h["source"] == "correlation" for h in fired)  # the loaded rule's hits fed it
        unknown = client.post("/api/v1/hunt", json={"rule": correlation.replace(RULE_ID, "no_such_rule")})
        assert unknown.status_code == 400
        assert "correlation.rules names no loaded rule: no_such_rule" in unknown.text


def test_health_stats_metrics_and_openapi_describe_the_running_service(service: Running) -> None:
    with httpx.Client(base_url=service.url, headers=service.headers("viewer")) as client:
        health = client.get("/api/v1/health").json()
        assert health["status"] == "ok"
        assert set(health["inputs"]) >= {"syslog_tcp", "syslog_udp", "api"}
        # the parser processes load the rules at start: ready once they have (events went through already)
        wait_for(lambda: client.get("/api/v1/health").json()["pipeline"]["parsers_ready"])
        assert health["anomaly"]["baselines_built"] is None  # no stored history yet: no baseline, no error
        assert health["anomaly"]["last_error"] is None
        stats = client.get("/api/v1/stats").json()
        assert stats["received"]["http"] >= 5
        metrics = client.get("/metrics").text
        for name in ("mamori_events_received_total", "mamori_spool_pending_bytes", "mamori_pipeline_lag_seconds",
                     "mamori_quarantined_total", "mamori_rule_seconds_total", "mamori_ingest_to_alert_seconds"):
            assert name in metrics
        assert client.get("/openapi.json").json()["info"]["title"] == "Mamori SOC API"
        assert client.get("/docs").status_code == 200


def test_only_an_anomaly_alert_takes_a_benign_verdict_which_closes_it_and_is_audited(service: Running) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from mamori.service.anomaly_worker import anomaly_rule_id
    from mamori.store.records import Alert, AuditEntry

    engine = create_engine(f"sqlite:///{service.data_dir / 'mamori.db'}")
    try:
        with Session(engine) as session, session.begin():
            now = datetime.now(UTC)
            anomaly = Alert(rule_id=anomaly_rule_id("logon_hosts_user"), rule_title="Anomaly: logon_hosts_user (user)",
                            level="medium", author="Mamori UEBA", tags=["anomaly"], first_seen=now, last_seen=now,
                            created_at=now, updated_at=now, user="taro", event_uids=[], status="new",
                            dedup_key="not-one-the-worker-raised", count=1,
                            explanation="taro logged on to distinct hosts: 14 (typical 2)")
            session.add(anomaly)
            session.flush()
            anomaly_id = anomaly.id
        with httpx.Client(base_url=service.url, headers=service.headers("analyst")) as client:
            client.post("/api/v1/ingest", json=[_event(300, "whoami /priv", "WS-BENIGN")])
            sigma = wait_for(lambda: client.get("/api/v1/alerts", params={"host": "WS-BENIGN"}).json()["alerts"])[0]
            refused = client.post(f"/api/v1/alerts/{sigma['id']}/benign")
            assert refused.status_code == 409 and "not an anomaly alert" in refused.json()["detail"]
            viewer = client.post(f"/api/v1/alerts/{anomaly_id}/benign", headers=service.headers("viewer"))
            assert viewer.status_code == 403
            verdict = client.post(f"/api/v1/alerts/{anomaly_id}/benign")
            assert verdict.status_code == 200
            # the worker never raised this one: closed, nothing learned
            assert (verdict.json()["status"], verdict.json()["learned"]) == ("closed", False)
            assert client.post("/api/v1/alerts/999999/benign").status_code == 404
        with Session(engine) as session:
            entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "alert.benign")).one()
        assert (entry.actor, entry.target, entry.detail["learned"]) == ("analyst-user", f"alert {anomaly_id}", False)
    finally:
        engine.dispose()
