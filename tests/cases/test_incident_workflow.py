"""The incident workflow over a real records database: allowed and refused status moves (the table is
data), the mandatory reason for false positives, the audit trail, acknowledgement and resolution times,
pinned severities and opening incidents by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases import workflow
from mamori.cases.grouping import load_rules
from mamori.cases.records import IncidentChange
from mamori.errors import MamoriError
from mamori.store.records import Alert

AddAlert = Callable[..., int]

ALLOWED = [("new", "investigating"), ("new", "contained"), ("new", "resolved"), ("investigating", "contained"),
           ("contained", "resolved"), ("resolved", "investigating"), ("false_positive", "investigating")]
REFUSED = [("investigating", "new"), ("resolved", "contained"), ("false_positive", "resolved"),
           ("contained", "new"), ("resolved", "false_positive")]


def opened(sessions: sessionmaker[Session], add_alert: AddAlert, status: str = "new") -> int:
    """An incident from one alert, walked to ``status`` along allowed moves."""
    alert_id = add_alert()
    with sessions.begin() as session:
        incident_id = workflow.open_incident(session, [alert_id], "alice").id
        path = {"new": [], "investigating": ["investigating"], "contained": ["contained"],
                "resolved": ["resolved"], "false_positive": ["false_positive"]}[status]
        for step in path:
            workflow.set_status(session, incident_id, step, "alice", reason="walk")
    return incident_id


def trail(sessions: sessionmaker[Session], incident_id: int) -> list[tuple[str, str, str | None, str | None, str]]:
    with sessions() as session:
        rows = session.scalars(select(IncidentChange).where(IncidentChange.incident_id == incident_id)
                               .order_by(IncidentChange.id))
        return [(c.actor, c.field, c.old_value, c.new_value, c.reason) for c in rows]


@pytest.mark.parametrize(("start", "end"), ALLOWED)
def test_allowed_moves_change_the_status_and_are_written_to_the_trail(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, start: str, end: str) -> None:
    incident_id = opened(case_sessions, add_alert, start)
    with case_sessions.begin() as session:
        assert workflow.set_status(session, incident_id, end, "bob", reason="checked").status == end
    assert trail(case_sessions, incident_id)[-1] == ("bob", "status", start, end, "checked")


@pytest.mark.parametrize(("start", "end"), REFUSED)
def test_refused_moves_are_an_error_naming_both_statuses_and_the_allowed_ones(
        case_sessions: sessionmaker[Session], add_alert: AddAlert, start: str, end: str) -> None:
    incident_id = opened(case_sessions, add_alert, start)
    with pytest.raises(workflow.TransitionRefused) as caught, case_sessions.begin() as session:
        workflow.set_status(session, incident_id, end, "bob", reason="x")
    assert f"from {start} to {end}" in caught.value.message
    assert caught.value.hint is not None and caught.value.hint.startswith(f"from {start} it may go to:")
    with case_sessions() as session:
        assert workflow.get_incident(session, incident_id).status == start


def test_a_false_positive_needs_a_reason_which_is_kept(
        case_sessions: sessionmaker[Session], add_alert: AddAlert) -> None:
    incident_id = opened(case_sessions, add_alert)
    for empty in (None, "", "   "):
        with pytest.raises(workflow.TransitionRefused, match="needs a reason"), case_sessions.begin() as session:
            workflow.set_status(session, incident_id, "false_positive", "bob", reason=empty)
    with case_sessions.begin() as session:
        incident = workflow.set_status(session, incident_id, "false_positive", "bob", reason="IT admin script")
        assert (incident.status, incident.status_reason) == ("false_positive", "IT admin script")
        assert incident.resolved_at is not None
    assert trail(case_sessions, incident_id)[-1] == ("bob", "status", "new", "false_positive", "IT admin script")


def test_an_unknown_status_or_severity_is_an_error_listing_the_known_ones(
        case_sessions: sessionmaker[Session], add_alert: AddAlert) -> None:
    incident_id = opened(case_sessions, add_alert)
    with pytest.raises(MamoriError) as caught, case_sessions.begin() as session:
        workflow.set_status(session, incident_id, "closed", "bob")
    assert caught.value.hint == f"statuses: {', '.join(workflow.STATUSES)}"
    with pytest.raises(MamoriError, match="unknown severity"), case_sessions.begin() as session:
        workflow.set_severity(session, incident_id, "urgent", "bob")


def test_leaving_new_acknowledges_closing_resolves_and_reopening_clears_the_resolution(
        case_sessions: sessionmaker[Session], add_alert: AddAlert) -> None:
    incident_id = opened(case_sessions, add_alert)
    with case_sessions.begin() as session:
        incident = workflow.set_status(session, incident_id, "investigating", "bob")
        acknowledged = incident.acknowledged_at
        assert acknowledged is not None and incident.resolved_at is None
        workflow.set_status(session, incident_id, "resolved", "bob")
        assert incident.resolved_at is not None
        workflow.set_status(session, incident_id, "investigating", "carol", reason="it came back")
        assert incident.resolved_at is None
        assert incident.acknowledged_at == acknowledged


def test_assigning_an_owner_acknowledges_and_is_in_the_trail(
        case_sessions: sessionmaker[Session], add_alert: AddAlert) -> None:
    incident_id = opened(case_sessions, add_alert)
    with case_sessions.begin() as session:
        incident = workflow.assign(session, incident_id, "hanako", "lead")
        assert (incident.owner, incident.status) == ("hanako", "new")
        assert incident.acknowledged_at is not None
        workflow.assign(session, incident_id, "", "lead")
        assert incident.owner is None
    assert trail(case_sessions, incident_id)[-2:] == [("lead", "owner", None, "hanako", ""),
                                                      ("lead", "owner", "hanako", None, "")]


def test_a_severity_set_by_hand_is_pinned_and_explained(
        case_sessions: sessionmaker[Session], add_alert: AddAlert) -> None:
    incident_id = opened(case_sessions, add_alert)
    other = add_alert(level="low", host="WS01")
    with case_sessions.begin() as session:
        incident = workflow.set_severity(session, incident_id, "critical", "lead", reason="domain controller")
        assert (incident.severity, incident.severity_pinned) == ("critical", True)
        assert incident.severity_basis == "set by lead: domain controller"
        workflow.link_alert(session, incident, other, "test")
        session.flush()
        joined = session.get(Alert, other)
        assert joined is not None
        workflow.refresh_summary(session, incident, load_rules(), [joined])
        assert incident.severity == "critical"
        assert incident.alert_count == 2


def test_notes_are_kept_with_their_author_and_noted_in_the_trail(
        case_sessions: sessionmaker[Session], add_alert: AddAlert) -> None:
    incident_id = opened(case_sessions, add_alert)
    with case_sessions.begin() as session:
        note = workflow.add_note(session, incident_id, "  isolated the host  ", "bob")
        assert (note.author, note.text) == ("bob", "isolated the host")
        with pytest.raises(MamoriError, match="needs some text"):
            workflow.add_note(session, incident_id, " ", "bob")
    assert trail(case_sessions, incident_id)[-1] == ("bob", "note", None, f"note {note.id}", "")


def test_opening_an_incident_by_hand_summarises_its_alerts(
        case_sessions: sessionmaker[Session], add_alert: AddAlert) -> None:
    first = add_alert(level="medium", host="WS01", user="alice", tags=["attack.execution", "attack.t1059.001"])
    second = add_alert(level="high", host="WS02", user="SYSTEM", rule="Credential dump",
                       tags=["attack.credential_access", "attack.t1003"], minutes=20)
    with case_sessions.begin() as session:
        incident = workflow.open_incident(session, [first, second], "alice")
        shown = workflow.incident_dict(incident)
    assert shown["title"] == "Credential dump on WS02"
    assert shown["severity"] == "high"
    assert shown["entities"] == {"host": ["ws01", "ws02"], "user": ["alice"]}
    assert shown["tactics"] == ["execution", "credential_access"]
    assert shown["techniques"] == ["T1003", "T1059.001"]
    assert shown["alert_count"] == 2
    assert shown["created_by"] == "alice"
    assert trail(case_sessions, shown["id"])[0] == ("alice", "created", None, "2 alert(s)", "opened by alice")


def test_opening_an_incident_refuses_unknown_alerts_and_alerts_already_in_one(
        case_sessions: sessionmaker[Session], add_alert: AddAlert) -> None:
    alert_id = add_alert()
    with pytest.raises(workflow.UnknownAlert, match="no alert 999"), case_sessions.begin() as session:
        workflow.open_incident(session, [alert_id, 999], "alice")
    with case_sessions.begin() as session:
        incident_id = workflow.open_incident(session, [alert_id], "alice").id
    with pytest.raises(workflow.AlertTaken) as caught, case_sessions.begin() as session:
        workflow.open_incident(session, [alert_id], "bob")
    assert caught.value.message == f"alert {alert_id} is in incident {incident_id}"


def test_an_unknown_incident_is_reported_as_not_found(case_sessions: sessionmaker[Session]) -> None:
    with pytest.raises(workflow.IncidentNotFound, match="no incident 42"), case_sessions.begin() as session:
        workflow.set_status(session, 42, "investigating", "bob")
