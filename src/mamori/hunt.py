"""``mamori hunt``: read log files, run the Sigma rules over them, and gather detections.

Wiring only: files are read by ``sources`` (in worker processes, so reading overlaps rule loading),
rules are loaded and run by ``detect.sigma``, and each detection keeps the rule's id and author.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from mamori.detect.attack import level_rank, tactics_of, techniques_of
from mamori.detect.sigma.correlation import BaseHit, CorrelationEngine, CorrelationHit
from mamori.detect.sigma.detector_cache import load_detector
from mamori.detect.sigma.engine import ROW, RULE_ID, SELECTIONS
from mamori.detect.sigma.explain import explanation_text, has_keywords, keywords_found
from mamori.detect.sigma.model import Refusal, Rule
from mamori.errors import MamoriError
from mamori.events import schema
from mamori.events.frame import joined_batch
from mamori.events.transfer import frame_from_bytes, frame_to_bytes
from mamori.hunt_shares import hunt_in_shares, merge_rules, rule_file_shares
from mamori.sources.base import ReadOptions, ReadProblem, ReadResult, SourceSpec
from mamori.sources.registry import get_source, sniff_source

SKIP_SUFFIXES = {".yml", ".yaml", ".md", ".txt.sig", ".py", ".exe", ".dll", ".pcap", ".pcapng", ".etl", ".zip",
                 ".png", ".jpg", ".gif", ".pdf"}


@dataclass(frozen=True)
class HuntFilters:
    """Which detections to keep: a minimum level, an event time range, rule ids and tags."""

    min_level: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    rule_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def keeps_rule(self, rule_id: str, level: str, tags: Sequence[str]) -> bool:
        """Whether detections of this rule pass the filters (time is checked per event)."""
        if self.min_level and level_rank(level) < level_rank(self.min_level):
            return False
        if self.rule_ids and rule_id not in self.rule_ids:
            return False
        return not self.tags or any(_tag_within(t, w) for t in tags for w in self.tags)

    def keeps_time(self, time_ns: int | None) -> bool:
        """Whether an event at ``time_ns`` (or a correlation, at the time it came true) is within
        ``since``/``until`` (a bound without a time zone is UTC); an event of unknown time only when no
        range is asked for. One rule for both, so a correlation is kept exactly when its last event is."""
        since, until = self._bounds_ns
        if since is None and until is None:
            return True
        return time_ns is not None and (since is None or time_ns >= since) and (until is None or time_ns <= until)

    @functools.cached_property
    def _bounds_ns(self) -> tuple[int | None, int | None]:
        """``since`` and ``until`` as event times are kept, converted once (``keeps_time`` runs per hit)."""
        return (None if self.since is None else schema.time_ns(self.since),
                None if self.until is None else schema.time_ns(self.until))

    def unnamed(self, rules: Iterable[tuple[str, Sequence[str]]]) -> list[str]:
        """The rule ids and tags the filters ask for that no rule of ``rules`` (id, tags) has: a mistyped
        ``--rule`` or ``--tag`` would otherwise quietly give no detections, read as "nothing found"."""
        if not self.rule_ids and not self.tags:
            return []
        ids: set[str] = set()
        tags: set[str] = set()
        for rule_id, rule_tags in rules:
            ids.add(rule_id)
            tags.update(rule_tags)
        missing = [f"rule {rule_id}" for rule_id in self.rule_ids if rule_id not in ids]
        return missing + [f"tag {w}" for w in self.tags if not any(_tag_within(t, w) for t in tags)]


def _tag_within(tag: str, wanted: str) -> bool:
    """Whether ``tag`` is ``wanted`` or under it (``attack.t1059.001`` is within ``attack.t1059``)."""
    return tag.lower() == wanted.lower() or tag.lower().startswith(wanted.lower() + ".")


@dataclass
class FileReport:
    """What reading one input gave: its source, events read and problems met."""

    path: str
    source: str
    events: int = 0
    problems: list[ReadProblem] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when nothing of the file was lost: bad records set aside with their text (quarantined)
        count as read; a truncated file, a damaged chunk or an unreadable file do not."""
        return all(p.raw and not p.fatal for p in self.problems)

    @property
    def quarantined(self) -> int:
        """Records set aside with their text and the reason."""
        return sum(1 for p in self.problems if p.raw and not p.fatal)


