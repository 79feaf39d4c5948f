"""Approval-gated actions: the run pauses, an analyst approves or rejects, the run resumes (also in a
new runner over the same database, as after a restart); the run log keeps every step."""

from __future__ import annotations

from collections.abc import Callable

from playbook_testing import INCIDENT, HttpSink, drive
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases.events import CaseEvent
from mamori.cases.playbooks import approve, get_run, list_entries, list_runs, pending_approvals, reject
from mamori.cases.playbooks.model import Library
from mamori.cases.playbooks.runner import PlaybookRunner
from mamori.errors import MamoriError
from mamori.store.records import AuditEntry

BLOCK = """
    name: block-source-ip
    trigger: {events: [incident.created], level: {at_least: high}}
    actions:
      - name: notify
        type: webhook
        url: "URL/notify"
        body: {text: "承認待ち: {{ incident.entities.ip | first }} をブロック"}
      - name: block
        type: add_to_list
        approval: required
        list: blocklist
        entity_kind: ip
        value: "{{ incident.entities.ip | first }}"
        reason: "インシデント #{{ incident.id }} の送信元"
      - name: done
        type: webhook
        url: "URL/done"
        body: {blocked: "{{ steps.block.entry.value }}", new: "{{ steps.block.new }}"}
    """


def _status(sessions: sessionmaker[Session], run_id: int) -> str:
    with sessions() as session:
        run = get_run(session, run_id)
        assert run is not None
        return str(run["status"])


def test_an_approval_gated_action_waits_then_runs_after_approval_even_in_a_new_runner(
        http_sink: HttpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    library = write_playbooks(block=BLOCK.replace("URL", http_sink.url))
    runner = PlaybookRunner(sessions, library)
    (run_id,) = runner.start_runs(CaseEvent(kind="incident.created", incident=INCIDENT))
    drive(runner, lambda: _status(sessions, run_id) == "waiting" and runner.idle())

    assert [r.path for r in http_sink.received] == ["/notify"]
    with sessions() as session:
        (pending,) = pending_approvals(session)
        assert list_entries(session, "blocklist") == []
    assert pending["name"] == "block" and pending["status"] == "waiting_approval"
    assert pending["input"]["value"] == "203.0.113.45"  # the analyst sees what will be done
    assert pending["run"]["playbook"] == "block-source-ip" and pending["run"]["incident_id"] == 42

    # the service restarts: a new runner over the same database; approval happens while it runs
    runner.stop()
    restarted = PlaybookRunner(sessions, library)
    with sessions.begin() as session:
        approve(session, pending["id"], "analyst-sato")
    drive(restarted, lambda: _status(sessions, run_id) == "succeeded")

    with sessions() as session:
        (entry,) = list_entries(session, "blocklist")
        run = get_run(session, run_id)
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "playbook.approve")).one()
        assert pending_approvals(session) == []
    assert (entry["entity_kind"], entry["value"], entry["added_by"]) == ("ip", "203.0.113.45",
                                                                         "playbook:block-source-ip")
    assert entry["reason"] == "インシデント #42 の送信元" and entry["run_id"] == run_id
    assert audit.actor == "analyst-sato" and audit.detail["run"] == run_id
    assert http_sink.received[-1].body == {"blocked": "203.0.113.45", "new": "True"}

    # the run log: the input event, each action's rendered input, output, attempts, timings, decision
    assert run is not None
    assert run["payload"]["incident"]["title"] == INCIDENT["title"] and run["payload"]["kind"] == "incident.created"
    notify, block, done = run["actions"]
    assert notify["input"] == {"url": f"{http_sink.url}/notify", "body": {"text": "承認待ち: 203.0.113.45 をブロック"}}
    assert notify["output"]["status_code"] == 200 and notify["attempts"] == 1 and notify["error"] == ""
    assert block["approval"] == "approved" and block["decided_by"] == "analyst-sato"
    assert block["output"]["entry"]["value"] == "203.0.113.45" and block["output"]["new"] is True
    for action in (notify, block, done):
        assert action["status"] == "succeeded"
        assert action["started_at"] and action["finished_at"] and action["duration_ms"] is not None
        assert len(action["attempt_log"]) == 1 and action["attempt_log"][0]["ok"] is True
    with sessions() as session:
        runs = list_runs(session, playbook="block-source-ip", status="succeeded")
    assert [r["id"] for r in runs] == [run_id]


def test_a_rejected_action_is_not_done_and_ends_the_run(
        http_sink: HttpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    library = write_playbooks(block=BLOCK.replace("URL", http_sink.url))
    runner = PlaybookRunner(sessions, library)
    (run_id,) = runner.start_runs(CaseEvent(kind="incident.created", incident=INCIDENT))
    drive(runner, lambda: _status(sessions, run_id) == "waiting" and runner.idle())
    with sessions() as session:
        (pending,) = pending_approvals(session)
    with sessions.begin() as session:
        reject(session, pending["id"], "analyst-sato", "社内の NAT ゲートウェイのため")
    with sessions.begin() as session:
        try:
            approve(session, pending["id"], "analyst-suzuki")
            raise AssertionError("a decided approval was approved again")
        except MamoriError as exc:
            assert "not waiting for approval" in exc.message
    runner.step()
    with sessions() as session:
        run = get_run(session, run_id)
        assert list_entries(session, "blocklist") == []
    assert run is not None and run["status"] == "rejected"
    assert run["error"] == "block rejected by analyst-sato: 社内の NAT ゲートウェイのため"
    assert [(a["name"], a["status"]) for a in run["actions"]] == [
        ("notify", "succeeded"), ("block", "rejected"), ("done", "skipped")]
    assert [r.path for r in http_sink.received] == ["/notify"]


def test_a_run_of_a_playbook_changed_while_it_waited_is_not_resumed(
        http_sink: HttpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    library = write_playbooks(block=BLOCK.replace("URL", http_sink.url))
    runner = PlaybookRunner(sessions, library)
    (run_id,) = runner.start_runs(CaseEvent(kind="incident.created", incident=INCIDENT))
    drive(runner, lambda: _status(sessions, run_id) == "waiting" and runner.idle())
    changed = write_playbooks(block=BLOCK.replace("URL", http_sink.url).replace("list: blocklist", "list: watchlist"))
    runner.library = changed
    with sessions.begin() as session:
        (pending,) = pending_approvals(session)
        approve(session, pending["id"], "analyst-sato")
    runner.step()
    with sessions() as session:
        run = get_run(session, run_id)
        assert list_entries(session, "watchlist") == [] and list_entries(session, "blocklist") == []
    assert run is not None and run["status"] == "failed" and "changed since the run started" in run["error"]
