"""The figures on the dashboard: alerts over time by level, by level and by tactic, top hosts and users,
the ATT&CK tactic/technique heat map and ingest health, read from the records and the running service."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mamori.cases import workflow
from mamori.cases.sla import mtta_mttr
from mamori.detect.attack import tactics, tactics_of
from mamori.report.attack_map import attack_mapping, technique_name
from mamori.service.runtime import Service
from mamori.store.query import count_events
from mamori.store.records import Alert, QuarantineRecord, utcnow
from mamori.web.charts import (
    LEVEL_COLOURS,
    LEVEL_ORDER,
    Bar,
    HeatColumn,
    attack_heat_map,
    horizontal_bars,
    stacked_time_bars,
)
from mamori.web.i18n import Translator

WINDOWS = (1, 7, 14, 30)
TOP = 8


@dataclass(frozen=True)
class Dashboard:
    """The dashboard's charts (SVG) and figures for one reader and time window."""

    days: int
    total: int
    open_count: int
    over_time: Markup
    by_level: Markup
    by_tactic: Markup
    top_hosts: Markup
    top_users: Markup
    heat_map: Markup
    health: dict[str, Any]
    open_incidents: int
    mtta: str
    mttr: str


def _top(session: Session, column: Any, since: Any) -> list[tuple[str, int]]:
    rows = session.execute(select(column, func.count()).where(Alert.first_seen >= since, column.is_not(None))
                           .group_by(column).order_by(func.count().desc()).limit(TOP)).all()
    return [(str(value), int(count)) for value, count in rows]


@functools.lru_cache(maxsize=4096)
def _placed(tags: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Which tactic each technique of one alert's tags goes under (the report's ATT&CK placement)."""
    return tuple((row.tag, tuple(t.id for t in row.techniques)) for row in attack_mapping([tags]) if row.tag)


def duration(seconds: float | None, t: Translator) -> str:
    """A mean time to acknowledge or resolve, in minutes under two hours and hours above ("-" when none)."""
    if seconds is None:
        return "-"
    if seconds < 7200:
        return t("dashboard.minutes", n=round(seconds / 60))
    return t("dashboard.hours", n=round(seconds / 3600, 1))


def ingest_health(service: Service, session: Session) -> dict[str, Any]:
    """Pipeline lag and errors, spool backlog, events stored per source, quarantine and rules loaded."""
    pipeline = service.pipeline
    lag = pipeline.lag_seconds()
    return {
        "status": "degraded" if (pipeline.error or service.spool.full or lag > 60) else "ok",
        "lag_seconds": round(lag, 2), "error": pipeline.error or "",
        "spool_pending_bytes": service.spool.pending_bytes,
        "stored_total": int(service.metrics.counter("mamori_events_stored_total")),
        "stored_by_source": count_events(service.lake),
        "quarantined": session.scalar(select(func.count()).select_from(QuarantineRecord)) or 0,
        "rules": len(service.stage.rules()),
    }


def build(service: Service, session: Session, t: Translator, days: int) -> Dashboard:
    """Every figure of the dashboard over the last ``days`` days, labelled in the reader's language, with
    days counted in the reader's time zone."""
    now = utcnow()
    since = now - timedelta(days=days)
    rows = session.execute(select(Alert.first_seen, Alert.level, Alert.tags, Alert.status)
                           .where(Alert.first_seen >= since)).all()
    hourly = days <= 1
    slots: list[str] = []
    local_now = now.astimezone(t.time_zone)
    for back in range(24 if hourly else days, -1, -1):
        moment = local_now - (timedelta(hours=back) if hourly else timedelta(days=back))
        slots.append(moment.strftime("%H:00" if hourly else "%m-%d"))
    per_slot: Counter[tuple[str, str]] = Counter()
    per_level: Counter[str] = Counter()
    per_tactic: Counter[str] = Counter()
    per_technique: dict[str, Counter[str]] = {}
    open_count = 0
    for first_seen, level, tags, status in rows:
        local = first_seen.astimezone(t.time_zone)
        per_slot[(local.strftime("%H:00" if hourly else "%m-%d"), level)] += 1
        per_level[level] += 1
        open_count += status != "closed"
        for tactic in tactics_of(tags or []):
            per_tactic[tactic.tag] += 1
        for tag, techniques in _placed(tuple(tags or ())):
            for technique in techniques:
                per_technique.setdefault(tag, Counter())[technique] += 1
    figures = mtta_mttr(session, now, since=since).overall
    names = {tactic.tag: (tactic.ja if t.language == "ja" else tactic.en) for tactic in tactics()}
    level_bars = [Bar(t(f"level.{level}"), per_level[level], LEVEL_COLOURS[level], f"/console/alerts?level={level}")
                  for level in reversed(LEVEL_ORDER) if per_level[level]]
    tactic_bars = [Bar(names.get(tag, tag), count) for tag, count in per_tactic.most_common(TOP)]
    columns = [HeatColumn(names[tactic.tag], per_tactic[tactic.tag] or sum(per_technique[tactic.tag].values()),
                          tuple((tid, n, technique_name(tid)) for tid, n in per_technique[tactic.tag].most_common(12)))
               for tactic in tactics() if tactic.tag in per_technique]
    hosts = [Bar(h, n, "#2f6f9f", f"/console/alerts?host={h}") for h, n in _top(session, Alert.host, since)]
    users = [Bar(u, n, "#7b4fa0") for u, n in _top(session, Alert.user, since)]
    return Dashboard(
        days=days, total=len(rows), open_count=open_count,
        over_time=stacked_time_bars(slots, per_slot, t("dashboard.over_time")),
        by_level=horizontal_bars(level_bars, t("dashboard.by_level")),
        by_tactic=horizontal_bars(tactic_bars, t("dashboard.by_tactic")),
        top_hosts=horizontal_bars(hosts, t("dashboard.top_hosts")),
        top_users=horizontal_bars(users, t("dashboard.top_users")),
        heat_map=attack_heat_map(columns, t("dashboard.heat_map")),
        health=ingest_health(service, session), open_incidents=workflow.count_open(session),
        mtta=duration(figures.mtta_seconds, t), mttr=duration(figures.mttr_seconds, t))