@dataclass
class HuntResult:
    """Everything a hunt produced, for the terminal summary and the detection outputs."""

    detections: list[dict[str, Any]]
    rules_loaded: int
    correlations_loaded: int
    refused: list[Refusal]
    files: list[FileReport]
    skipped: list[tuple[str, str]]
    events: int
    seconds: float
    unrouted_rules: list[Rule]
    rule_processes: int = 1  # processes the rules were shared out over (``hunt_shares``)
    unnamed_filters: list[str] = field(default_factory=list)  # ``HuntFilters.unnamed``: asked for, not loaded

    @property
    def complete(self) -> bool:
        """True when every input file was read without problems."""
        return all(f.complete for f in self.files)


def discover(paths: Sequence[Path], forced: str | None) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """Walk folders and pick a reader per file: (source name, path) pairs and the skipped files with why."""
    chosen: list[tuple[str, Path]] = []
    skipped: list[tuple[str, str]] = []
    forced_spec: SourceSpec | None = get_source(forced) if forced else None
    for root in paths:
        if not root.exists():
            raise MamoriError(f"{root}: no such file or folder", hint="check the path given to `mamori hunt`")
        candidates = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in candidates:
            if forced_spec is not None:
                chosen.append((forced_spec.name, path))
                continue
            if root.is_dir() and (path.suffix.lower() in SKIP_SUFFIXES or path.name.startswith(".")):
                skipped.append((str(path), "not a log file"))
                continue
            spec = sniff_source(path)
            if spec is None:
                skipped.append((str(path), "no reader recognises this file (use --source NAME)"))
            else:
                chosen.append((spec.name, path))
    return chosen, skipped


def balance_files(files: list[tuple[str, Path]], parts: int) -> list[list[tuple[str, Path]]]:
    """Split files into ``parts`` shares of similar total size."""
    bins: list[list[tuple[str, Path]]] = [[] for _ in range(parts)]
    sizes = [0] * parts
    for item in sorted(files, key=lambda f: f[1].stat().st_size, reverse=True):
        target = sizes.index(min(sizes))
        bins[target].append(item)
        sizes[target] += item[1].stat().st_size
    return [b for b in bins if b]


def read_share(share: Iterable[tuple[str, Path]], options: ReadOptions) -> list[tuple[ReadResult, dict[str, int]]]:
    """Read a share of the inputs (in a worker): batches, with events counted per file. ``share`` may
    hand its files out one at a time (``hunt_shares``): EVTX files are gathered into batches across
    files as they come, any other file is read when met."""
    from mamori.sources.evtx import read_evtx_files

    out: list[tuple[ReadResult, dict[str, int]]] = []

    def evtx_paths() -> Iterator[Path]:
        for source, path in share:
            if source == "evtx":
                yield path
            else:
                out.extend(_read_file(source, path, options))

    for result in read_evtx_files(evtx_paths(), options):
        out.append((result, _counts(result)))
    return out


def _read_file(source: str, path: Path, options: ReadOptions) -> list[tuple[ReadResult, dict[str, int]]]:
    """The batches of one (non-EVTX) input, or one fatal problem when it cannot be read."""
    out: list[tuple[ReadResult, dict[str, int]]] = []
    try:
        for result in get_source(source).read(path, options):
            out.append((result, _counts(result)))
    except (OSError, UnicodeError, ValueError) as exc:
        problem = ReadProblem(str(path), f"cannot read as {source}: {exc}", fatal=True)
        out.append((ReadResult(pl.DataFrame(), [problem]), {}))
    return out


