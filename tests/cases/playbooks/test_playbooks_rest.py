"""The playbook REST API on a real ``mamori serve`` child: loaded and refused playbooks, approvals
(approve resumes the run in the service, reject ends it; both audited), the watch and block lists."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playbook_testing import INCIDENT
from sqlalchemy import select

from mamori.cases.playbooks import load_folder
from mamori.cases.playbooks.records import ActionRun, PlaybookRun
from mamori.config import load_settings
from mamori.service.launch import ServiceProcess, seed_tokens
from mamori.service.runtime import open_records
from mamori.store.db import make_engine, session_factory
from mamori.store.records import AuditEntry

BLOCK = """
name: block-source-ip
trigger: {events: [incident.created], level: {at_least: high}}
actions:
  - name: block
    type: add_to_list
    approval: required
    list: blocklist
    entity_kind: ip
    value: "{{ incident.entities.ip | first }}"
    reason: "インシデント #{{ incident.id }} の送信元"
"""


@dataclass
class Child:
    process: ServiceProcess
    tokens: dict[str, str]
    data: Path
    runs: list[tuple[int, int]]  # (run id, action run id) waiting for approval

    def get(self, path: str, role: str = "viewer", **params: Any) -> httpx.Response:
        return httpx.get(self.process.url + path, params=params, headers=self._auth(role), timeout=30)

    def post(self, path: str, role: str = "analyst", json: Any = None) -> httpx.Response:
        return httpx.post(self.process.url + path, json=json, headers=self._auth(role), timeout=30)

    def delete(self, path: str, role: str = "analyst") -> httpx.Response:
        return httpx.delete(self.process.url + path, headers=self._auth(role), timeout=30)

    def _auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def _waiting_runs(data: Path, folder: Path, count: int) -> list[tuple[int, int]]:
    """Runs paused at their approval, as the runner leaves them (written before the service starts)."""
    playbook = load_folder(folder).playbooks[0]
    engine, sessions = open_records(load_settings(None, env={}, data_dir=data))
    out = []
    with sessions.begin() as session:
        for number in range(count):
            incident = {**INCIDENT, "id": 100 + number, "entities": {"ip": [f"198.51.100.{number + 1}"]}}
            payload = {"kind": "incident.created", "actor": "system", "changes": {}, "alert": None,
                       "incident": incident}
            run = PlaybookRun(playbook=playbook.name, playbook_file=str(playbook.path),
                              playbook_sha256=playbook.sha256, event_kind="incident.created", payload=payload,
                              incident_id=incident["id"], status="waiting")
            session.add(run)
            session.flush()
            rendered = {"list": "blocklist", "entity_kind": "ip", "value": f"198.51.100.{number + 1}",
                        "reason": f"インシデント #{incident['id']} の送信元"}
            action = ActionRun(run_id=run.id, position=0, name="block", type="add_to_list",
                               status="waiting_approval", approval="pending", rendered_input=rendered)
            session.add(action)
            session.flush()
            out.append((run.id, action.id))
    engine.dispose()
    return out


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    root = tmp_path_factory.mktemp("playbooks-rest")
    folder = root / "playbooks"
    folder.mkdir()
    (folder / "block.yaml").write_text(textwrap.dedent(BLOCK), encoding="utf-8")
    (folder / "broken.yaml").write_text("name: broken\ntrigger: {events: [incident.created]}\nactions: []\n",
                                        encoding="utf-8")
    data = root / "data"
    tokens = seed_tokens(data)
    runs = _waiting_runs(data, folder, 2)
    process = ServiceProcess(data, extra={"MAMORI_PLAYBOOKS": str(folder), "MAMORI_BATCH_SECONDS": "0.1"})
    process.start()
    try:
        yield Child(process, tokens, data, runs)
    finally:
        process.stop()


def test_rest_lists_loaded_playbooks_and_refused_files_with_field_and_reason(child: Child) -> None:
    answer = child.get("/api/v1/playbooks")
    assert answer.status_code == 200
    body = answer.json()
    (loaded,) = body["playbooks"]
    assert loaded["name"] == "block-source-ip" and loaded["actions"][0]["approval_required"] is True
    assert loaded["trigger"]["level"] == "high" and loaded["trigger"]["level_match"] == "at_least"
    (refused,) = body["refused"]
    assert refused["file"].endswith("broken.yaml") and refused["field"] == "actions"
    assert "non-empty list" in refused["reason"]
    assert httpx.get(child.process.url + "/api/v1/playbooks", timeout=10).status_code == 401
    metrics = child.get("/metrics", role="admin").text.splitlines()
    assert "mamori_playbooks_loaded 1" in metrics or "mamori_playbooks_loaded 1.0" in metrics


def test_rest_approval_resumes_the_run_in_the_service_and_reject_ends_it(child: Child) -> None:
    (run_a, action_a), (run_b, action_b) = child.runs
    pending = child.get("/api/v1/playbooks/approvals", state="pending").json()["approvals"]
    assert sorted(p["id"] for p in pending) == sorted([action_a, action_b])
    assert child.post(f"/api/v1/playbooks/approvals/{action_a}/approve", role="viewer").status_code == 403
    assert child.post("/api/v1/playbooks/approvals/999999/approve").status_code == 404

    approved = child.post(f"/api/v1/playbooks/approvals/{action_a}/approve")
    assert approved.status_code == 200 and approved.json()["approval"] == "approved"
    rejected = child.post(f"/api/v1/playbooks/approvals/{action_b}/reject", json={"reason": "誤検知の可能性"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    again = child.post(f"/api/v1/playbooks/approvals/{action_b}/approve")
    assert again.status_code == 400 and "not waiting for approval" in again.json()["detail"]

    deadline = time.monotonic() + 30
    while child.get(f"/api/v1/playbooks/runs/{run_a}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "the service did not resume the approved run"
        time.sleep(0.1)
    run = child.get(f"/api/v1/playbooks/runs/{run_a}").json()
    assert run["payload"]["incident"]["id"] == 100
    assert run["actions"][0]["output"]["entry"]["value"] == "198.51.100.1"
    assert run["actions"][0]["decided_by"] == "analyst-user"
    entries = child.get("/api/v1/lists/blocklist").json()["entries"]
    assert [(e["value"], e["added_by"]) for e in entries] == [("198.51.100.1", "playbook:block-source-ip")]
    assert child.get(f"/api/v1/playbooks/runs/{run_b}").json()["status"] == "rejected"
    runs = child.get("/api/v1/playbooks/runs", playbook="block-source-ip", status="rejected").json()
    assert runs["total"] == 1 and runs["runs"][0]["id"] == run_b
    assert child.get("/api/v1/playbooks/runs", status="nonsense").status_code == 422


def test_rest_watchlist_add_list_remove_is_audited(child: Child) -> None:
    added = child.post("/api/v1/lists/watchlist", json={"entity_kind": "host", "value": "WS-FIN-02",
                                                        "reason": "経理部端末、監視強化"})
    assert added.status_code == 201 and added.json()["new"] is True
    entry_id = added.json()["id"]
    same = child.post("/api/v1/lists/watchlist", json={"entity_kind": "host", "value": "WS-FIN-02"})
    assert same.json()["new"] is False and same.json()["id"] == entry_id
    bad = child.post("/api/v1/lists/watchlist", json={"entity_kind": "colour", "value": "red"})
    assert bad.status_code == 400 and bad.json()["where"] == "entity_kind"
    assert child.post("/api/v1/lists/greylist", json={"entity_kind": "ip", "value": "1.2.3.4"}).status_code == 404
    listed = child.get("/api/v1/lists/watchlist").json()["entries"]
    assert [(e["value"], e["reason"], e["added_by"]) for e in listed] == [("WS-FIN-02", "経理部端末、監視強化",
                                                                          "analyst-user")]
    assert child.delete(f"/api/v1/lists/watchlist/{entry_id}", role="viewer").status_code == 403
    assert child.delete(f"/api/v1/lists/watchlist/{entry_id}").status_code == 200
    assert child.delete(f"/api/v1/lists/watchlist/{entry_id}").status_code == 404
    assert child.get("/api/v1/lists/watchlist").json()["entries"] == []

    engine = make_engine(load_settings(None, env={}, data_dir=child.data).db_url)  # read only: no migration
    with session_factory(engine)() as session:
        actions = [(a.actor, a.action) for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    engine.dispose()
    assert ("analyst-user", "watchlist.add") in actions and ("analyst-user", "watchlist.remove") in actions
    assert ("analyst-user", "playbook.approve") in actions and ("analyst-user", "playbook.reject") in actions
