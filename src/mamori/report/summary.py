"""The executive summary: a few sentences written from the report's data in the reader's language.

What happened (when, how many alerts, the most severe rule), where (hosts, user accounts), how (ATT&CK
tactics), where it stands (status, severity, owner) and the SLA state. Sentences are templates from the
locale files; nothing here is free text.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mamori.detect.attack import level_rank
from mamori.report.locale import Words
from mamori.report.model import EntityRow, ReportData, SlaClock, TacticMapping

MAX_NAMED = 5


def _listed(words: Words, values: list[str]) -> str:
    shown = values[:MAX_NAMED]
    text = words.join(shown)
    if len(values) > len(shown):
        text += (" " if words.language == "en" else "") + words("summary.more", count=len(values) - len(shown))
    return text


def _values(rows: tuple[EntityRow, ...], kind: str) -> list[str]:
    return [r.value for r in rows if r.kind == kind]


def tactic_name(words: Words, tactic: TacticMapping) -> str:
    """A tactic's name in the reader's language, or the "unmapped" label."""
    if not tactic.tag:
        return words("attack.unmapped")
    return tactic.name_ja if words.language == "ja" else tactic.name_en


def _sla_sentence(words: Words, clock: SlaClock, now: datetime) -> str:
    what = words(f"summary.sla_{clock.kind}")
    due = words.time(clock.due)
    if clock.met_at is not None:
        took = clock.met_at - (clock.due - timedelta(seconds=clock.target_seconds))
        if clock.met_at <= clock.due:
            return words("summary.sla_met", what=what, took=words.duration(took))
        return words("summary.sla_missed", what=what, took=words.duration(took),
                     target=words.duration(clock.target_seconds))
    if now > clock.due:
        return words("summary.sla_breached", what=what, due=due)
    return words("summary.sla_ok", what=what, due=due, left=words.duration(clock.due - now))


def executive_summary(data: ReportData, words: Words) -> list[str]:
    """The summary's sentences, in order: what happened, where, how, the state, the SLA."""
    incident = data.incident
    out = []
    if data.alerts:
        top = min(data.alerts, key=lambda a: (-level_rank(a.level), a.first_seen, a.id))  # earliest of the worst
        out.append(words("summary.what", first=words.time(incident.first_seen), last=words.time(incident.last_seen),
                         alerts=len(data.alerts), top_rule=top.rule_title))
    else:
        out.append(words("summary.what_no_alerts"))
    hosts, users = _values(data.entities, "host"), _values(data.entities, "user")
    out.append(words("summary.hosts", hosts=_listed(words, hosts)) if hosts else words("summary.no_hosts"))
    if users:
        out.append(words("summary.users", users=_listed(words, users)))
    named = [tactic_name(words, t) for t in data.attack if t.tag]
    out.append(words("summary.tactics", count=len(named), tactics=words.join(named)) if named
               else words("summary.no_tactics"))
    owner = words("summary.owner", owner=incident.owner) if incident.owner else words("summary.no_owner")
    out.append(words("summary.state", status=words.word("status", incident.status),
                     severity=words.word("severity", incident.severity), owner=owner))
    out += [_sla_sentence(words, clock, data.generated_at) for clock in data.sla]
    return out


__all__ = ["executive_summary", "tactic_name"]
