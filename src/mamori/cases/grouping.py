"""Which incident an alert belongs to: pure functions over plain values, driven by ``data/grouping.yaml``.

An alert joins an open incident that shares a configured entity (host, user, source IP, process tree,
file hash) within that entity's time window; values too common to mean anything (``SYSTEM``, ``-``,
``localhost``) never link. Alerts below ``min_level_to_open`` never open an incident alone. The
severity of an incident is the highest level of its alerts, raised one step when it spans many hosts
or ATT&CK tactics, with the reason in words. The worker (``mamori.cases.worker``) applies these
decisions to the database; nothing here touches it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from mamori.cases.messages import Message, label, message, render_message
from mamori.detect.attack import LEVELS, level_rank
from mamori.errors import MamoriError

ENTITY_KINDS = ("host", "user", "ip", "process_tree", "file_hash")
PROCESS_FIELDS = ("ProcessGuid", "ParentProcessGuid", "ProcessId", "ParentProcessId")

Entities = Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class LinkRule:
    """One entity kind that links alerts, and how far apart in time they may be."""

    entity: str
    window: timedelta


@dataclass(frozen=True)
class GroupingRules:
    """The grouping configuration, as read from ``grouping.yaml``."""

    links: tuple[LinkRule, ...]
    min_level_to_open: str = "medium"
    merge_bridged: bool = True
    ignore_values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    raise_hosts: int = 3
    raise_tactics: int = 3
    source: str = "grouping.yaml"
    max_span: timedelta | None = timedelta(hours=24)

    def window(self, kind: str) -> timedelta | None:
        """The window of an entity kind, or None when that kind does not link."""
        return next((link.window for link in self.links if link.entity == kind), None)


def _fail(message: str, where: str, hint: str | None = None) -> MamoriError:
    return MamoriError(message, where=where, hint=hint)


def parse_rules(document: Any, source: str) -> GroupingRules:
    """Build grouping rules from a parsed YAML document; every error names the file and key."""
    if not isinstance(document, dict):
        raise _fail("the grouping rules must be a mapping", source, "see mamori/cases/data/grouping.yaml")
    links: list[LinkRule] = []
    for index, item in enumerate(document.get("link_by") or []):
        where = f"{source}: link_by[{index}]"
        if not isinstance(item, dict) or item.get("entity") not in ENTITY_KINDS:
            raise _fail(f"entity must be one of {', '.join(ENTITY_KINDS)}", where)
        minutes = item.get("window_minutes")
        if not isinstance(minutes, int | float) or minutes <= 0:
            raise _fail("window_minutes must be a positive number", where)
        links.append(LinkRule(str(item["entity"]), timedelta(minutes=float(minutes))))
    level = str(document.get("min_level_to_open", "medium"))
    if level not in LEVELS:
        raise _fail(f"unknown level {level!r}", f"{source}: min_level_to_open", f"use one of {', '.join(LEVELS)}")
    ignored_raw = document.get("ignore_values") or {}
    if not isinstance(ignored_raw, dict):
        raise _fail("ignore_values must map an entity kind (or 'any') to a list", f"{source}: ignore_values")
    ignored: dict[str, frozenset[str]] = {}
    for kind, values in ignored_raw.items():
        if kind != "any" and kind not in ENTITY_KINDS:
            raise _fail(f"unknown entity kind {kind!r}", f"{source}: ignore_values",
                        f"use any or one of {', '.join(ENTITY_KINDS)}")
        if not isinstance(values, list):
            raise _fail("must be a list of values", f"{source}: ignore_values.{kind}")
        ignored[str(kind)] = frozenset(str(v).strip().lower() for v in values)
    severity = document.get("severity") or {}
    try:
        raise_hosts = int(severity.get("raise_when_hosts_at_least", 3))
        raise_tactics = int(severity.get("raise_when_tactics_at_least", 3))
    except (TypeError, ValueError, AttributeError) as exc:
        raise _fail(f"bad severity settings: {exc}", f"{source}: severity") from exc
    span = document.get("max_incident_span_minutes", 1440)
    if span is not None and (not isinstance(span, int | float) or span <= 0):
        raise _fail("must be a positive number of minutes, or null for no limit",
                    f"{source}: max_incident_span_minutes")
    return GroupingRules(tuple(links), level, bool(document.get("merge_bridged", True)), ignored,
                         raise_hosts, raise_tactics, source, None if span is None else timedelta(minutes=float(span)))


@functools.cache
def _default_rules() -> GroupingRules:
    text = (resources.files("mamori.cases") / "data" / "grouping.yaml").read_text("utf-8")
    return parse_rules(yaml.safe_load(text), "mamori/cases/data/grouping.yaml")


def load_rules(path: Path | None = None) -> GroupingRules:
    """The grouping rules: the file ``path`` when given (the ``grouping_rules`` setting), else the built-in one."""
    if path is None:
        return _default_rules()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(f"cannot read the grouping rules: {exc}", str(path)) from exc
    return parse_rules(document, str(path))


def normalise(kind: str, value: object, rules: GroupingRules) -> str | None:
    """The comparable form of an entity value (trimmed, lower case), or None when it is too common to link."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in rules.ignore_values.get("any", frozenset()) or text in rules.ignore_values.get(kind, frozenset()):
        return None
    return text


