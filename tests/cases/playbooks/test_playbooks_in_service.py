"""End to end in a real ``mamori serve`` child: ingested events raise an alert, the cases room opens an
incident, the incident starts a playbook that posts to Slack (a real local HTTP server) and asks for an
approval; the service restarts; the analyst approves over REST and the playbook contains the incident."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playbook_testing import HttpSink

from mamori.service.launch import ServiceProcess, seed_tokens

RULE = """
title: Whoami Execution
id: 0c1a0000-0000-4000-8000-0000000000b1
status: test
level: high
author: Mamori tests
tags: [attack.discovery, attack.t1033]
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    CommandLine|contains: whoami
  condition: selection
"""

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


def _event(seq: int, command: str, host: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"EventTime": now, "Hostname": host, "EventID": 4688, "Channel": "Security",
            "SourceName": "Microsoft-Windows-Security-Auditing", "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
            "CommandLine": command, "SubjectUserName": "hanako", "seq": str(seq)}


def _wait_for(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def child(tmp_path: Path, http_sink: HttpSink) -> Iterator[tuple[ServiceProcess, dict[str, str]]]:
    rules, playbooks = tmp_path / "rules", tmp_path / "playbooks"
    rules.mkdir()
    playbooks.mkdir()
    (rules / "whoami.yml").write_text(textwrap.dedent(RULE), encoding="utf-8")
    (playbooks / "contain.yaml").write_text(PLAYBOOK.replace("URL", http_sink.url), encoding="utf-8")
    data = tmp_path / "data"
    tokens = seed_tokens(data)
    process = ServiceProcess(data, rules=[rules], extra={"MAMORI_BATCH_SECONDS": "0.1",
                                                         "MAMORI_PLAYBOOKS": str(playbooks)})
    process.start()
    try:
        yield process, tokens
    finally:
        process.stop()


def test_an_incident_from_ingested_events_runs_its_playbook_and_the_approved_step_contains_it_after_a_restart(
        child: tuple[ServiceProcess, dict[str, str]], http_sink: HttpSink) -> None:
    process, tokens = child
    headers = {"Authorization": f"Bearer {tokens['analyst']}"}
    with httpx.Client(base_url=process.url, headers=headers, timeout=30) as analyst:
        accepted = analyst.post("/api/v1/ingest", json=[_event(1, "cmd /c whoami /all", "WS-PB-01")])
        assert accepted.status_code == 202
        (pending,) = _wait_for(lambda: analyst.get("/api/v1/playbooks/approvals").json()["approvals"])
        incident_id = pending["run"]["incident_id"]
        assert pending["name"] == "contain" and pending["input"]["status"] == "contained"

        (slack,) = http_sink.received
        assert slack.path == "/slack"
        assert slack.body["text"] == "[high] Whoami Execution on WS-PB-01（ホスト: ws-pb-01）"

    # the service restarts while the run waits: the approval is still there and the run resumes
    process.stop()
    process.start()
    with httpx.Client(base_url=process.url, headers=headers, timeout=30) as analyst:
        assert [p["id"] for p in analyst.get("/api/v1/playbooks/approvals").json()["approvals"]] == [pending["id"]]
        assert analyst.post(f"/api/v1/playbooks/approvals/{pending['id']}/approve").status_code == 200
        _wait_for(lambda: analyst.get(f"/api/v1/incidents/{incident_id}").json()["status"] == "contained")
        runs = analyst.get("/api/v1/playbooks/runs", params={"incident_id": incident_id}).json()
        assert runs["total"] == 1
        (run,) = runs["runs"]
        assert run["status"] == "succeeded" and run["playbook"] == "contain-discovery"
        assert [(a["name"], a["status"], a["approval"]) for a in run["actions"]] == [
            ("slack", "succeeded", "none"), ("contain", "succeeded", "approved")]
        detail = analyst.get(f"/api/v1/incidents/{incident_id}").json()
        assert detail["status_reason"] == "探索行為のため端末を隔離"
