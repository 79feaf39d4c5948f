"""E-mail actions against a real SMTP server (aiosmtpd), command actions with the event on stdin."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from playbook_testing import INCIDENT, SmtpSink, drive
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases.events import CaseEvent
from mamori.cases.playbooks import get_run
from mamori.cases.playbooks.model import Library
from mamori.cases.playbooks.runner import PlaybookRunner


def _run_once(sessions: sessionmaker[Session], library: Library, event: CaseEvent) -> dict[str, Any]:
    runner = PlaybookRunner(sessions, library)
    (run_id,) = runner.start_runs(event)

    def finished() -> bool:
        with sessions() as session:
            run = get_run(session, run_id)
            return run is not None and run["status"] in ("succeeded", "failed", "rejected")

    drive(runner, finished)
    with sessions() as session:
        run = get_run(session, run_id)
    assert run is not None
    return run


def test_email_reaches_the_smtp_server_with_japanese_subject_and_body(
        smtp_sink: SmtpSink, sessions: sessionmaker[Session], write_playbooks: Callable[..., Library],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_USER", "mamori-bot")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret-smtp-pass")
    library = write_playbooks(mail=f"""
        name: mail-on-call
        trigger: {{events: [incident.created]}}
        actions:
          - name: mail
            type: email
            host: 127.0.0.1
            port: {smtp_sink.port}
            user: "${{env:SMTP_USER}}"
            password: "${{env:SMTP_PASSWORD}}"
            sender: mamori@soc.example.co.jp
            to: [oncall@soc.example.co.jp, soc-lead@soc.example.co.jp]
            subject: "【要対応】インシデント #{{{{ incident.id }}}} {{{{ incident.title }}}}"
            body: |
              当番各位

              重大度 {{{{ incident.severity }}}} のインシデントが起票されました。
              送信元IP: {{{{ incident.entities.ip | join(', ') }}}}
        """)
    run = _run_once(sessions, library, CaseEvent(kind="incident.created", incident=INCIDENT))
    assert run["status"] == "succeeded", run
    assert smtp_sink.logins == [("mamori-bot", "s3cret-smtp-pass")]
    assert smtp_sink.envelopes == [("mamori@soc.example.co.jp",
                                    ["oncall@soc.example.co.jp", "soc-lead@soc.example.co.jp"])]
    (message,) = smtp_sink.messages
    assert message["Subject"] == f"【要対応】インシデント #42 {INCIDENT['title']}"
    body = message.get_content()
    assert "重大度 high のインシデントが起票されました。" in body
    assert "送信元IP: 203.0.113.45" in body
    assert message.get_content_charset() == "utf-8"
    action = run["actions"][0]
    assert action["input"]["password"] == "${env:SMTP_PASSWORD}"
    assert action["output"]["recipients"] == ["oncall@soc.example.co.jp", "soc-lead@soc.example.co.jp"]
    assert "s3cret-smtp-pass" not in str(run)


def test_email_to_a_server_that_is_down_is_retried_then_fails(
        sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    library = write_playbooks(mail="""
        name: mail
        trigger: {events: [incident.created]}
        actions:
          - {name: mail, type: email, host: 127.0.0.1, port: %d, to: [a@example.jp], subject: s, body: b,
             retry: {max_attempts: 2, base_delay: 0.01}}
        """.replace("%d", str(port)))
    run = _run_once(sessions, library, CaseEvent(kind="incident.created", incident=INCIDENT))
    assert run["status"] == "failed"
    assert run["actions"][0]["attempts"] == 2
    assert "ConnectionRefusedError" in run["actions"][0]["error"]


SCRIPT = (
    "import json, sys\n"
    "event = json.load(sys.stdin)\n"
    "print('triage', event['incident']['id'], event['incident']['entities']['host'][0], sys.argv[1:])\n"
    "print('警告: 収集は部分的', file=sys.stderr)\n"
    "sys.exit(int(event['incident']['alert_count']) - 3)\n"
)
PYTHON = orjson.dumps(sys.executable).decode()
SCRIPT_JSON = orjson.dumps(SCRIPT).decode()


def test_command_gets_the_event_as_json_on_stdin_and_its_output_is_logged(
        sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    library = write_playbooks(triage="""
        name: triage
        trigger: {events: [incident.created]}
        actions:
          - name: collect
            type: command
            argv: [PYTHON, -c, SCRIPT, --host, "{{ incident.entities.host | first }}"]
            timeout: 60
        """.replace("PYTHON", PYTHON).replace("SCRIPT", SCRIPT_JSON))
    run = _run_once(sessions, library, CaseEvent(kind="incident.created", incident=INCIDENT))
    assert run["status"] == "succeeded", run
    output = run["actions"][0]["output"]
    assert output["exit_code"] == 0
    assert output["stdout"] == "triage 42 WS-HR-07 ['--host', 'WS-HR-07']\n"
    assert output["stderr"] == "警告: 収集は部分的\n"
    assert run["actions"][0]["input"]["argv"][-1] == "WS-HR-07"


def test_command_exit_code_and_timeout_fail_the_action(
        sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    library = write_playbooks(triage="""
        name: triage
        trigger: {events: [incident.created]}
        actions:
          - {name: exits, type: command, argv: [PYTHON, -c, SCRIPT], retry: {max_attempts: 1}, on_failure: continue}
          - {name: hangs, type: command, argv: [PYTHON, -c, "import time; time.sleep(30)"], timeout: 0.5,
             retry: {max_attempts: 1}}
        """.replace("PYTHON", PYTHON).replace("SCRIPT", SCRIPT_JSON))
    incident = {**INCIDENT, "alert_count": 5}
    run = _run_once(sessions, library, CaseEvent(kind="incident.created", incident=incident))
    assert run["status"] == "failed"
    exits, hangs = run["actions"]
    assert exits["status"] == "failed" and exits["error"] == "the command exited with code 2"
    assert exits["output"]["exit_code"] == 2 and exits["output"]["stdout"].startswith("triage 42")
    assert hangs["status"] == "failed" and hangs["error"] == "the command ran longer than 0.5 s and was stopped"


def test_email_over_starttls_verifies_the_certificate_and_logs_in(
        smtp_tls_sink: tuple[SmtpSink, Path], sessions: sessionmaker[Session],
        write_playbooks: Callable[..., Library], monkeypatch: pytest.MonkeyPatch) -> None:
    sink, cert = smtp_tls_sink
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret-smtp-pass")
    template = """
        name: NAME
        trigger: {events: [incident.created]}
        actions:
          - {name: mail, type: email, host: 127.0.0.1, port: PORT, starttls: true, CA user: mamori-bot,
             password: "${env:SMTP_PASSWORD}", to: [oncall@soc.example.co.jp],
             subject: "【要対応】{{ incident.title }}", body: "確認してください", retry: {max_attempts: 1}}
        """.replace("PORT", str(sink.port))
    trusted = write_playbooks(tls=template.replace("NAME", "tls").replace("CA", f"ca_file: {cert},"))
    run = _run_once(sessions, trusted, CaseEvent(kind="incident.created", incident=INCIDENT))
    assert run["status"] == "succeeded", run
    assert sink.logins == [("mamori-bot", "s3cret-smtp-pass")]
    assert sink.messages[0]["Subject"] == f"【要対応】{INCIDENT['title']}"

    untrusted = write_playbooks(tls=template.replace("NAME", "tls").replace("CA", ""))
    run = _run_once(sessions, untrusted, CaseEvent(kind="incident.created", incident=INCIDENT))
    assert run["status"] == "failed"
    assert run["actions"][0]["error"].startswith("the SMTP server's certificate is not trusted")
    assert len(sink.messages) == 1


def test_command_sees_only_the_secrets_it_is_given(
        sessions: sessionmaker[Session], write_playbooks: Callable[..., Library],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAMORI_SMTP_PASSWORD", "service-secret-1234")
    monkeypatch.setenv("TRIAGE_TOKEN", "triage-token-5678")
    script = "import os; print(os.environ.get('MAMORI_SMTP_PASSWORD'), os.environ.get('API_TOKEN'))"
    library = write_playbooks(env="""
        name: env
        trigger: {events: [incident.created]}
        actions:
          - {name: show, type: command, argv: [PYTHON, -c, SCRIPT], env: {API_TOKEN: "${env:TRIAGE_TOKEN}"}}
        """.replace("PYTHON", PYTHON).replace("SCRIPT", orjson.dumps(script).decode()))
    run = _run_once(sessions, library, CaseEvent(kind="incident.created", incident=INCIDENT))
    action = run["actions"][0]
    assert action["output"]["stdout"] == "None ***\n"  # the given secret reached the program, scrubbed in the log
    assert action["input"]["env"] == {"API_TOKEN": "${env:TRIAGE_TOKEN}"}
    assert "triage-token-5678" not in str(run) and "service-secret-1234" not in str(run)