def process_tree_values(events: Iterable[Mapping[str, Any]], host: str | None = None) -> set[str]:
    """The process-tree identities of some events: each ProcessGuid and ParentProcessGuid (an alert on a
    child and one on its parent then share a value); ``host:pid`` where an event has no GUID."""
    out: set[str] = set()
    for event in events:
        guids = [event.get("ProcessGuid"), event.get("ParentProcessGuid")]
        found = [str(g).strip("{} ").lower() for g in guids if g not in (None, "", "-")]
        if found:
            out.update(f"guid:{g}" for g in found if g.strip("0-"))
            continue
        where = event.get("_host") or host
        for pid in (event.get("ProcessId"), event.get("ParentProcessId")):
            if where and pid not in (None, "", "-", 0, "0"):
                out.add(f"pid:{str(where).lower()}:{pid}")
    return out


def alert_entities(values: Mapping[str, Iterable[object]], rules: GroupingRules) -> dict[str, frozenset[str]]:
    """The linkable entities of an alert: every value of every kind, normalised, common ones dropped."""
    out: dict[str, frozenset[str]] = {}
    for kind in ENTITY_KINDS:
        kept = {n for v in values.get(kind, ()) if (n := normalise(kind, v, rules)) is not None}
        if kept:
            out[kind] = frozenset(kept)
    return out