SharedResults = list[tuple[bytes | None, list[ReadProblem], dict[str, int]]]


def read_share_for_transfer(share: list[tuple[str, Path]], options: ReadOptions) -> SharedResults:
    """``read_share`` in a worker process, each batch as bytes (``events.transfer``): pickled, the wide
    sparse Windows batches cost more to move than to read."""
    return [(frame_to_bytes(r.frame) if r.frame.width else None, r.problems, counts)
            for r, counts in read_share(share, options)]


def _received(results: SharedResults) -> list[tuple[ReadResult, dict[str, int]]]:
    return [(ReadResult(frame_from_bytes(data) if data is not None else pl.DataFrame(), problems), counts)
            for data, problems, counts in results]


def _counts(result: ReadResult) -> dict[str, int]:
    if result.frame.height == 0 or schema.ORIGIN not in result.frame.columns:
        return {}
    counted = result.frame.get_column(schema.ORIGIN).value_counts()
    return dict(zip(counted.get_column(schema.ORIGIN).to_list(), counted.get_column("count").to_list(), strict=True))


def worker_context(fresh_process: bool = False) -> multiprocessing.context.BaseContext:
    """Processes for readers. Forking is cheapest, but forking a process whose Polars thread pool is
    already running can deadlock the child: so fork only a fresh process (the CLI, before any batch
    work), else fork from a clean server process, else spawn."""
    methods = multiprocessing.get_all_start_methods()
    if fresh_process and "fork" in methods:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["mamori.hunt"])
        return context
    return multiprocessing.get_context("spawn")


def _read_all(files: list[tuple[str, Path]], options: ReadOptions, workers: int, fresh_process: bool
              ) -> Iterator[Future[SharedResults] | list[tuple[ReadResult, dict[str, int]]]]:
    """Start reading: futures from a worker pool when it pays, else the results in this process."""
    if workers > 1 and len(files) > 1:
        pool = ProcessPoolExecutor(workers, mp_context=worker_context(fresh_process))
        futures = [pool.submit(read_share_for_transfer, share, options) for share in balance_files(files, workers * 2)]
        pool.shutdown(wait=False)
        yield from futures
    else:
        yield read_share(files, options)


