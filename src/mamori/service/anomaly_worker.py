"""Behaviour baselines and anomaly alerts in the running service (the UEBA engine on the lake).

Every ``interval`` the worker reads the lake files written since its last round (a cursor on the
spool ranges the files hold, so each stored event is scored once, late arrivals included) and scores
them with the UEBA engine (``detect.anomaly``): first-seen, volume spikes, spraying, beaconing,
off-hours, rare domains, behaviour vectors (robust z-scores, ECOD and streaming half-space trees, which
learn from each round's complete hours), and entity risk, to which the rule and indicator-match alerts
stored since the last round add their points too (by level, for their user, host and source
address). Each anomaly becomes an alert through the same drafting as rule detections (de-duplicated
per detector and entity, the events behind it linked, the explanation in English and Japanese), so
incidents group them with the rest.

A round scores its new events together with the last hour of the previous rounds' (``context_seconds``,
at most ``context_rows``): a window-based behaviour (spraying per 30 minutes, volumes per hour) is
judged on its whole window, not on the five-minute slice one round stored. Only anomalies with a new
event behind them are raised, and a window seen again adds to entity risk once.

The baselines are built from the last ``baseline_days`` of stored events (up to the newest) once there is history
(and again every ``refit_days``), and saved with the cursor under ``<data>/anomaly`` after every
round: they survive a restart. Until a baseline exists nothing is scored: a detector without one
would call everything new. Their seasons follow the organisation's clock (``timezone``, Asia/Tokyo
unless set), peer groups are computed from the history's behaviour, and logon geography runs when a
geolocation database is configured; detector thresholds follow ``thresholds`` (the
``anomaly_thresholds`` setting); baselines saved under another zone, detector set or thresholds are
rebuilt at the next round. An analyst's benign verdicts are kept with the engine and taught again to
every rebuilt baseline, so they outlive refits and restarts.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mamori.config import Settings
from mamori.detect.anomaly import fields
from mamori.detect.anomaly.domains import QUERY
from mamori.detect.anomaly.engine import (
    DEFAULT_VECTOR_MODELS,
    VECTOR_ALERTS_PER_DAY,
    UebaEngine,
    default_detectors,
    vector_models,
)
from mamori.detect.anomaly.geo import GeoDatabase, open_geo_database
from mamori.detect.anomaly.records import Anomaly, Explanation, anomaly_from_record, anomaly_record
from mamori.detect.anomaly.risk import RiskIncident
from mamori.detect.anomaly.seasons import DEFAULT_TIMEZONE, Calendar, check_timezone
from mamori.detect.anomaly.thresholds import EXAMPLE, Thresholds, current_thresholds, parse_thresholds
from mamori.errors import MamoriError
from mamori.events import schema
from mamori.events.frame import concat_frames
from mamori.service.alerting import AlertBook, apply, draft, settle
from mamori.service.detection import Detection
from mamori.service.metrics import Metrics
from mamori.store.lake import Lake, LakeFile
from mamori.store.records import Alert

log = logging.getLogger("mamori.service")

AUTHOR = "Mamori UEBA"
ANOMALY_RULE_PREFIX = "mamori-anomaly-"
RISK_RULE = "mamori-anomaly-entity-risk"
RAISED_KEPT = 20_000  # anomaly alerts remembered for an analyst's "benign" verdict
INTEL_RULE_PREFIX = "intel:"  # rule id of an indicator match's alert: intel:<indicator id> (service.intel_stage)
RULE_POINTS = {"informational": 5.0, "low": 10.0, "medium": 20.0, "high": 40.0, "critical": 60.0}


@dataclass(frozen=True)
class AnomalySettings:
    """How often to score, how much history a baseline takes, when to rebuild it."""

    interval_seconds: float = 300.0
    baseline_days: int = 28
    min_history_hours: float = 24.0  # stored history needed before a first baseline
    refit_days: float = 1.0
    throttle_seconds: float = 3600.0
    # a round scores its new events together with the previous rounds' of this span (at most this many
    # rows), so a behaviour judged per window (spraying per 30 minutes, volumes per hour) is judged on
    # the whole window, not on the slice of it one round stored
    context_seconds: float = 3600.0
    context_rows: int = 1_000_000
    timezone: str = DEFAULT_TIMEZONE  # the organisation's clock for seasons and explanations
    geo_database: Path | None = None  # IP2Location CSV or GeoLite2 .mmdb: logon geography on
    # unsupervised models over host and user behaviour vectors (``ecod``, streaming ``half_space`` trees;
    # empty: none), each with a false-alarm budget per entity kind and simulated day
    vector_models: tuple[str, ...] = DEFAULT_VECTOR_MODELS
    vector_alerts_per_day: float = VECTOR_ALERTS_PER_DAY
    # detector thresholds, "detector.parameter=value, ..." (detect.anomaly.thresholds; empty: the defaults)
    thresholds: str = ""


def anomaly_settings(settings: Settings) -> AnomalySettings:
    """The worker's settings from the service's (``anomaly_*`` fields, the alert throttle)."""
    return AnomalySettings(
        settings.anomaly_interval_seconds,
        settings.anomaly_baseline_days,
        throttle_seconds=settings.alert_throttle_seconds,
        timezone=settings.anomaly_timezone,
        geo_database=settings.anomaly_geo_database,
        vector_models=tuple(m.strip() for m in settings.anomaly_vector_models.split(",") if m.strip()),
        vector_alerts_per_day=settings.anomaly_vector_alerts_per_day,
        thresholds=settings.anomaly_thresholds,
    )


def is_anomaly_alert(rule_id: str) -> bool:
    """Whether an alert of this rule is an anomaly one detector raised (what a benign verdict teaches)."""
    return rule_id.startswith(ANOMALY_RULE_PREFIX) and rule_id != RISK_RULE


def anomaly_rule_id(detector: str) -> str:
    """The rule id anomaly alerts of one detector carry (what alert lists and filters show)."""
    return f"{ANOMALY_RULE_PREFIX}{detector}"


def anomaly_detection(anomaly: Anomaly, rows: tuple[int, ...]) -> Detection:
    """An anomaly as a detection of the batch it was found in (``rows``: its events there)."""
    level = "high" if anomaly.score >= 60 else "medium" if anomaly.score >= 30 else "low"
    entity = _entity(anomaly.entity_type, anomaly.entity)
    return Detection(anomaly_rule_id(anomaly.detector), f"Anomaly: {anomaly.detector} ({anomaly.entity_type})",
                     level, AUTHOR, ("anomaly", f"anomaly.{anomaly.detector}"), rows, anomaly.event_uids,
                     (anomaly.explanation.en, anomaly.explanation.ja), schema.time_ns(anomaly.time), entity)


def _entity(entity_type: str, entity: str) -> tuple[tuple[str, str | None], ...]:
    """The alert entity an anomaly is about: a host, a source address, else a user (or what stands for one)."""
    if entity_type == "host":
        return (("host", entity),)
    if entity_type in {"source_ip", "ip"}:
        return (("IpAddress", entity),)
    return (("user", entity),)


def risk_detection(incident: RiskIncident) -> Detection:
    """An entity whose risk crossed the threshold, listing each contribution and its points."""
    lines = [f"{a.detector} at {a.time.isoformat()}: {points:.0f} points ({a.explanation.en})"
             for a, points in incident.contributions]
    uids = tuple(u for a, _ in incident.contributions for u in a.event_uids)
    entity = _entity(incident.entity_type, incident.entity)
    return Detection(RISK_RULE, f"Entity risk over threshold ({incident.entity_type})", "high", AUTHOR,
                     ("anomaly", "risk"), (), uids[:200],
                     (incident.explanation.en, incident.explanation.ja, *lines), schema.time_ns(incident.time),
                     entity)


class AnomalyWorker:
    """Scores the newly stored events on a schedule and raises anomaly alerts (see the module)."""

    def __init__(self, lake: Lake, sessions: sessionmaker[Session], state_dir: Path,
                 settings: AnomalySettings | None = None, metrics: Metrics | None = None) -> None:
        self.lake = lake
        self.sessions = sessions
        self.state_dir = state_dir
        self.settings = settings or AnomalySettings()
        self.metrics = metrics or Metrics()
        self.book = AlertBook(self.settings.throttle_seconds)
        try:
            self.calendar = Calendar(check_timezone(self.settings.timezone))
        except ValueError as exc:
            raise MamoriError(str(exc), where="anomaly_timezone", hint="e.g. Asia/Tokyo, UTC, Europe/Berlin") from exc
        try:
            vector_models(self.settings.vector_models)
        except ValueError as exc:
            raise MamoriError(str(exc), where="anomaly_vector_models", hint="e.g. ecod,half_space (or empty)") from exc
        try:
            self.thresholds: Thresholds = parse_thresholds(self.settings.thresholds)
        except ValueError as exc:
            raise MamoriError(str(exc), where="anomaly_thresholds", hint=f"e.g. {EXAMPLE} (or empty)") from exc
        path = self.settings.geo_database
        self.geo: GeoDatabase | None = open_geo_database(path) if path is not None else None
        self.engine: UebaEngine | None = None
        self._stale = False  # the saved baselines were built for another zone or set of detectors
        self.cursor = 0  # spool position up to which stored events were scored
        self.alert_mark = 0  # rule alerts up to this id have added to entity risk
        self.fitted_at: datetime | None = None
        self.error: str | None = None
        self.raised: dict[str, dict[str, object]] = {}  # alert dedup key -> the anomaly behind it
        self._context: pl.DataFrame | None = None  # recent events scored again with the next round's
        self._counted: dict[str, None] = {}  # anomalies (key and window) already added to entity risk
        self._lock = threading.Lock()  # rounds and verdicts take turns on the engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._load()

    # --- state ---------------------------------------------------------------------------------

    def _load(self) -> None:
        marks = self.state_dir / "worker.json"
        if not marks.exists():
            return
        try:
            saved = json.loads(marks.read_text(encoding="utf-8"))
            self.engine = UebaEngine.load(self.state_dir / "engine", self.geo)
        except (OSError, ValueError, KeyError) as exc:  # a damaged state is rebuilt from the lake
            log.warning("anomaly state in %s unreadable (%s): the baselines are built again", self.state_dir, exc)
            self.engine = None
            return
        self.cursor = int(saved["cursor"])
        self.fitted_at = datetime.fromisoformat(saved["fitted_at"])
        self.raised = dict(saved.get("raised", {}))
        self.alert_mark = int(saved.get("alert_mark", 0))
        self._stale = _layout(self.engine) != _layout(self._new_engine())
        if self._stale:
            log.info("anomaly baselines in %s were built for another time zone, detector set or thresholds: "
                     "rebuilt at the next round", self.state_dir)

    def _new_engine(self) -> UebaEngine:
        """An engine with every detector the settings ask for (logon geography with a database)."""
        return UebaEngine(default_detectors(self.geo, self.calendar, self.settings.vector_models,
                                            self.settings.vector_alerts_per_day, self.thresholds))

    def _save(self) -> None:
        assert self.engine is not None and self.fitted_at is not None
        fresh = self.state_dir / "engine.new"
        shutil.rmtree(fresh, ignore_errors=True)
        self.engine.save(fresh)
        target = self.state_dir / "engine"
        old = self.state_dir / "engine.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        fresh.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        marks = self.state_dir / "worker.json"
        tmp = marks.with_suffix(".tmp")
        tmp.write_text(json.dumps({"cursor": self.cursor, "fitted_at": self.fitted_at.isoformat(),
                                   "alert_mark": self.alert_mark, "raised": self.raised}, ensure_ascii=False),
                       encoding="utf-8")
        tmp.replace(marks)

    # --- rounds --------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> int:
        """One round: build or refresh the baselines when due, score what was stored since the last
        round, write the alerts. Returns the anomalies raised."""
        with self._lock:
            return self._round(now or datetime.now(UTC))

    def mark_benign(self, alert_key: str) -> bool:
        """An analyst's verdict on an anomaly alert (by its dedup key): the detector takes it into its
        baseline and this anomaly is allow-listed, saved at once. False when the worker does not know
        the alert (not an anomaly alert, or older than what it remembers)."""
        with self._lock:
            record = self.raised.get(alert_key)
            if record is None or self.engine is None:
                return False
            self.engine.mark_benign(anomaly_from_record(record))
            self._save()
            return True

    def rebuild(self, now: datetime | None = None) -> bool:
        """Build the baselines again from everything stored in the baseline window, now; scoring goes
        on from the newest stored events. False when the history is still too short."""
        with self._lock:
            previous, self.engine = self.engine, None
            if self._fit(now or datetime.now(UTC), previous):
                return True
            self.engine = previous
            return False

    def status(self) -> dict[str, object]:
        """What the worker holds: when its baselines were built, how far it scored, its detectors,
        the allow-listed anomalies and the alerts it remembers for verdicts."""
        engine = self.engine
        return {"baselines_built": self.fitted_at.isoformat() if self.fitted_at else None,
                "scored_up_to_spool_entry": self.cursor,
                "detectors": [d.name for d in engine.detectors] if engine else [],
                "timezone": self.calendar.timezone,
                "geolocation_database": str(self.settings.geo_database) if self.settings.geo_database else None,
                "peer_groups": len(set(engine.peers.values())) if engine else 0,
                "allow_listed": len(engine.benign) if engine else 0,
                "benign_verdicts": len(engine.verdicts) if engine else 0,
                "alerts_remembered": len(self.raised), "last_error": self.error}

    def _round(self, now: datetime) -> int:
        files = [f for f in self.lake.files() if f.end > self.cursor]
        if self.engine is None or self._refit_due(now):
            if not self._fit(now, self.engine) and self.engine is None:
                return 0
            files = [f for f in files if f.end > self.cursor]
        if not files:
            return 0
        events = read_for_scoring(files)
        self.cursor = max(f.end for f in files)
        raised = 0
        if events.height:
            assert self.engine is not None
            scored = events if self._context is None else concat_frames([self._context, events])
            anomalies = _touching(self.engine.score(scored), events)
            incidents = self.engine.risk.add([a for a in anomalies if self._first_count(a)])
            incidents += self.engine.risk.add(self._rule_contributions())
            raised = self._alert(scored, anomalies, incidents, now)
            self._context = self._kept_context(scored)
        self._save()
        self.metrics.inc("mamori_anomalies_total", raised)
        return raised

    def _first_count(self, anomaly: Anomaly) -> bool:
        """Whether this anomaly adds to entity risk: a window seen again in a later round (with more events)
        counts once."""
        key = f"{anomaly.key}@{anomaly.time.isoformat()}"
        if key in self._counted:
            return False
        self._counted[key] = None
        while len(self._counted) > RAISED_KEPT:
            del self._counted[next(iter(self._counted))]
        return True

    def _kept_context(self, scored: pl.DataFrame) -> pl.DataFrame | None:
        """The events the next round scores again with its own: the last ``context_seconds`` before the
        newest event, at most ``context_rows`` of them."""
        if self.settings.context_seconds <= 0 or self.settings.context_rows <= 0:
            return None
        newest = scored.get_column(schema.TIME).max()
        if not isinstance(newest, datetime):
            return None
        since = newest - timedelta(seconds=self.settings.context_seconds)
        recent = scored.filter(pl.col(schema.TIME) >= since).sort(schema.TIME)
        return recent.tail(self.settings.context_rows)

    def _refit_due(self, now: datetime) -> bool:
        if self.fitted_at is None:
            return False
        return self._stale or now - self.fitted_at >= timedelta(days=self.settings.refit_days)

    def _fit(self, now: datetime, previous: UebaEngine | None) -> bool:
        """Build the baselines from the stored history; False while there is too little of it. A first
        baseline takes everything stored (scoring starts after it); a refresh takes what was scored.
        The analysts' verdicts and the entity risk so far carry over from ``previous``."""
        refresh = self.engine is not None
        stored = [f for f in self.lake.files() if not refresh or f.end <= self.cursor]
        if not stored:
            return False
        newest = min(max(f.day for f in stored), now.date().isoformat())  # imported history may be old
        since = (datetime.fromisoformat(newest) - timedelta(days=self.settings.baseline_days)).date().isoformat()
        history = [f for f in stored if f.day >= since]
        days = {f.day for f in history}
        if len(days) * 24 <= self.settings.min_history_hours:  # too few days stored: no need to read them
            return False
        events = read_for_scoring(history)
        if events.height == 0:
            return False
        first, last = events.get_column(schema.TIME).min(), events.get_column(schema.TIME).max()
        hours = (last - first).total_seconds() / 3600 if isinstance(first, datetime) and isinstance(last, datetime) \
            else 0.0
        if hours < self.settings.min_history_hours:
            return False
        engine = self._new_engine()
        if previous is not None:  # fit teaches the new baselines the analysts' verdicts again
            engine.verdicts, engine.benign = list(previous.verdicts), set(previous.benign)
        engine.fit(events)
        if previous is not None:
            engine.risk = previous.risk
        self.engine = engine
        self.fitted_at = now
        self._stale = False
        if not refresh:  # scoring, and risk from rule alerts, start after the history
            self.cursor = max([self.cursor, *(f.end for f in history)])
            with self.sessions() as session:
                self.alert_mark = max(self.alert_mark, session.scalar(select(func.max(Alert.id))) or 0)
        self._save()
        log.info("anomaly baselines built from %d stored events (%.0f hours)", events.height, hours)
        return True

    def _rule_contributions(self) -> list[Anomaly]:
        """The rule alerts opened since the last round, as risk contributions of their user and host
        (points by level): entity risk counts what the rules found, not only the anomalies."""
        with self.sessions() as session:
            alerts = list(session.scalars(select(Alert).where(
                Alert.id > self.alert_mark, Alert.rule_id.not_like(f"{ANOMALY_RULE_PREFIX}%")).order_by(Alert.id)))
        if alerts:
            self.alert_mark = alerts[-1].id
        return [contribution for alert in alerts for contribution in rule_contribution(alert)]

    def _alert(self, events: pl.DataFrame, anomalies: list[Anomaly], incidents: list[RiskIncident],
               now: datetime) -> int:
        if not anomalies and not incidents:
            return 0
        wanted = list({u for a in anomalies for u in a.event_uids})  # a round holds millions of events: no dict of them
        found = events.select(pl.int_range(pl.len()).alias("row"), schema.UID).filter(pl.col(schema.UID).is_in(wanted))
        row_of = dict(zip(found.get_column(schema.UID).to_list(), found.get_column("row").to_list(), strict=True))
        detections = [anomaly_detection(a, tuple(row_of[u] for u in a.event_uids if u in row_of)) for a in anomalies]
        behind = {id(d): a for d, a in zip(detections, anomalies, strict=True)}
        detections += [risk_detection(i) for i in incidents]
        received = pl.Series("received", [None] * events.height, dtype=pl.Int64)
        drafts = draft(detections, events, received, self.book, now)
        with self.sessions.begin() as session:
            _, changes = apply(session, drafts, self.book, now)
        settle(self.book, changes)
        for item in drafts:
            anomaly = behind.get(id(item.detection))
            if anomaly is not None:
                self.raised[item.key] = anomaly_record(anomaly)
        while len(self.raised) > RAISED_KEPT:  # the oldest verdicts first out (dicts keep insertion order)
            del self.raised[next(iter(self.raised))]
        return len(anomalies) + len(incidents)

    # --- thread --------------------------------------------------------------------------------

    def start(self) -> None:
        """Run rounds every ``interval_seconds`` on a background thread."""
        if self._thread is not None or self.settings.interval_seconds <= 0:
            return
        self.book.load(self.sessions)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="anomaly", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.interval_seconds):
            try:
                self.run_once()
                self.error = None
            except Exception as exc:  # keep the service running; the next round tries again
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("anomaly round failed")