def union_entities(first: Mapping[str, Iterable[str]], second: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Two entity maps merged, values sorted (the JSON form an incident stores)."""
    kinds = [k for k in ENTITY_KINDS if k in first or k in second]
    kinds += sorted(k for k in {*first, *second} if k not in ENTITY_KINDS)
    return {k: sorted({*first.get(k, ()), *second.get(k, ())}) for k in kinds}


@dataclass(frozen=True)
class AlertFacts:
    """What grouping needs to know of an alert."""

    alert_id: int
    level: str
    first_seen: datetime
    last_seen: datetime
    entities: Entities


@dataclass(frozen=True)
class OpenCase:
    """What grouping needs to know of an open incident."""

    incident_id: int
    first_seen: datetime
    last_seen: datetime
    entities: Entities
    untouched: bool = True  # status new and no owner: may be merged into another


@dataclass(frozen=True)
class Decision:
    """Where an alert goes: join an incident (and merge others into it), open a new one, or stay alone."""

    action: Literal["join", "open", "skip"]
    incident_id: int | None = None
    merge_ids: tuple[int, ...] = ()
    reason: str = ""
    message: Message | None = None  # the reason as a message (``mamori.cases.messages``)


def gap(alert: AlertFacts, case: OpenCase) -> timedelta:
    """How far apart in time an alert and an incident are (zero when they overlap)."""
    zero = timedelta(0)
    return max(zero, alert.first_seen - case.last_seen, case.first_seen - alert.last_seen)


def shared_entities(alert: AlertFacts, case: OpenCase, rules: GroupingRules) -> list[tuple[str, str]]:
    """The (kind, value) pairs an alert shares with an incident within each kind's window (none when the
    incident would then span more than ``max_span``)."""
    if rules.max_span is not None and (alert.last_seen - case.first_seen > rules.max_span
                                       or case.last_seen - alert.first_seen > rules.max_span):
        return []
    distance = gap(alert, case)
    out: list[tuple[str, str]] = []
    for link in rules.links:
        if distance > link.window:
            continue
        common = alert.entities.get(link.entity, frozenset()) & case.entities.get(link.entity, frozenset())
        out.extend((link.entity, value) for value in sorted(common))
    return out


def describe(shared: Sequence[tuple[str, str]]) -> str:
    """The shared entities in words, e.g. ``host=ws01, user=alice``."""
    return ", ".join(f"{kind}={value}" for kind, value in shared[:5]) + (" …" if len(shared) > 5 else "")


def shares_message(shared: Sequence[tuple[str, str]]) -> Message:
    """Why an alert joins: the shared entities as a message (``shares host=ws01`` in English)."""
    return message("grouping.shares", more=message("grouping.more") if len(shared) > 5 else "",
                   entities=[message("grouping.entity", kind=label("entity", kind), value=value)
                             for kind, value in shared[:5]])


def decide(alert: AlertFacts, cases: Sequence[OpenCase], rules: GroupingRules) -> Decision:
    """Where an alert goes: the oldest matching open incident (merging other untouched matches into it when
    ``merge_bridged``), else a new incident when its level is high enough, else nowhere."""
    matches = [(case, shared) for case in cases if (shared := shared_entities(alert, case, rules))]
    if matches:
        matches.sort(key=lambda item: (item[0].first_seen, item[0].incident_id))
        target, shared = matches[0]
        merge = tuple(case.incident_id for case, _ in matches[1:] if case.untouched) if rules.merge_bridged else ()
        return Decision("join", target.incident_id, merge, f"shares {describe(shared)}", shares_message(shared))
    if level_rank(alert.level) >= level_rank(rules.min_level_to_open):
        return Decision("open", reason=f"level {alert.level} opens an incident",
                        message=message("grouping.opens", level=label("level", alert.level)))
    return Decision("skip", reason=f"level {alert.level} is below {rules.min_level_to_open} and shares no entity "
                                   "with an open incident")


def severity_message(levels: Iterable[str], hosts: int, tactics: int, rules: GroupingRules) -> tuple[str, Message]:
    """An incident's severity from its alerts, and why as a message: the highest alert level, one step
    higher when it spans ``raise_hosts`` hosts or ``raise_tactics`` ATT&CK tactics."""
    ranks = [level_rank(level) for level in levels]
    base = max(ranks, default=level_rank("informational"))
    basis = message("severity.highest", level=label("level", LEVELS[base]))
    reasons: list[Message] = []
    if rules.raise_hosts > 0 and hosts >= rules.raise_hosts:
        reasons.append(message("severity.hosts", count=hosts, min=rules.raise_hosts))
    if rules.raise_tactics > 0 and tactics >= rules.raise_tactics:
        reasons.append(message("severity.tactics", count=tactics, min=rules.raise_tactics))
    rank = min(base + 1, len(LEVELS) - 1) if reasons else base
    if reasons and rank > base:
        basis = message("severity.raised", base=basis, severity=label("severity", LEVELS[rank]), reasons=reasons)
    elif reasons:
        basis = message("severity.already_highest", base=basis, reasons=reasons)
    return LEVELS[rank], basis


def derive_severity(levels: Iterable[str], hosts: int, tactics: int, rules: GroupingRules) -> tuple[str, str]:
    """An incident's severity from its alerts, and why in English words (see ``severity_message``)."""
    severity, basis = severity_message(levels, hosts, tactics, rules)
    return severity, render_message(basis, "en")


__all__ = ["ENTITY_KINDS", "AlertFacts", "Decision", "GroupingRules", "LinkRule", "OpenCase", "alert_entities",
           "decide", "derive_severity", "describe", "gap", "load_rules", "normalise", "parse_rules",
           "process_tree_values", "severity_message", "shared_entities", "shares_message", "union_entities"]
