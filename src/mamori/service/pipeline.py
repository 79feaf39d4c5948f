"""The pipeline thread: spool -> parse -> lake -> detection -> alerts, one micro-batch at a time.

Each batch ends with one database transaction holding its alerts, its quarantined records, the
correlation state and the spool checkpoint: that transaction is the commit point. After a crash, lake
files past the checkpoint are deleted and their spool entries replayed, so every acknowledged event is
stored once and every alert is counted once.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases.recent_events import RecentEvents
from mamori.collect.spool import Spool
from mamori.service.alerting import AlertBook, apply, draft, settle
from mamori.service.detection import DetectionStage
from mamori.service.metrics import Metrics
from mamori.service.parse import Parsed
from mamori.service.readahead import ReadAhead
from mamori.sources.base import ReadOptions
from mamori.store.lake import Lake
from mamori.store.records import QuarantineRecord, ServiceState

log = logging.getLogger("mamori.service")
CHECKPOINT = "spool_committed"
CORRELATION = "correlation_state"
MAINTENANCE_SECONDS = 30.0
DEFAULT_OPTIONS = ReadOptions()


@dataclass(frozen=True)
class PipelineSettings:
    """Batch size and wait, alert throttle window, retention, reader options."""

    batch_rows: int = 20_000
    batch_seconds: float = 0.4  # (config.Settings.batch_seconds)
    throttle_seconds: float = 3600.0
    retention_days: int = 30
    retention_bytes_per_source: int = 0
    retention_by_source: dict[str, int] = field(default_factory=dict)  # source -> days, over retention_days
    options: ReadOptions = DEFAULT_OPTIONS
    parse_processes: int = 1  # worker processes parsing and rule-matching the next batches (0: inline)


def read_state(session: Session, key: str) -> bytes | None:
    """A committed service state value."""
    row = session.get(ServiceState, key)
    return None if row is None else row.value


def write_state(session: Session, key: str, value: bytes) -> None:
    """Set a service state value (in the caller's transaction)."""
    row = session.get(ServiceState, key)
    if row is None:
        session.add(ServiceState(key=key, value=value))
    else:
        row.value = value


class Pipeline:
    """Consumes the spool on its own thread; ``committed`` is the first spool entry not yet stored."""

    def __init__(self, spool: Spool, lake: Lake, sessions: sessionmaker[Session], stage: DetectionStage,
                 metrics: Metrics, settings: PipelineSettings, recent: RecentEvents | None = None) -> None:
        self.spool = spool
        self.recent = recent  # where the alerts' events are left for the grouping worker
        self.lake = lake
        self.sessions = sessions
        self.stage = stage
        self.metrics = metrics
        self.settings = settings
        self.committed = 0
        self.last_batch_ns = 0
        self.oldest_pending_ns = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self.paused = threading.Event()  # set: no batch is taken (inputs keep spooling, up to the limit)
        self._thread: threading.Thread | None = None
        self._last_maintenance = 0.0
        self._warming: list[Future[bool]] = []
        self.book = AlertBook(settings.throttle_seconds)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="lake-writer")
        self.batches = ReadAhead(spool, settings.batch_rows, settings.batch_seconds, settings.options,
                                 settings.parse_processes, stage.match_spec)

    def recover(self) -> None:
        """Resume from the last commit: drop uncommitted lake files, restore correlation state."""
        with self.sessions() as session:
            raw = read_state(session, CHECKPOINT)
            state = read_state(session, CORRELATION)
        self.committed = int(raw.decode()) if raw else 0
        removed = self.lake.discard_from(self.committed)
        if removed:
            log.warning("removed %d uncommitted lake files; replaying the spool from entry %d", removed,
                        self.committed)
        if state:
            self.stage.load_state(state)
        self.spool.start_from(self.committed)
        self.book.load(self.sessions)

    def start(self) -> None:
        """Start the consumer thread (and the parser processes, loading the rules meanwhile)."""
        self._warming = self.batches.warm()
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)
        self._thread.start()

    def parsers_ready(self) -> bool:
        """Whether every parser process has started and loaded the rules (until then the first batches
        wait for them: a start under load begins with a backlog)."""
        return all(future.done() for future in self._warming)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current batch and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._writer.shutdown(wait=True)
        self.batches.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.paused.is_set():
                self._stop.wait(0.1)
                continue
            try:
                self.step()
                self.error = None
            except Exception as exc:  # keep running: a failed batch is retried from the spool
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("pipeline batch failed; retrying from entry %d", self.committed)
                self.metrics.inc("mamori_pipeline_errors_total")
                self.lake.discard_from(self.committed)
                self.batches.discard()
                self._stop.wait(1.0)

    def step(self) -> int:
        """Process one micro-batch (waiting up to the batch time for input); return the entries done."""
        started = time.perf_counter()
        batch = self.batches.take(self.committed)
        if batch is None:
            self.oldest_pending_ns = 0
            self._maintain()
            return 0
        entries, parsed, end = batch.entries, batch.parsed, batch.end
        self.oldest_pending_ns = entries[0].received_ns
        self.batches.ahead(end)  # the next batch is read and parsed while this one is detected
        parsed_at = time.perf_counter()
        frame = parsed.frame
        writing = self._writer.submit(self._store, parsed, self.committed, end)  # overlaps detection
        try:
            detections = self.stage.detect(frame, parsed.hits) if frame.height else []
        finally:
            detected_at = time.perf_counter()
            writing.result()  # never leave a write running: a failed batch discards its files
        stored_at = time.perf_counter()
        now = datetime.now(UTC)
        drafts = draft(detections, frame, parsed.received_ns, self.book, now)
        drafted_at = time.perf_counter()
        with self.sessions.begin() as session:
            outcome, changes = apply(session, drafts, self.book, now)
            for item in parsed.quarantined:
                session.add(QuarantineRecord(received_at=now, input=item.where[:500], reason=item.reason,
                                             raw=item.raw))
            write_state(session, CORRELATION, self.stage.state())
            write_state(session, CHECKPOINT, str(end).encode())
        settle(self.book, changes)
        if self.recent is not None and drafts:
            self.recent.remember_rows(frame, (uid for d in drafts for uid in d.uids))
        self.spool.commit(end)
        self.committed = end
        done = time.perf_counter()
        metrics = self.metrics
        metrics.inc("mamori_events_stored_total", frame.height)
        metrics.inc("mamori_quarantined_total", len(parsed.quarantined))
        metrics.inc("mamori_alerts_created_total", outcome.created)
        metrics.inc("mamori_alerts_updated_total", outcome.updated)
        metrics.inc("mamori_batches_total")
        for stage, seconds in (("parse", parsed_at - started), ("detect", detected_at - parsed_at),
                               ("store_wait", stored_at - detected_at), ("alert_draft", drafted_at - stored_at),
                               ("alert_commit", done - drafted_at)):
            metrics.inc("mamori_stage_seconds_total", seconds, stage=stage)
        for latency in outcome.latencies:
            metrics.observe("mamori_ingest_to_alert_seconds", latency)
        if frame.height:
            received = parsed.received_ns.drop_nulls()
            if received.len():
                lag = time.time() - float(received.min()) / 1e9  # type: ignore[arg-type]
                metrics.observe("mamori_ingest_to_store_seconds", max(lag, 0.0), frame.height)
        self.last_batch_ns = time.time_ns()
        self._maintain()
        return len(entries)

    def _store(self, parsed: Parsed, start: int, end: int) -> None:
        """Write a batch to the lake: as encoded by its parser process, else encoded here."""
        if parsed.lake_parts is not None:
            self.lake.write_parts(parsed.lake_parts, start, end)
        else:
            self.lake.write(parsed.frame, start, end)

    def _maintain(self) -> None:
        now = time.monotonic()
        if now - self._last_maintenance < MAINTENANCE_SECONDS:
            return
        self._last_maintenance = now
        removed = self.lake.apply_retention(self.settings.retention_days, self.settings.retention_bytes_per_source,
                                            days_by_source=self.settings.retention_by_source)
        if removed:
            self.metrics.inc("mamori_retention_files_removed_total", removed)
        self.spool.prune()

    def lag_seconds(self) -> float:
        """Age of the oldest entry waiting to be stored (0 when caught up)."""
        return 0.0 if not self.oldest_pending_ns else max(0.0, time.time() - self.oldest_pending_ns / 1e9)


def stored_frame_count(lake: Lake) -> int:
    """Rows in the lake (tests and statistics)."""
    paths = lake.glob()
    return sum(pl.scan_parquet(p).select(pl.len()).collect().item() for p in paths) if paths else 0


def disabled_rules(sessions: sessionmaker[Session]) -> list[str]:
    """Rules switched off through the API (kept across restarts)."""
    from mamori.store.records import RuleSetting

    with sessions() as session:
        return list(session.scalars(select(RuleSetting.rule_id).where(RuleSetting.enabled.is_(False))))