def _touching(anomalies: list[Anomaly], events: pl.DataFrame) -> list[Anomaly]:
    """The anomalies behind which is at least one of ``events`` (the round's new ones): what only the
    context shows was judged by an earlier round."""
    wanted = list({u for a in anomalies for u in a.event_uids})
    if not wanted:
        return [a for a in anomalies if not a.event_uids]
    present = set(events.filter(pl.col(schema.UID).is_in(wanted)).get_column(schema.UID).to_list())
    return [a for a in anomalies if not a.event_uids or any(u in present for u in a.event_uids)]


def rule_contribution(alert: Alert) -> list[Anomaly]:
    """A rule alert's share of entity risk: its level's points, for its user, its host and its source
    address. An indicator match (threat intelligence, rule id ``intel:<indicator id>``) is named as one,
    not as a Sigma rule."""
    seen = alert.first_seen if alert.first_seen.tzinfo else alert.first_seen.replace(tzinfo=UTC)
    if alert.rule_id.startswith(INTEL_RULE_PREFIX):
        indicator = alert.rule_id.removeprefix(INTEL_RULE_PREFIX)
        what = f"indicator match {alert.rule_id}"
        text = Explanation(
            f"Indicator match '{alert.rule_title}' (indicator {indicator}, {alert.level}) in {alert.count} event(s)",
            f"脅威インテリジェンスの指標「{alert.rule_title}」（指標 {indicator}、{alert.level}）が "
            f"{alert.count} 件のイベントに一致")
    else:
        what = f"rule {alert.rule_id}"
        text = Explanation(f"Sigma rule '{alert.rule_title}' ({alert.level}) matched {alert.count} event(s)",
                           f"Sigmaルール「{alert.rule_title}」（{alert.level}）が {alert.count} 件のイベントに一致")
    entities = (("user", alert.user), ("host", alert.host), ("source_ip", alert.ip))
    return [Anomaly(what, entity_type, entity, seen, RULE_POINTS.get(alert.level, 10.0),
                    float(alert.count), 0.0, "", text, event_uids=tuple((alert.event_uids or [])[:20]))
            for entity_type, entity in entities if entity]


