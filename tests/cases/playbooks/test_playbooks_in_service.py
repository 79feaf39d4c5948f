"""End to end in a real ``mamori serve`` child: ingested events raise an alert, the cases room opens an
incident, the incident starts a playbook that posts to Slack (a real local HTTP server) and asks for an
approval; the service restarts; the analyst approves over REST and the playbook contains the incident."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playbook_testing import HttpSink
from service_testing import Running, process_event, running_service, wait_for, whoami_rule

RULE_ID = "0c1a0000-0000-4000-8000-0000000000b1"

PLAYBOOK = """
name: contain-discovery
trigger: {events: [incident.created], level: {at_least: high}, tags: [attack.discovery]}
actions:
  - name: slack
    type: webhook
    format: slack
    url: "URL/slack"
    text: "[{{ incident.severity }}] {{ incident.title }}（ホスト: {{ incident.entities.host | join(', ') }}）"
  - name: contain
    type: set_status
    approval: required
    status: contained
    reason: "探索行為のため端末を隔離"
"""


@pytest.fixture
def child(tmp_path: Path, http_sink: HttpSink) -> Iterator[Running]:
    """The child with the Whoami rule and the playbook (its webhook pointed at the sink) loaded."""
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "contain.yaml").write_text(PLAYBOOK.replace("URL", http_sink.url), encoding="utf-8")
    with running_service(tmp_path, {"whoami.yml": whoami_rule(RULE_ID)},
                         extra={"MAMORI_PLAYBOOKS": str(playbooks)}) as running:
        yield running


def test_an_incident_from_ingested_events_runs_its_playbook_and_the_approved_step_contains_it_after_a_restart(
        child: Running, http_sink: HttpSink) -> None:
    with child.client("analyst") as analyst:
        accepted = analyst.post("/api/v1/ingest", json=[process_event(1, "cmd /c whoami /all", "WS-PB-01", "hanako")])
        assert accepted.status_code == 202
        (pending,) = wait_for(lambda: analyst.get("/api/v1/playbooks/approvals").json()["approvals"], timeout=60.0)
        incident_id = pending["run"]["incident_id"]
        assert pending["name"] == "contain" and pending["input"]["status"] == "contained"

        (slack,) = http_sink.received
        assert slack.path == "/slack"
        assert slack.body["text"] == "[high] Whoami Execution on WS-PB-01（ホスト: ws-pb-01）"

    # the service restarts while the run waits: the approval is still there and the run resumes
    child.process.stop()
    child.process.start()
    with child.client("analyst") as analyst:
        assert [p["id"] for p in analyst.get("/api/v1/playbooks/approvals").json()["approvals"]] == [pending["id"]]
        assert analyst.post(f"/api/v1/playbooks/approvals/{pending['id']}/approve").status_code == 200
        wait_for(lambda: analyst.get(f"/api/v1/incidents/{incident_id}").json()["status"] == "contained",
                 timeout=60.0)
        runs = analyst.get("/api/v1/playbooks/runs", params={"incident_id": incident_id}).json()
        assert runs["total"] == 1
        (run,) = runs["runs"]
        assert run["status"] == "succeeded" and run["playbook"] == "contain-discovery"
        assert [(a["name"], a["status"], a["approval"]) for a in run["actions"]] == [
            ("slack", "succeeded", "none"), ("contain", "succeeded", "approved")]
        detail = analyst.get(f"/api/v1/incidents/{incident_id}").json()
        assert detail["status_reason"] == "探索行為のため端末を隔離"
