"""Render a report as one self-contained HTML page (inline CSS, no external file, no script).

The template (``templates/report.html``) is Jinja2 with autoescaping on, so text from people and rules
(titles, notes, host names) always stays text. Words that depend on the language are prepared here
(``Words``); the CSS (``templates/report.css``) names the Noto CJK fonts first for Japanese.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jinja2

from mamori.cases.messages import LabelHook, render_message
from mamori.report.locale import Words, words
from mamori.report.model import ActionTaken, ReportData, TimelineItem
from mamori.report.summary import executive_summary, tactic_name

# entity kinds that usually identify a person (the APPI prompt names them)
PERSONAL_ENTITY_KINDS = ("user", "email", "ip")


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("mamori.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)


@functools.cache
def stylesheet() -> str:
    """The report's CSS (``templates/report.css``), inlined into every page."""
    return (resources.files("mamori.report") / "templates" / "report.css").read_text("utf-8")


def case_labels(t: Words) -> LabelHook:
    """Levels, severities and statuses in the cases room's messages worded with the report's own names."""
    groups = {"level": "severity", "severity": "severity", "status": "status"}

    def labelled(kind: str, value: str) -> str | None:
        group = groups.get(kind)
        return t.word(group, value) if group and value else None

    return labelled


def said(t: Words, messages: dict[str, Any] | None, column: str, fallback: str) -> str:
    """A column's text in the reader's language: the cases room's message for it, else the stored text."""
    return render_message((messages or {}).get(column), t.language, fallback, case_labels(t))


def change_text(t: Words, field: str, old: str | None, new: str | None,
                messages: dict[str, Any] | None = None) -> str:
    """A change of the trail in words, with status and severity values (and the cases room's own words,
    e.g. ``incident 4`` of a merge) translated."""
    new = said(t, messages, "new_value", new or "") or None
    group = {"status": "status", "severity": "severity"}.get(field)
    if field == "owner":
        old_text = old or t("fields.unassigned")
        new_text = new or t("fields.unassigned")
    elif group:
        old_text, new_text = t.word(group, old), t.word(group, new)
    else:
        old_text, new_text = old or t("fields.none"), new or t("fields.none")
    if field in {"created", "status", "severity", "owner", "evidence", "merged"}:
        return t(f"change.{field}", old=old_text, new=new_text)
    return t("change.other", field=field, old=old_text, new=new_text)


def timeline_text(t: Words, item: TimelineItem) -> str:
    """The 'what happened' cell of a timeline line."""
    if item.kind == "change":
        text = change_text(t, item.change_field, item.old, item.new, item.messages)
        reason = said(t, item.messages, "reason", item.reason)
        return text + ("　" if t.language == "ja" else " — ") + t("change.reason", reason=reason) \
            if reason else text
    if item.kind == "action":
        return f"{item.text}: {t.word('action.status', item.new)}"
    if item.kind == "alert" and item.level:
        return f"[{t.word('severity', item.level)}] {item.text}"
    return item.text


def action_row(t: Words, action: ActionTaken) -> dict[str, str]:
    """An 'actions taken' row: time, what was done, by whom, result."""
    if action.kind == "playbook":
        what = t("action.run", playbook=action.playbook, action=action.action, type=action.action_type)
        result = t.word("action.status", action.result)
        if action.approval == "approved" and action.decided_by:
            result += f" ({t('action.approved_by', who=action.decided_by)})"
        elif action.approval == "rejected" and action.decided_by:
            result += f" ({t('action.rejected_by', who=action.decided_by)})"
        if action.detail:
            result += f": {action.detail}"
        return {"time": t.time(action.time), "what": what, "who": action.actor, "result": result}
    what = change_text(t, action.change_field, action.old, action.new, action.messages)
    reason = said(t, action.messages, "reason", action.reason)
    return {"time": t.time(action.time), "what": what, "who": action.actor,
            "result": t("change.reason", reason=reason) if reason else ""}


def personal_kinds(data: ReportData) -> list[str]:
    """The entity kinds of the incident that usually identify a person (user, e-mail, IP address)."""
    present = {row.kind for row in data.entities}
    return [kind for kind in PERSONAL_ENTITY_KINDS if kind in present]


def view(data: ReportData, lang: str, time_zone: str | None = None) -> dict[str, Any]:
    """Everything the template places, already in the reader's language and zone."""
    t = words(lang, time_zone or (data.time_zone if lang == data.language else None))
    incident = data.incident
    overview = [
        (t("fields.severity"), t.word("severity", incident.severity), f"sev-{incident.severity}"),
        (t("fields.status"), t.word("status", incident.status), ""),
        (t("fields.owner"), incident.owner or t("fields.unassigned"), ""),
        (t("fields.alerts"), str(len(data.alerts) or incident.alert_count), ""),
        (t("fields.first_seen"), t.time(incident.first_seen), ""),
        (t("fields.last_seen"), t.time(incident.last_seen), ""),
        (t("fields.created"), t.time(incident.created_at), ""),
        (t("fields.acknowledged"), t.time(incident.acknowledged_at), ""),
        (t("fields.resolved"), t.time(incident.resolved_at), ""),
    ]
    if incident.status_reason:
        overview.insert(2, (t("fields.status_reason"),
                            said(t, incident.messages, "status_reason", incident.status_reason), ""))
    if incident.severity_basis:
        overview.append((t("fields.severity_basis"),
                         said(t, incident.messages, "severity_basis", incident.severity_basis), ""))
    timeline = [{"time": t.short_time(item.time), "kind": t.word("timeline_kind", item.kind), "kind_code": item.kind,
                 "what": timeline_text(t, item), "who": item.actor} for item in data.timeline]
    attack = [{"tactic": tactic_name(t, m), "tactic_id": m.tactic_id,
               "techniques": [{"id": ref.id, "name": ref.name} for ref in m.techniques]} for m in data.attack]
    kinds = personal_kinds(data)
    return {
        "t": t, "lang": t.language, "incident": incident, "overview": overview,
        "summary": executive_summary(data, t), "timeline": timeline, "omitted_events": data.omitted_events,
        "entities": [{"kind": t.word("entity", r.kind), "value": r.value, "count": r.alert_count or ""}
                     for r in data.entities],
        "attack": attack, "actions": [action_row(t, a) for a in data.actions],
        "evidence": [{"file": e.filename, "sha256": e.sha256, "size": t.size(e.size),
                      "added": f"{t.time(e.uploaded_at)} ({e.uploaded_by})"} for e in data.evidence],
        "personal_kinds": t.join([t.word("entity", k) for k in kinds]), "personal_involved": bool(kinds),
        "generated": t("report.generated", time=t.time(data.generated_at)),
        "times_in": t("report.times_in", zone=t.zone_label), "css": stylesheet(),
    }


def render_html(data: ReportData, lang: str, time_zone: str | None = None) -> str:
    """The report as a self-contained HTML page in ``lang`` (``ja`` or ``en``), times in ``time_zone``
    (default: the zone the report was built for, else JST for Japanese and UTC for English)."""
    return _environment().get_template("report.html").render(**view(data, lang, time_zone))


__all__ = ["PERSONAL_ENTITY_KINDS", "change_text", "personal_kinds", "render_html", "stylesheet", "view"]
