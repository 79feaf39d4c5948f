"""The running service: builds the spool, lake, records database, detection stage, pipeline and inputs
from the settings, and starts and stops them together (the API's lifespan drives it)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mamori.cases.events import CaseBus
from mamori.cases.grouping import load_rules
from mamori.cases.playbooks.runner import PlaybookRunner
from mamori.cases.recent_events import RecentEvents
from mamori.cases.worker import GroupingWorker
from mamori.collect.encodings import parse_tail_encodings
from mamori.collect.spool import Spool
from mamori.collect.syslog_listen import InputCounters, SyslogInputs, tls_context
from mamori.config import Settings, retention_by_source
from mamori.detect.sigma.placeholders import read_placeholders
from mamori.errors import MamoriError
from mamori.intel.store import IntelStore
from mamori.service.anomaly_worker import AnomalyWorker, anomaly_settings
from mamori.service.detection import DetectionStage, SigmaStage, load_stage
from mamori.service.intel_stage import IntelStage
from mamori.service.metrics import Metrics
from mamori.service.pipeline import Pipeline, PipelineSettings, disabled_rules
from mamori.sources.base import ReadOptions
from mamori.store.db import make_engine, migrate, session_factory
from mamori.store.lake import Lake

log = logging.getLogger("mamori.service")


def open_records(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """Open (and migrate) the records database of these settings."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    migrate(engine)
    return engine, session_factory(engine)


