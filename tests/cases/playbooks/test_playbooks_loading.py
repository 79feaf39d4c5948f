"""Loading playbooks: good files load while bad ones are refused naming the file, the field and the
reason; the shipped examples load; ``mamori playbooks check`` reports the same."""

from __future__ import annotations

import textwrap
from pathlib import Path

import orjson
from click.testing import CliRunner

from mamori.cases.playbooks import load_folder
from mamori.cases.playbooks.cli import playbooks

EXAMPLES = Path(__file__).resolve().parents[3] / "src" / "mamori" / "cases" / "playbooks" / "data" / "examples"

GOOD = """
name: good
trigger: {events: [alert.created], level: {exact: medium}, tags: [attack.execution]}
actions:
  - {name: hook, type: webhook, url: "https://hooks.example/x"}
"""

BAD = {
    "bad-url.yaml": ("""
name: bad-url
trigger: {events: [incident.created]}
actions:
  - {name: hook, type: webhook, format: slack, url: "ftp://nope", text: hi}
""", "actions[0].url", "http:// or https://"),
    "bad-level.yaml": ("""
name: bad-level
trigger: {events: [incident.created], level: {at_least: severe}}
actions:
  - {name: mark, type: set_status, status: contained}
""", "trigger.level", "unknown level 'severe'"),
    "bad-retry.yaml": ("""
name: bad-retry
trigger: {events: [incident.created]}
actions:
  - {name: mark, type: set_status, status: contained}
  - {name: hook, type: webhook, url: "https://hooks.example/x", retry: {max_attempts: 0}}
""", "actions[1].retry.max_attempts", "from 1 to 20"),
    "bad-template.yaml": ("""
name: bad-template
trigger: {events: [incident.created]}
actions:
  - {name: mail, type: email, to: [a@example.jp], subject: "{{ incident.title ", body: x}
""", "actions[0].subject", "bad template"),
    "bad-type.yaml": ("""
name: bad-type
trigger: {events: [incident.opened]}
actions:
  - {name: x, type: launch_missiles}
""", "trigger.events[0]", "unknown event kind 'incident.opened'"),
    "bad-secret.yaml": ("""
name: bad-secret
trigger: {events: [alert.created]}
actions:
  - {name: hook, type: webhook, format: slack, url: "https://hooks.example/x", text: "${env:SLACK_TOKEN}"}
""", "actions[0].text", "only read in secret fields"),
    "bad-secret-template.yaml": ("""
name: bad-secret-template
trigger: {events: [alert.created]}
actions:
  - {name: hook, type: webhook, url: "https://hooks.example/{{ alert.id }}"}
""", "actions[0].url", "not templates"),
    "bad-yaml.yaml": ("name: [unclosed\n", "line 2", "not valid YAML"),
    "bad-status.yaml": ("""
name: bad-status
trigger: {events: [incident.updated]}
conditions: {all: [{path: incident.status, between: [1, 2]}]}
actions:
  - {name: mark, type: set_status, status: closed}
""", "actions[0].status", "'closed' is not a status"),
}


def _write(folder: Path) -> None:
    folder.mkdir()
    (folder / "good.yaml").write_text(GOOD, encoding="utf-8")
    for name, (text, _field, _reason) in BAD.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")


def test_bad_playbooks_are_refused_naming_file_field_and_reason_while_good_ones_load(tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    _write(folder)
    library = load_folder(folder)
    assert [p.name for p in library.playbooks] == ["good"]
    good = library.playbooks[0]
    assert good.trigger.level == "medium" and good.trigger.level_match == "exact"
    refused = {(r.path.name, r.field): r.reason for r in library.refused}
    for name, (_text, field, reason) in BAD.items():
        assert (name, field) in refused, (name, field, sorted(refused))
        assert reason in refused[(name, field)]
    assert ("bad-type.yaml", "actions[0].type") in refused  # every problem of a file is reported
    assert ("bad-status.yaml", "conditions.all[0]") in refused


def test_a_duplicate_playbook_name_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "a.yaml").write_text(GOOD, encoding="utf-8")
    (folder / "b.yaml").write_text(GOOD, encoding="utf-8")
    library = load_folder(folder)
    assert [p.path.name for p in library.playbooks] == ["a.yaml"]
    (refusal,) = library.refused
    assert refusal.path.name == "b.yaml" and refusal.field == "name" and "a.yaml" in refusal.reason


def test_the_shipped_example_playbooks_load() -> None:
    library = load_folder(EXAMPLES)
    assert not library.refused, [str(r) for r in library.refused]
    assert {p.name for p in library.playbooks} == {"notify-high-incidents", "block-source-ip", "collect-triage"}
    gated = {a.name for p in library.playbooks for a in p.actions if a.approval_required}
    assert gated == {"blocklist-source-ip"}


def test_playbooks_check_command_lists_loaded_and_refused_files(tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    _write(folder)
    result = CliRunner().invoke(playbooks, ["check", str(folder)])
    assert result.exit_code == 2
    assert "ok      good" in result.output
    assert f"refused {folder / 'bad-url.yaml'}: actions[0].url:" in result.output
    assert "1 loaded, 9 file(s) refused" in result.output
    clean = CliRunner().invoke(playbooks, ["check", str(EXAMPLES)])
    assert clean.exit_code == 0 and "3 loaded, 0 file(s) refused" in clean.output


def test_playbooks_check_with_an_event_shows_which_playbooks_start_and_their_rendered_inputs(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(orjson.dumps({"kind": "incident.created", "incident": {
        "id": 9, "title": "認証情報の窃取", "severity": "critical", "status": "new", "alert_count": 2,
        "tactics": ["credential_access"], "techniques": ["T1003"],
        "entities": {"host": ["ws-01"], "ip": ["192.0.2.7"]}}}).decode(), encoding="utf-8")
    result = CliRunner().invoke(playbooks, ["check", str(EXAMPLES), "--event", str(event)])
    assert result.exit_code == 0, result.output
    assert "block-source-ip: started by this event" in result.output
    assert ('blocklist-source-ip [add_to_list] (waits for approval): {"list":"blocklist","entity_kind":"ip",'
            '"value":"192.0.2.7"') in result.output
    assert "collect-triage: started by this event" in result.output
    assert '"argv":["/opt/mamori/bin/collect-triage","--incident","9","--host","ws-01"' in result.output
    assert '"url":"${env:MAMORI_SLACK_WEBHOOK_URL}"' in result.output  # secrets stay placeholders