def _layout(engine: UebaEngine | None) -> tuple[tuple[str, ...], tuple[str, ...], tuple[object, ...]]:
    """The detectors of an engine, the time zones of its seasonal baselines and the detectors' thresholds
    (what a restart with other settings must rebuild: some thresholds shape the baselines themselves)."""
    if engine is None:
        return (), (), ()
    zones = {str(calendar.timezone) for d in engine.detectors if (calendar := getattr(d, "calendar", None))}
    thresholds = tuple(sorted((d.name, current_thresholds(d)) for d in engine.detectors))
    return tuple(sorted(d.name for d in engine.detectors)), tuple(sorted(zones)), thresholds


# the columns the detectors read (a stored Windows batch has hundreds): the core ones but the raw text,
# and every candidate name in ``detect.anomaly.fields`` and the domain detector's
COLUMNS_READ = tuple(dict.fromkeys((
    *(c for c in schema.CORE_COLUMNS if c != schema.RAW), "EventID", *fields.USER, *fields.SOURCE_IP,
    *fields.DEST_IP, *fields.DEST_PORT, *fields.BYTES_OUT, *fields.IMAGE, *fields.PARENT_IMAGE,
    *fields.PROCESS_USER, *fields.LOGON_TYPE, *QUERY)))


def read_for_scoring(files: list[LakeFile]) -> pl.DataFrame:
    """The stored events of ``files``, only the columns the detectors read."""
    return Lake.read(files, COLUMNS_READ)
