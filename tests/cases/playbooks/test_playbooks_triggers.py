"""Which case events start which playbooks: trigger kinds, levels, tags, rule ids, entities, conditions,
and the loop guard against a playbook's own changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playbook_testing import ALERT, INCIDENT
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases.events import CaseEvent
from mamori.cases.playbooks import parse_playbook
from mamori.cases.playbooks.model import Library, Playbook
from mamori.cases.playbooks.runner import PlaybookRunner
from mamori.cases.playbooks.triggers import should_start


def _playbook(trigger: str, conditions: str = "") -> Playbook:
    text = (f"name: p\ntrigger: {trigger}\n{conditions}\n"
            "actions:\n  - {name: a, type: set_status, status: contained}\n")
    playbook, refused = parse_playbook(Path("p.yaml"), text)
    assert playbook is not None, [str(r) for r in refused]
    return playbook


def _incident(**changes: Any) -> dict[str, Any]:
    return {"kind": "incident.created", "actor": "system", "changes": {}, "alert": None,
            "incident": {**INCIDENT, **changes}}


def _alert(**changes: Any) -> dict[str, Any]:
    return {"kind": "alert.created", "actor": "system", "changes": {}, "alert": {**ALERT, **changes},
            "incident": None}


@pytest.mark.parametrize(("trigger", "payload", "starts"), [
    ("{events: [incident.created]}", _incident(), True),
    ("{events: [incident.updated]}", _incident(), False),
    ("{events: [incident.created], level: high}", _incident(severity="critical"), True),
    ("{events: [incident.created], level: {at_least: high}}", _incident(severity="medium"), False),
    ("{events: [incident.created], level: {exact: high}}", _incident(severity="critical"), False),
    ("{events: [incident.created], level: {exact: high}}", _incident(severity="high"), True),
    ("{events: [alert.created], level: {at_least: critical}}", _alert(), True),
    ("{events: [alert.created], tags: [attack.t1003.001]}", _alert(), True),
    ("{events: [alert.created], tags: [attack.exfiltration]}", _alert(), False),
    ("{events: [incident.created], tags: [attack.lateral_movement]}", _incident(), True),  # incident tactics
    ("{events: [incident.created], tags: [T1021.002]}", _incident(), True),  # incident techniques
    ("{events: [alert.created], rule_ids: [0d894093-71bc-43c3-8c4d-ecfc28dcf5d9]}", _alert(), True),
    ("{events: [alert.created], rule_ids: [other]}", _alert(), False),
    ("{events: [alert.created], entities: {ip: [203.0.113.45]}}", _alert(), True),
    ("{events: [incident.created], entities: {host: [ws-hr-07]}}", _incident(), True),
    ("{events: [incident.created], entities: {user: [someone]}}", _incident(), False),
])
def test_trigger_matches_kind_level_tags_rules_and_entities(trigger: str, payload: dict[str, Any],
                                                            starts: bool) -> None:
    assert should_start(_playbook(trigger), payload) is starts


@pytest.mark.parametrize(("conditions", "starts"), [
    ("conditions: {all: [{path: incident.status, equals: NEW}]}", True),
    ("conditions: {all: [{path: incident.status, in: [investigating, contained]}]}", False),
    ("conditions: {all: [{path: incident.alert_count, gte: 3}, {path: incident.severity, gte: medium}]}", True),
    ("conditions: {all: [{path: incident.alert_count, gte: 4}]}", False),
    ("conditions: {all: [{path: incident.alert_count, lte: 3}]}", True),
    ("conditions: {all: [{path: incident.entities.ip, contains: 203.0.113.45}]}", True),
    ("conditions: {all: [{path: incident.title, contains: 横展開}]}", True),
    ("conditions: {all: [{path: incident.entities.ip.0, equals: 203.0.113.45}]}", True),
    ("conditions: {all: [{path: incident.owner, exists: true}]}", False),
    ("conditions: {all: [{path: incident.owner, exists: false}]}", True),
    ("conditions: {all: [{path: incident.no.such.field, equals: 1}]}", False),
    ("conditions: {any: [{path: incident.status, equals: resolved}, {all: [{path: kind, equals: incident.created},"
     " {path: incident.first_seen, gte: '2026-11-29T00:00:00Z'}]}]}", True),
    ("conditions: {all: [{path: incident.status, not_equals: new}]}", False),
])
def test_conditions_compare_dotted_payload_fields(conditions: str, starts: bool) -> None:
    assert should_start(_playbook("{events: [incident.created]}", conditions), _incident()) is starts


def test_a_playbook_is_not_started_by_its_own_changes_nor_by_other_playbooks_unless_it_opts_in() -> None:
    plain = _playbook("{events: [incident.updated]}")
    opted = _playbook("{events: [incident.updated], on_playbook_changes: true}")
    by_itself = {**_incident(), "kind": "incident.updated", "actor": "playbook:p"}
    by_other = {**_incident(), "kind": "incident.updated", "actor": "playbook:escalate"}
    by_person = {**_incident(), "kind": "incident.updated", "actor": "analyst-sato"}
    assert should_start(plain, by_person) and should_start(opted, by_person)
    assert not should_start(plain, by_itself) and not should_start(opted, by_itself)
    assert not should_start(plain, by_other) and should_start(opted, by_other)


def test_cooldown_allows_one_run_per_incident_in_its_window(
        sessions: sessionmaker[Session], write_playbooks: Callable[..., Library]) -> None:
    library = write_playbooks(calm="""
        name: calm
        trigger: {events: [incident.updated], cooldown_seconds: 3600}
        actions:
          - {name: watch, type: add_to_list, list: watchlist, entity_kind: host, value: "{{ incident.id }}"}
        """)
    runner = PlaybookRunner(sessions, library)
    first = runner.start_runs(CaseEvent(kind="incident.updated", incident=INCIDENT))
    again = runner.start_runs(CaseEvent(kind="incident.updated", incident={**INCIDENT, "alert_count": 4}))
    other = runner.start_runs(CaseEvent(kind="incident.updated", incident={**INCIDENT, "id": 43}))
    assert len(first) == 1 and again == [] and len(other) == 1