class Service:
    """Everything behind ``mamori serve`` except the HTTP server."""

    def __init__(self, settings: Settings, stage: DetectionStage | None = None) -> None:
        self.settings = settings
        self.started_at = time.time()
        data = settings.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.cases_bus = CaseBus()  # added by the playbooks helper; the cases room publishes on it
        self.engine, self.sessions = open_records(settings)
        self.playbooks = PlaybookRunner(self.sessions)
        self.playbooks.reload(settings.playbooks)
        self.playbooks.subscribe(self.cases_bus)
        self.metrics = Metrics()
        self.spool = Spool(data / "spool", segment_bytes=settings.spool_segment_bytes,
                           max_pending_bytes=settings.spool_max_bytes, keep_seconds=settings.spool_keep_seconds,
                           key_keep_seconds=settings.idempotency_keep_seconds)
        self.lake = Lake(data / "lake")
        placeholders = read_placeholders(settings.placeholders) if settings.placeholders is not None else None
        self.stage = stage or IntelStage(load_stage(settings.rules, disabled_rules(self.sessions), placeholders),
                                         IntelStore.open(data / "intel.db"), self.lake)
        options = ReadOptions(default_timezone=settings.default_timezone)
        self.tail_encodings = parse_tail_encodings(settings.tail_encoding, settings.tail)  # checked at start
        self.recent_events = RecentEvents()  # alerts' events, from the pipeline to the grouping worker
        self.pipeline = Pipeline(self.spool, self.lake, self.sessions, self.stage, self.metrics, PipelineSettings(
            batch_rows=settings.batch_rows, batch_seconds=settings.batch_seconds,
            throttle_seconds=settings.alert_throttle_seconds, retention_days=settings.retention_days,
            retention_bytes_per_source=settings.retention_bytes_per_source,
            retention_by_source=retention_by_source(settings), options=options,
            parse_processes=settings.parse_processes), recent=self.recent_events)
        self.pipeline.recover()
        self.counters = InputCounters()
        self.inputs = SyslogInputs(self.spool, settings.max_line_bytes, self.counters,
                                   lambda kind, n: self.metrics.inc("mamori_events_received_total", n, input=kind))
        self.ports: dict[str, int] = {}
        self.tailer: Any = None
        self.cases_worker = GroupingWorker(self.sessions, self.lake, self.cases_bus,
                                           load_rules(settings.grouping_rules), recent=self.recent_events)
        self.anomaly_worker = AnomalyWorker(self.lake, self.sessions, data / "anomaly", anomaly_settings(settings),
                                            self.metrics)
        self._register_gauges()

    def sigma_stage(self) -> SigmaStage | None:
        """The Sigma rule stage (inside the threat-intel stage), whose rules the API and console list and
        test; None for a service started with another detection stage (tests)."""
        stage = getattr(self.stage, "inner", self.stage)
        return stage if isinstance(stage, SigmaStage) else None

    def _register_gauges(self) -> None:
        m = self.metrics
        m.gauge("mamori_spool_pending_bytes", lambda: float(self.spool.pending_bytes),
                "bytes received and durable but not yet stored (queue depth)")
        m.gauge("mamori_spool_pending_entries", lambda: float(self.spool.next_seq - self.pipeline.committed),
                "spool entries waiting for the pipeline")
        m.gauge("mamori_pipeline_lag_seconds", self.pipeline.lag_seconds, "age of the oldest entry not yet stored")
        m.gauge("mamori_udp_dropped_total", lambda: float(self.counters.dropped),
                "UDP datagrams dropped because the spool was full")
        m.gauge("mamori_input_rejected_total", lambda: float(self.counters.rejected),
                "framing or decoding rejections (quarantined)")
        m.gauge("mamori_tail_undecodable_lines_total", lambda: float(getattr(self.tailer, "undecodable", 0)),
                "tailed lines not valid in their file's encoding (stored with U+FFFD, raw bytes quarantined)")
        m.gauge("mamori_tail_recovered_lines_total", lambda: float(getattr(self.tailer, "recovered", 0)),
                "tailed lines read from rotated copies (renamed or compressed before they were read)")
        m.gauge("mamori_rules_loaded", lambda: float(len(self.stage.rules())))
        m.gauge("mamori_cases_alerts_grouped_total", lambda: float(self.cases_worker.handled),
                "alert versions the grouping worker has handled")
        m.gauge("mamori_cases_alerts_failed_total", lambda: float(self.cases_worker.failed),
                "alerts the grouping worker could not group (logged)")
        m.gauge("mamori_playbooks_loaded", lambda: float(len(self.playbooks.library.playbooks)))
        m.gauge("mamori_playbook_events_queued", lambda: float(self.playbooks.queued),
                "case events waiting for the playbook runner")
        m.gauge("mamori_playbook_events_dropped_total", lambda: float(self.playbooks.dropped),
                "case events dropped because the playbook queue was full")

    def rule_timing_lines(self, top: int = 50) -> list[str]:
        """Prometheus lines for the slowest rules (seconds spent since start)."""
        timings = sorted(self.stage.timings().items(), key=lambda kv: kv[1], reverse=True)[:top]
        lines = ["# TYPE mamori_rule_seconds_total counter"]
        lines += [f'mamori_rule_seconds_total{{rule="{rule}"}} {seconds:g}' for rule, seconds in timings]
        return lines

    async def start(self) -> None:
        """Start the pipeline and the listeners; write the bound ports to ``service.json``."""
        settings = self.settings
        self.pipeline.start()
        self.cases_worker.start()
        self.anomaly_worker.start()
        self.playbooks.start()
        try:
            if settings.syslog_tcp_port >= 0:
                self.ports["syslog_tcp"] = await self.inputs.start_tcp(settings.host, settings.syslog_tcp_port)
            if settings.syslog_udp_port >= 0:
                self.ports["syslog_udp"] = await self.inputs.start_udp(settings.host, settings.syslog_udp_port)
            if settings.syslog_tls_port >= 0:
                if not settings.tls_cert or not settings.tls_key:
                    raise MamoriError("syslog over TLS needs a certificate and a key",
                                      where="syslog_tls_port", hint="set tls_cert and tls_key")
                context = tls_context(str(settings.tls_cert), str(settings.tls_key),
                                      str(settings.tls_client_ca) if settings.tls_client_ca else None)
                self.ports["syslog_tls"] = await self.inputs.start_tcp(settings.host, settings.syslog_tls_port, context)
        except OSError as exc:
            raise MamoriError(f"cannot listen: {exc}", where=f"{settings.host}",
                              hint="another process may hold the port; change it in the config") from exc
        if settings.intel_feeds is not None:
            self._start_feeds(settings.intel_feeds)
        if settings.tail:
            from mamori.collect.tail import Tailer

            self.tailer = Tailer(list(settings.tail), self.spool, settings.data_dir / "tail-checkpoints.json",
                                 source=settings.tail_source or None, max_line_bytes=settings.max_line_bytes,
                                 encoding=self.tail_encodings)
            self.tailer.start()

    def _start_feeds(self, path: Path) -> None:
        """Poll the threat-intel feeds in the background; new indicators reach the live matcher and
        are hunted over history by the intel stage."""
        import threading

        from mamori.intel.feeds.config import load_feeds
        from mamori.intel.feeds.runner import poll

        feeds = load_feeds(path)
        store = IntelStore.open(self.settings.data_dir / "intel.db")
        self._feeds_stop = threading.Event()
        self._feeds = threading.Thread(target=poll, args=(store, feeds, self._feeds_stop), name="intel-feeds",
                                       daemon=True)
        self._feeds.start()

    def write_ports(self, api_port: int) -> Path:
        """Write where everything listens (``<data>/service.json``) so tools and tests can find it."""
        self.ports["api"] = api_port
        path = self.settings.data_dir / "service.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"host": self.settings.host, "pid": os.getpid(), **self.ports}))
        os.replace(tmp, path)
        return path

    async def stop(self) -> None:
        """Stop inputs first, then let the pipeline finish its batch, then close the spool."""
        await self.inputs.close()
        if getattr(self, "_feeds_stop", None) is not None:
            self._feeds_stop.set()
        if self.tailer is not None:
            self.tailer.stop()
        await asyncio.to_thread(self.cases_worker.stop)
        await asyncio.to_thread(self.anomaly_worker.stop)
        await asyncio.to_thread(self.pipeline.stop)
        await asyncio.to_thread(self.playbooks.stop)
        self.spool.close()
        self.engine.dispose()
