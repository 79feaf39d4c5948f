"""Webhook actions against a real local HTTP server: generic JSON, Slack, Teams; secrets; retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playbook_testing import ALERT, INCIDENT, HttpSink, drive
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases.events import CaseEvent
from mamori.cases.playbooks import get_run
from mamori.cases.playbooks.model import Library
from mamori.cases.playbooks.runner import PlaybookRunner


def _run_once(sessions: sessionmaker[Session], library: Library, event: CaseEvent) -> dict[str, Any]:
    runner = PlaybookRunner(sessions, library)
    run_ids = runner.start_runs(event)
    assert len(run_ids) == 1

    def finished() -> bool:
        with sessions() as session:
            run = get_run(session, run_ids[0])
            return run is not None and run["status"] in ("succeeded", "failed", "rejected")

    drive(runner, finished)
    with sessions() as session:
        run = get_run(session, run_ids[0])
    assert run is not None
    return run


def test_generic_slack_and_teams_webhooks_post_their_json_shapes(
        http_sink: HttpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "tok-9f8e7d6c5b")
    library = write_playbooks(notify=f"""
        name: notify
        trigger: {{events: [incident.created], level: {{at_least: high}}}}
        actions:
          - name: generic
            type: webhook
            url: "{http_sink.url}/generic"
            headers: {{Authorization: "Bearer ${{env:HOOK_TOKEN}}"}}
            body:
              source: mamori
              incident: "{{{{ incident.id }}}}"
              title: "{{{{ incident.title }}}}"
              hosts: ["{{{{ incident.entities.host | first }}}}"]
          - name: slack
            type: webhook
            format: slack
            url: "{http_sink.url}/slack"
            text: "[{{{{ incident.severity }}}}] インシデント #{{{{ incident.id }}}}: {{{{ incident.title }}}}"
          - name: teams
            type: webhook
            format: teams
            url: "{http_sink.url}/teams"
            title: "インシデント #{{{{ incident.id }}}}"
            text: "{{{{ incident.title }}}}"
            facts: {{重大度: "{{{{ incident.severity }}}}", ホスト: "{{{{ incident.entities.host | join(', ') }}}}"}}
            link: "https://mamori.example/console/incidents/{{{{ incident.id }}}}"
          - name: teams-adaptive
            type: webhook
            format: teams
            card: adaptive
            url: "{http_sink.url}/teams-adaptive"
            title: "インシデント #{{{{ incident.id }}}}"
            text: "{{{{ incident.title }}}}"
            facts: {{状態: "{{{{ incident.status }}}}"}}
        """)
    run = _run_once(sessions, library, CaseEvent(kind="incident.created", incident=INCIDENT))
    assert run["status"] == "succeeded", run
    by_path = {r.path: r for r in http_sink.received}
    assert set(by_path) == {"/generic", "/slack", "/teams", "/teams-adaptive"}

    generic = by_path["/generic"]
    assert generic.body == {"source": "mamori", "incident": "42", "title": INCIDENT["title"], "hosts": ["WS-HR-07"]}
    assert generic.headers["authorization"] == "Bearer tok-9f8e7d6c5b"
    assert generic.headers["content-type"].startswith("application/json")

    slack = by_path["/slack"].body
    assert slack["text"] == f"[high] インシデント #42: {INCIDENT['title']}"
    assert slack["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": slack["text"]}}]

    teams = by_path["/teams"].body
    assert teams["@type"] == "MessageCard" and teams["@context"] == "https://schema.org/extensions"
    assert teams["title"] == "インシデント #42" and teams["text"] == INCIDENT["title"]
    assert teams["themeColor"] == "D9534F"  # high
    assert teams["sections"] == [{"facts": [{"name": "重大度", "value": "high"},
                                            {"name": "ホスト", "value": "WS-HR-07"}]}]
    assert teams["potentialAction"][0]["targets"][0]["uri"] == "https://mamori.example/console/incidents/42"

    adaptive = by_path["/teams-adaptive"].body
    assert adaptive["type"] == "message"
    attachment = adaptive["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert [b["type"] for b in card["body"]] == ["TextBlock", "TextBlock", "FactSet"]
    assert card["body"][2]["facts"] == [{"title": "状態", "value": "new"}]

    # the run log keeps the rendered input with the placeholder, never the secret
    generic_log = next(a for a in run["actions"] if a["name"] == "generic")
    assert generic_log["input"]["headers"] == {"Authorization": "Bearer ${env:HOOK_TOKEN}"}
    assert generic_log["input"]["body"]["title"] == INCIDENT["title"]
    assert generic_log["output"]["status_code"] == 200
    assert "tok-9f8e7d6c5b" not in str(run)


def test_a_failing_webhook_is_retried_with_exponential_back_off_until_it_succeeds(
        http_sink: HttpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    http_sink.statuses = [500, 500]  # then 200
    library = write_playbooks(flaky=f"""
        name: flaky
        trigger: {{events: [alert.created]}}
        actions:
          - name: hook
            type: webhook
            url: "{http_sink.url}/hook"
            retry: {{max_attempts: 4, base_delay: 0.05}}
        """)
    run = _run_once(sessions, library, CaseEvent(kind="alert.created", alert=ALERT))
    assert run["status"] == "succeeded"
    action = run["actions"][0]
    assert action["attempts"] == 3
    assert [a["ok"] for a in action["attempt_log"]] == [False, False, True]
    assert [a["error"] for a in action["attempt_log"]][:2] == ["the webhook answered HTTP 500"] * 2
    assert [a["retry_in"] for a in action["attempt_log"]] == [0.05, 0.1, None]
    assert len(http_sink.received) == 3
    # the default payload of a generic webhook without a body is the event itself
    assert http_sink.received[-1].body["alert"]["rule_id"] == ALERT["rule_id"]


def test_a_webhook_failing_every_attempt_fails_the_run_and_skips_the_rest(
        http_sink: HttpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    http_sink.statuses = [503, 503]
    library = write_playbooks(down=f"""
        name: down
        trigger: {{events: [alert.created]}}
        actions:
          - {{name: hook, type: webhook, url: "{http_sink.url}/hook", retry: {{max_attempts: 2, base_delay: 0.01}}}}
          - {{name: after, type: webhook, url: "{http_sink.url}/after"}}
        """)
    run = _run_once(sessions, library, CaseEvent(kind="alert.created", alert=ALERT))
    assert run["status"] == "failed"
    assert "hook failed: the webhook answered HTTP 503" in run["error"]
    assert [(a["name"], a["status"], a["attempts"]) for a in run["actions"]] == [
        ("hook", "failed", 2), ("after", "skipped", 0)]
    assert run["actions"][0]["output"] == {"status_code": 503, "response": '{"error": "try again"}'}
    assert [r.path for r in http_sink.received] == ["/hook", "/hook"]


def test_a_client_error_is_not_retried(
        http_sink: HttpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    http_sink.statuses = [404]
    library = write_playbooks(gone=f"""
        name: gone
        trigger: {{events: [alert.created]}}
        actions:
          - {{name: hook, type: webhook, url: "{http_sink.url}/hook", retry: {{max_attempts: 5, base_delay: 0.01}}}}
        """)
    run = _run_once(sessions, library, CaseEvent(kind="alert.created", alert=ALERT))
    assert run["status"] == "failed" and run["actions"][0]["attempts"] == 1


def test_a_missing_secret_fails_the_action_naming_the_variable_only(
        http_sink: HttpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_HOOK", raising=False)
    library = write_playbooks(nosecret="""
        name: nosecret
        trigger: {events: [alert.created]}
        actions:
          - {name: hook, type: webhook, url: "${env:NO_SUCH_HOOK}"}
        """)
    run = _run_once(sessions, library, CaseEvent(kind="alert.created", alert=ALERT))
    assert run["status"] == "failed"
    assert run["actions"][0]["error"] == "environment variable NO_SUCH_HOOK is not set"
    assert http_sink.received == []


def test_templates_run_in_a_sandbox_and_a_template_error_fails_only_that_action(
        http_sink: HttpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    library = write_playbooks(tricky=f"""
        name: tricky
        trigger: {{events: [incident.created]}}
        actions:
          - name: escape
            type: webhook
            url: "{http_sink.url}/escape"
            body: {{probe: "[{{{{ ''.__class__.__mro__ }}}}]", missing: "[{{{{ incident.no.such.field }}}}]"}}
          - name: broken
            type: webhook
            url: "{http_sink.url}/broken"
            body: {{ratio: "{{{{ incident.alert_count / 0 }}}}"}}
        """)
    run = _run_once(sessions, library, CaseEvent(kind="incident.created", incident=INCIDENT))
    assert [r.body for r in http_sink.received] == [{"probe": "[]", "missing": "[]"}]
    assert run["status"] == "failed"
    broken = run["actions"][1]
    assert broken["status"] == "failed" and broken["attempts"] == 1
    assert broken["error"] == "cannot render the action's input: ZeroDivisionError: division by zero"