def run_hunt(
    paths: Sequence[Path],
    rule_sources: Sequence[Path],
    *,
    source: str | None = None,
    options: ReadOptions | None = None,
    filters: HuntFilters | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    explain_matches: bool = True,
    quarantine: Path | None = None,
    fresh_process: bool = False,
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> HuntResult:
    """Hunt: read every input, run every rule, return the detections (rule metadata + event fields).

    ``placeholders``: values of the rules' ``|expand`` placeholders (``detect.sigma.placeholders``).
    ``fresh_process``: the caller guarantees no batch work ran in this process yet and that it ends soon
    after (the CLI), so reader processes may be forked directly, the fastest start, and what the hunt
    built need not be freed before the process ends."""
    started = time.perf_counter()
    options = options or ReadOptions()
    filters = filters or HuntFilters()
    files, skipped = discover(paths, source)
    count = workers or max(1, min(os.cpu_count() or 1, 4))
    reports = {str(p): FileReport(str(p), s) for s, p in files}
    rule_shares = (rule_file_shares(rule_sources, count, cache_dir, use_cache)
                   if fresh_process and count > 1 and files else None)
    if rule_shares is not None:
        shared = _hunt_in_shares(files, rule_shares, options, filters, cache_dir, use_cache, explain_matches,
                                 placeholders)
        if shared is not None:
            for problems, counts in shared.accounts:
                _account(reports, problems, counts)
            found = _finish(shared.detections, shared.rules_loaded, 0, shared.refused, reports, skipped,
                            shared.events, started, shared.unrouted, quarantine)
            found.rule_processes = shared.processes
            found.unnamed_filters = shared.unnamed_filters
            return found
        fresh_process = False  # batch work ran here: readers must not be forked from this process any more
    pending = list(_read_all(files, options, count, fresh_process))  # readers start before rules load
    detector, write_cache = load_detector(rule_sources, cache_dir=cache_dir, placeholders=placeholders,
                                          use_cache=use_cache, workers=1 if files else None)
    write_cache(fresh_process)  # from a forked child when this process is the command, which ends soon
    ruleset = detector.ruleset
    correlations = CorrelationEngine(ruleset.correlations, ruleset.rules)
    silenced = correlations.silenced_rules()
    rules = ruleset.by_id()
    detections: list[dict[str, Any]] = []
    base_hits: list[BaseHit] = []
    events = 0
    waiting: list[pl.DataFrame] = []
    waiting_rows = 0

    def run(frames: list[pl.DataFrame]) -> None:
        frame = joined_batch(frames) if len(frames) > 1 else frames[0]
        hits, prepared = detector.run(frame, explain=explain_matches)
        if hits.height:
            detections.extend(detection_records(prepared, hits, rules, filters, silenced))
            base_hits.extend(_base_hits(frame, hits, correlations))

    for item in pending:
        results = _received(item.result()) if isinstance(item, Future) else item
        for result, counts in results:
            _account(reports, result.problems, counts)
            if result.frame.height == 0:
                continue
            events += result.frame.height
            waiting.append(result.frame)  # small batches are joined: a batch has a fixed cost
            waiting_rows += result.frame.height
            if waiting_rows >= options.batch_rows:
                run(waiting)
                waiting, waiting_rows = [], 0
    if waiting:
        run(waiting)
    # the input has ended: windows decided at close are decided now; referenced correlations with
    # ``generate: false`` feed the ones chained on them but are not reported themselves
    fired_all = correlations.feed(sorted(base_hits, key=lambda h: h.time_ns)) + correlations.close()
    for fired in fired_all:
        record = _correlation_record(fired)
        if (fired.correlation.id not in silenced and filters.keeps_time(fired.time_ns)
                and filters.keeps_rule(record["rule_id"], record["rule_level"], record["tags"])):
            detections.append(record)
    found = _finish(detections, len(ruleset.rules), len(ruleset.correlations), ruleset.refused, reports, skipped,
                    events, started, detector.unrouted, quarantine)
    found.unnamed_filters = filters.unnamed([(r.id, r.tags) for r in ruleset.rules] +
                                            [(c.id, c.tags) for c in ruleset.correlations])
    return found


@dataclass
class _SharedFindings:
    detections: list[dict[str, Any]]
    rules_loaded: int
    refused: list[Refusal]
    events: int
    unrouted: list[Rule]
    accounts: list[tuple[list[ReadProblem], dict[str, int]]]
    processes: int
    unnamed_filters: list[str]


def _hunt_in_shares(files: list[tuple[str, Path]], rule_shares: list[list[Path]], options: ReadOptions,
                    filters: HuntFilters, cache_dir: Path | None, use_cache: bool, explain: bool,
                    placeholders: Mapping[str, Sequence[str]] | None) -> _SharedFindings | None:
    """The hunt with the rules split over one process per share (``hunt_shares``), merged; None when the
    rules hold correlations (the caller then hunts in one process)."""
    shared = hunt_in_shares(files, rule_shares, options, filters, cache_dir, use_cache, explain, placeholders)
    if shared is None:
        return None
    loaded, refused, dropped = merge_rules(shared.outcomes)
    detections = [d for o in shared.outcomes for d in o.detections if (d["rule_id"], d["rule_path"]) not in dropped]
    return _SharedFindings(detections, loaded, refused, sum(r.events for r in shared.reads),
                           [r for o in shared.outcomes for r in o.unrouted],
                           [account for read in shared.reads for account in read.accounts], len(shared.outcomes),
                           [name for name in shared.outcomes[0].unnamed_filters  # named by no share's rules
                            if all(name in o.unnamed_filters for o in shared.outcomes)])


def _account(reports: dict[str, FileReport], problems: list[ReadProblem], counts: dict[str, int]) -> None:
    """Add a batch's events per file and its problems to the file reports."""
    for origin, number in counts.items():
        if origin in reports:
            reports[origin].events += number
    for problem in problems:
        report = reports.get(problem.where) or next(
            (r for path, r in reports.items() if problem.where.startswith(path)), None)
        if report is not None:
            report.problems.append(problem)


def _finish(detections: list[dict[str, Any]], rules_loaded: int, correlations_loaded: int, refused: list[Refusal],
            reports: dict[str, FileReport], skipped: list[tuple[str, str]], events: int, started: float,
            unrouted: list[Rule], quarantine: Path | None) -> HuntResult:
    """Order the detections, write the quarantine file, and wrap everything up."""
    detections.sort(key=_detection_order)
    if quarantine is not None:
        from mamori.sources.quarantine import write_quarantine

        write_quarantine([p for r in reports.values() for p in r.problems], quarantine)
    return HuntResult(detections, rules_loaded, correlations_loaded, refused, list(reports.values()), skipped,
                      events, time.perf_counter() - started, unrouted)


def _detection_order(detection: dict[str, Any]) -> tuple[str, str, str, str]:
    """Time, then rule, then where the event was: one order whichever process found what."""
    return (detection["time"] or "", detection["rule_id"], detection.get("source_file") or "",
            str(detection.get("record_id") or ""))


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def detection_records(prepared: pl.DataFrame, hits: pl.DataFrame, rules: dict[str, Rule], filters: HuntFilters,
             silenced: set[str]) -> list[dict[str, Any]]:
    """Detection records for the hits of one batch (``prepared``: the batch with rule-side names)."""
    out: list[dict[str, Any]] = []
    explained = SELECTIONS in hits.columns
    kept = [r for r in hits.get_column(RULE_ID).unique(maintain_order=True).to_list()
            if r not in silenced and filters.keeps_rule(r, rules[r].level, rules[r].tags)]
    if not kept:
        return out
    hits = hits.filter(pl.col(RULE_ID).is_in(kept))
    wanted = {schema.TIME, schema.HOST, schema.ORIGIN, schema.SOURCE, schema.UID, schema.OFFSET,
              "Channel", "EventID", "EventRecordID"}
    for rule_id in kept:
        wanted.update(rules[rule_id].referenced_fields())
    with_keywords = {rule_id for rule_id in kept if has_keywords(rules[rule_id])}
    if with_keywords:
        wanted.add(schema.RAW)  # where keywords are searched: the record shows which it found
    # one gather of the hit rows and the columns the records show, turned into Python rows once (the
    # columns taken by name: ``select`` plans a query over the batch's hundreds of columns, 20 ms)
    unique_rows = hits.get_column(ROW).unique().sort()
    table = prepared[[c for c in prepared.columns if c in wanted]][unique_rows.to_numpy()]
    if (filters.since or filters.until) and schema.TIME in table.columns:
        in_range = [filters.keeps_time(t) for t in table.get_column(schema.TIME).dt.epoch("ns").to_list()]
    else:
        in_range = [True] * table.height
    lookup = dict(zip(unique_rows.to_list(), range(table.height), strict=True))
    events = table.rows(named=True)
    selections_of = hits.get_column(SELECTIONS).to_list() if explained else [None] * hits.height
    by_rule: dict[str, list[tuple[int, Any]]] = {}
    for rule_id, row, selections in zip(hits.get_column(RULE_ID).to_list(), hits.get_column(ROW).to_list(),
                                        selections_of, strict=True):
        by_rule.setdefault(rule_id, []).append((lookup[row], selections))
    for rule_id, matched in by_rule.items():
        rule = rules[rule_id]
        fields = [f for f in rule.referenced_fields() if f in table.columns]
        tactics = [t.tag for t in tactics_of(rule.tags)]
        techniques = techniques_of(rule.tags)
        for position, selections in matched:
            if not in_range[position]:
                continue
            row = events[position]
            matched_fields = {f: row.get(f) for f in fields}
            keywords = keywords_found(rule, selections, _event_text(row)) if rule_id in with_keywords else []
            record: dict[str, Any] = {
                "rule_id": rule.id,
                "rule_title": rule.title,
                "rule_level": rule.level,
                "rule_author": rule.author,
                "rule_status": rule.status,
                "rule_path": rule.path,
                "tags": list(rule.tags),
                "tactics": tactics,
                "techniques": techniques,
                "time": _iso(row.get(schema.TIME)),
                "host": row.get(schema.HOST),
                "channel": row.get("Channel"),
                "event_id": row.get("EventID"),
                "record_id": row.get("EventRecordID") or row.get(schema.OFFSET),
                "source_file": row.get(schema.ORIGIN),
                "source": row.get(schema.SOURCE),
                "event_uid": row.get(schema.UID),
                "fields": matched_fields,
            }
            if rule_id in with_keywords:
                record["keywords"] = keywords
            if rule.filters:  # the meta-filters that tuned the rule: why it stayed quiet on look-alikes
                record["filters"] = [{"id": f.id, "title": f.title, "path": f.path} for f in rule.filters]
            if selections is not None:
                record["selections"] = selections
                record["match"] = explanation_text(rule, selections, matched_fields, keywords)
            out.append(record)
    return out


def _event_text(row: dict[str, Any]) -> str:
    """The text keywords are searched in: the raw record, else the values at hand."""
    raw = row.get(schema.RAW)
    return raw if isinstance(raw, str) and raw else " ".join(str(v) for v in row.values() if v is not None)


def _base_hits(frame: pl.DataFrame, hits: pl.DataFrame, engine: CorrelationEngine) -> list[BaseHit]:
    """The hits that correlations refer to, with the fields they group and count by."""
    wanted = engine.referenced_rules()
    if not wanted:
        return []
    chosen = hits.filter(pl.col(RULE_ID).is_in(list(wanted)))
    if chosen.height == 0:
        return []
    needed = [f for f in engine.fields_needed() if f in frame.columns]
    rows = frame[chosen.get_column(ROW).to_numpy()].select([schema.TIME, schema.UID, *needed])
    times = rows.get_column(schema.TIME).dt.epoch("ns").fill_null(0).to_list()
    uids = rows.get_column(schema.UID).to_list()
    values = {f: rows.get_column(f).to_list() for f in needed}
    return [
        BaseHit(rule_id, times[i], uids[i], {f: values[f][i] for f in needed})
        for i, rule_id in enumerate(chosen.get_column(RULE_ID).to_list())
    ]


def _correlation_record(fired: CorrelationHit) -> dict[str, Any]:
    """A correlation hit as a detection record: the group-by values as its fields, its events' uids."""
    corr = fired.correlation
    group = dict(fired.group)
    return {
        "rule_id": corr.id,
        "rule_title": corr.title,
        "rule_level": corr.level,
        "rule_author": corr.author,
        "rule_status": corr.status,
        "rule_path": corr.path,
        "tags": list(corr.tags),
        "tactics": [t.tag for t in tactics_of(corr.tags)],
        "techniques": techniques_of(corr.tags),
        "time": _iso(datetime.fromtimestamp(fired.time_ns / 1e9, UTC)),
        "host": group.get("Computer") or group.get("host"),
        "channel": None,
        "event_id": None,
        "record_id": None,
        "source_file": None,
        "source": "correlation",
        "event_uid": None,
        "fields": group,
        "correlation": {"type": corr.type, "value": fired.value, "events": list(fired.uids),
                        "first": _iso(datetime.fromtimestamp(fired.first_ns / 1e9, UTC))},
        "match": fired.summary,
    }


def level_counts(detections: Sequence[dict[str, Any]]) -> Counter[str]:
    """Detections per level."""
    return Counter(d["rule_level"] for d in detections)
