"""``mamori hunt`` on every core: the rules split into shares, one process per share, each process
matching its share against every event.

Why rules and not events: a hunt of a few thousand events spends most of its time compiling rules,
and a big hunt most of its time matching them; both divide by rules. Splitting by events would leave
every process compiling every rule. Each process loads its share of the rules (a Detector from the
cache when warm), reads input files handed out one at a time to whichever process asks first (so all
finish reading together, however long their rules took), leaves its batches in a scratch folder for
the others, then matches its rules on every batch. Rules are shared out by folder: in SigmaHQ's
layout a folder is one log source, so a share's rules meet fewer kinds of events and read fewer fields.

Correlation rules need the hits of the rules they name, wherever those were compiled: when any share
holds one (loaded, or refused there for naming a rule another share holds), the split is abandoned
(``hunt_in_shares`` gives None) and the hunt runs in one process.
Meta-filters tune rules wherever those were compiled: every share loads every filter file (found by
a top-level ``filter:`` key; the list is cached by the files' stamps), and a filter is refused for
naming no rule only when no share had one to apply it to (``merge_rules``).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import shutil
import struct
import tempfile
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import polars as pl
import pyarrow as pa
import pyarrow.ipc as pa_ipc

from mamori.detect.sigma.detector_cache import load_detector
from mamori.detect.sigma.loader import RULE_SUFFIXES
from mamori.detect.sigma.model import Refusal, RefusalKind, Rule
from mamori.detect.sigma.ruleset import CACHE_VERSION, default_cache_dir, rule_files
from mamori.errors import MamoriError
from mamori.events.frame import joined_batch
from mamori.sources.base import ReadOptions, ReadProblem

if TYPE_CHECKING:
    from mamori.hunt import HuntFilters

KEEP_OWN_ROWS = 200_000  # a process keeps the batches it read in memory up to this many rows
MIN_RULE_FILES = 400  # below this, compiling is quick and one process does everything
BALANCE_SLACK = 1.15  # a folder stays whole in one share while it is at most this much over a fair share
TICKET = struct.Struct("<I")  # an input file's number, as handed out through a pipe
REMOVE_SCRATCH = "remove scratch"  # to the first child, once every process has reported
_LEFT_FOR_EXIT: list[object] = []  # what the command's process does not free before it ends (``hunt_in_shares``)
_FILTER_KEY = re.compile(rb"^filter[ \t]*:", re.MULTILINE)  # a meta-filter document's top-level key
_RULE_KEY = re.compile(rb"^(?:detection|correlation)[ \t]*:", re.MULTILINE)
# refusals of a correlation whose rules may be loaded in another share: the hunt then runs in one process
_NAMED_ELSEWHERE = frozenset({RefusalKind.CORRELATION_NAMES_NO_RULE, RefusalKind.CORRELATION_REFERS_TO_REFUSED})
# refusals of a meta-filter that tunes no rule of this share; it may tune some of another share
_TUNES_NO_RULE_HERE = frozenset({RefusalKind.FILTER_NAMES_NO_RULE, RefusalKind.FILTER_APPLIES_TO_NONE})


@dataclass
class ShareRead:
    """What one process read: its batches (scratch file names, in reading order), the events and problems
    per input, and whether its rule share holds a correlation."""

    share: int
    batches: list[str] = field(default_factory=list)
    events: int = 0
    accounts: list[tuple[list[ReadProblem], dict[str, int]]] = field(default_factory=list)
    has_correlations: bool = False


@dataclass
class ShareOutcome:
    """What one process found with its rules: detection records, and what its rules were."""

    detections: list[dict[str, Any]]
    rules: list[tuple[str, str]]  # (id, path) of every rule the share loaded
    correlations: int
    refused: list[Refusal]
    unrouted: list[Rule]
    unnamed_filters: list[str] = field(default_factory=list)  # asked for by the filters, had by no rule here


@dataclass
class SharedHunt:
    """Every process's reading and findings, the main process's first."""

    reads: list[ShareRead]
    outcomes: list[ShareOutcome]


def rule_file_shares(sources: Sequence[Path], parts: int, cache_dir: Path | None = None,
                     use_cache: bool = True) -> list[list[Path]] | None:
    """The rule files of ``sources`` in ``parts`` shares of similar size, folder by folder, each share
    also holding every meta-filter file (a filter tunes rules in any share); None when the rules should
    not be split (a zip, a missing path, too few files to be worth it, a file holding both a filter and
    a rule, which would then load twice)."""
    units: dict[tuple[int, str], list[str]] = {}
    sizes: dict[str, int] = {}
    stamp = hashlib.blake2b(CACHE_VERSION.encode(), digest_size=20)
    for number, source in enumerate(sources):
        if source.is_dir():
            for path in rule_files(str(source)):  # spelled as ``iter_rule_texts`` gives a rule's path
                try:
                    status = os.stat(path)
                except OSError:
                    continue
                sizes[path] = status.st_size
                stamp.update(f"{path}\x00{status.st_size}\x00{status.st_mtime_ns}\x00{status.st_ino}\n".encode())
                units.setdefault((number, os.path.dirname(path)), []).append(path)
        elif source.is_file() and source.suffix.lower() in RULE_SUFFIXES:
            units.setdefault((number, str(source)), []).append(str(source))
            status = source.stat()
            sizes[str(source)] = status.st_size
            stamp.update(f"{source}\x00{status.st_size}\x00{status.st_mtime_ns}\x00{status.st_ino}\n".encode())
        else:
            return None
    total = sum(sizes.values())
    if parts < 2 or len(sizes) < MIN_RULE_FILES or total == 0:
        return None
    filters = meta_filter_files(list(sizes), stamp.hexdigest(), cache_dir, use_cache)
    if filters is None:
        return None
    for unit in units.values():  # (the filter files go to every share below, not to one)
        unit[:] = [p for p in unit if p not in filters]
    sizes = {p: size for p, size in sizes.items() if p not in filters}
    total = sum(sizes.values())
    fair = total / parts
    pieces: list[tuple[int, list[str]]] = []
    for paths in units.values():
        if not paths:
            continue
        size = sum(sizes[p] for p in paths)
        if size <= fair * BALANCE_SLACK:
            pieces.append((size, paths))
        else:  # a folder bigger than a share is shared out file by file
            pieces.extend((sizes[p], [p]) for p in paths)
    shares: list[list[str]] = [[] for _ in range(parts)]
    loads = [0] * parts
    for size, paths in sorted(pieces, key=lambda piece: (-piece[0], piece[1][0])):
        target = loads.index(min(loads))
        shares[target].extend(paths)
        loads[target] += size
    return [[Path(p) for p in sorted(share + sorted(filters))] for share in shares if share]


def meta_filter_files(paths: list[str], stamp: str, cache_dir: Path | None, use_cache: bool = True
                      ) -> set[str] | None:
    """The rule files holding a meta-filter document (a top-level ``filter:`` key), remembered in the
    cache by the files' stamp so a warm hunt reads none of them; None when a file holds a filter and a
    rule or correlation too (every share would load that rule: the hunt then stays in one process)."""
    cache_file = (cache_dir or default_cache_dir()) / f"filter-files-{stamp}.txt"
    if use_cache:
        try:
            listed = cache_file.read_text(encoding="utf-8")
        except OSError:
            pass
        else:
            return None if listed.startswith("\x00mixed") else {line for line in listed.splitlines() if line}
    found: set[str] = set()
    mixed = False
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        if _FILTER_KEY.search(data):
            found.add(path)
            mixed = mixed or _RULE_KEY.search(data) is not None
    if use_cache:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = cache_file.with_suffix(f".tmp{os.getpid()}")
            temporary.write_text("\x00mixed\n" if mixed else "".join(f"{p}\n" for p in sorted(found)),
                                 encoding="utf-8")
            temporary.replace(cache_file)
        except OSError:
            pass  # a cache that cannot be written only costs time
    return None if mixed else found


def hunt_in_shares(files: list[tuple[str, Path]], rule_shares: list[list[Path]], options: ReadOptions,
                   filters: HuntFilters, cache_dir: Path | None, use_cache: bool, explain: bool,
                   placeholders: Mapping[str, Sequence[str]] | None = None) -> SharedHunt | None:
    """Run the hunt with one process per rule share (this one and forked children); None when a share
    holds a correlation rule (the caller then hunts in one process). Only for a process that has done
    no batch work yet (the children are forked) and that ends soon after, the command itself: what it
    built for matching is left for the end of the process to free (``_LEFT_FOR_EXIT``)."""
    count = len(rule_shares)
    scratch = Path(tempfile.mkdtemp(prefix="mamori-hunt-"))
    tickets = FileTickets.filled(files)
    file_shares: list[Iterable[tuple[str, Path]]] = [tickets] * count if tickets else _balanced(files, count)
    context = multiprocessing.get_context("fork")
    children: list[tuple[BaseProcess, Connection]] = []
    job = _Job(scratch, options, filters, cache_dir, use_cache, explain, placeholders)
    scratch_removed = False
    try:
        for share in range(1, count):
            ours, theirs = context.Pipe()
            work = (job, share, file_shares[share], rule_shares[share], theirs)
            process: BaseProcess = context.Process(target=_child, args=work, name=f"mamori-hunt-share-{share}")
            process.start()
            theirs.close()
            children.append((process, ours))
        own = _Participant(job, 0, file_shares[0], rule_shares[0])
        reads = [own.compile_and_read()] + [_receive(process, conn, "ready") for process, conn in children]
        if any(read.has_correlations for read in reads):
            for _, conn in children:
                conn.send(None)
            return None
        order = [name for read in reads for name in read.batches]
        for _, conn in children:
            conn.send(order)
        outcomes = [own.detect(order)] + [_receive(process, conn, "done") for process, conn in children]
        # This process is the command and ends soon: its rules and batches are left for the end of the
        # process to free at once (one by one, 15-20 ms), and the scratch folder for the first child to
        # remove as it leaves (15-20 ms more), while this one writes the detections out.
        _LEFT_FOR_EXIT.append(own)
        if children:
            children[0][1].send(REMOVE_SCRATCH)
            scratch_removed = True
        return SharedHunt(reads, outcomes)  # the children end by themselves, and are reaped at exit
    except BaseException:
        for process, _ in children:
            process.terminate()
            process.join()
        raise
    finally:
        for _, conn in children:
            conn.close()
        if tickets:
            tickets.close()
        if not scratch_removed:
            shutil.rmtree(scratch, ignore_errors=True)


def _balanced(files: list[tuple[str, Path]], count: int) -> list[Iterable[tuple[str, Path]]]:
    """The files shared out in advance, by size (when there are too many to hand out one by one)."""
    from mamori.hunt import balance_files

    shares: list[Iterable[tuple[str, Path]]] = list(balance_files(files, count))
    return shares + [[] for _ in range(count - len(shares))]


class FileTickets:
    """Input files handed out one at a time, largest first, to whichever process asks first: their
    numbers are written into a pipe before the processes are forked, and each process reads one number
    at a time (a pipe read of a few bytes is atomic). Shared out in advance, a share of files took
    one process twice as long to read as the other's, and the first to finish waited."""

    def __init__(self, files: list[tuple[str, Path]], read_end: int) -> None:
        self.files = files
        self.read_end = read_end

    @classmethod
    def filled(cls, files: list[tuple[str, Path]]) -> FileTickets | None:
        """Tickets for ``files``; None when the pipe cannot hold them all (then share out in advance)."""
        ordered = sorted(files, key=lambda item: _size(item[1]), reverse=True)
        numbers = b"".join(TICKET.pack(number) for number in range(len(ordered)))
        read_end, write_end = os.pipe()
        try:
            os.set_blocking(write_end, False)
            written = os.write(write_end, numbers) if numbers else 0
        except BlockingIOError:
            written = -1
        finally:
            os.close(write_end)
        if written != len(numbers):
            os.close(read_end)
            return None
        return cls(ordered, read_end)

    def __iter__(self) -> Iterator[tuple[str, Path]]:
        """The files this process is handed, until none is left."""
        while len(data := os.read(self.read_end, TICKET.size)) == TICKET.size:
            yield self.files[TICKET.unpack(data)[0]]

    def close(self) -> None:
        """Close this process's end of the pipe."""
        os.close(self.read_end)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class _Job:
    scratch: Path
    options: ReadOptions
    filters: HuntFilters
    cache_dir: Path | None
    use_cache: bool
    explain: bool
    placeholders: Mapping[str, Sequence[str]] | None = None


class _Participant:
    """One process's part: load a share of the rules, read files as handed out, match every batch."""

    def __init__(self, job: _Job, share: int, files: Iterable[tuple[str, Path]], rule_files: list[Path]) -> None:
        self.job = job
        self.share = share
        self.files = files
        self.rule_files = rule_files
        self.kept: dict[str, pl.DataFrame] = {}

    def compile_and_read(self) -> ShareRead:
        """Load this share's rules (a Detector), then read the files this process is handed into scratch
        batches: reading last, a process whose rules took longer reads fewer files."""
        from mamori.hunt import read_share

        self.detector, self.write_cache = load_detector(self.rule_files, cache_dir=self.job.cache_dir,
                                                        placeholders=self.job.placeholders,
                                                        use_cache=self.job.use_cache, workers=1)
        self.ruleset = self.detector.ruleset
        named_elsewhere = any(r.kind in _NAMED_ELSEWHERE for r in self.ruleset.refused)
        read = ShareRead(self.share, has_correlations=bool(self.ruleset.correlations) or named_elsewhere)
        if read.has_correlations:
            return read  # the hunt runs in one process: nothing to read here
        kept_rows = 0
        for number, (result, counts) in enumerate(read_share(self.files, self.job.options)):
            read.accounts.append((result.problems, counts))
            if result.frame.height == 0:
                continue
            name = f"{self.share}-{number}.arrow"
            read.batches.append(name)
            read.events += result.frame.height
            if kept_rows + result.frame.height <= KEEP_OWN_ROWS:
                self.kept[name] = result.frame
                kept_rows += result.frame.height
            write_batch(result.frame, self.job.scratch / name)
        return read

    def detect(self, order: list[str]) -> ShareOutcome:
        """Match this share's rules on every batch, in the order given (the same in every process)."""
        from mamori.hunt import detection_records

        rules = self.ruleset.by_id()
        detections: list[dict[str, Any]] = []
        waiting: list[pl.DataFrame] = []
        waiting_rows = 0

        def run(frames: list[pl.DataFrame]) -> None:
            frame = joined_batch(frames) if len(frames) > 1 else frames[0]
            hits, prepared = self.detector.run(frame, explain=self.job.explain)
            if hits.height:
                detections.extend(detection_records(prepared, hits, rules, self.job.filters, set()))

        for name in order:
            frame = self.kept.get(name)
            if frame is None:
                frame = read_batch(self.job.scratch / name)
            waiting.append(frame)
            waiting_rows += frame.height
            if waiting_rows >= self.job.options.batch_rows:
                run(waiting)
                waiting, waiting_rows = [], 0
        if waiting:
            run(waiting)
        self.write_cache(True)  # only now: until here every core had matching to do
        return ShareOutcome(detections, [(r.id, r.path) for r in self.ruleset.rules],
                            len(self.ruleset.correlations), list(self.ruleset.refused), list(self.detector.unrouted),
                            self.job.filters.unnamed((r.id, r.tags) for r in self.ruleset.rules))


def write_batch(frame: pl.DataFrame, path: Path) -> None:
    """Leave a batch for the other processes: Arrow IPC, uncompressed, so that they map it rather than
    read and decompress it (a batch goes through the page cache once and is read back at once)."""
    frame.write_ipc(path, compression="uncompressed", compat_level=pl.CompatLevel.newest())


def read_batch(path: Path) -> pl.DataFrame:
    """A batch another process left (``write_batch``), its columns in the mapped file's memory: 4 ms for
    a batch that took 25-55 ms to read and decompress (lz4) into fresh memory."""
    return cast(pl.DataFrame, pl.from_arrow(pa_ipc.open_file(pa.memory_map(str(path))).read_all()))


def _child(job: _Job, share: int, files: Iterable[tuple[str, Path]], rule_files: list[Path],
           conn: Connection) -> None:
    """A forked process's whole part; any failure goes back to the main process as text."""
    try:
        participant = _Participant(job, share, files, rule_files)
        conn.send(("ready", participant.compile_and_read()))
        order = conn.recv()
        if order is not None:
            conn.send(("done", participant.detect(order)))
            if conn.recv() == REMOVE_SCRATCH:
                shutil.rmtree(job.scratch, ignore_errors=True)
    except EOFError:
        pass  # the main process has gone: nothing to report to
    except BaseException:  # whatever broke, the main process must hear of it
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _receive(process: BaseProcess, conn: Connection, expected: str) -> Any:
    """The next message of a child, or a clear error when it failed or vanished."""
    while not conn.poll(0.2):
        if not process.is_alive() and not conn.poll():
            raise MamoriError(f"a hunt process ({process.name}) stopped unexpectedly (exit code {process.exitcode})")
    try:
        kind, payload = conn.recv()
    except EOFError as exc:
        raise MamoriError(f"a hunt process ({process.name}) stopped before answering") from exc
    if kind == "error":
        raise MamoriError(f"a hunt process ({process.name}) failed:\n{payload}")
    if kind != expected:
        raise MamoriError(f"a hunt process ({process.name}) answered {kind!r}, expected {expected!r}")
    return payload


def merge_rules(outcomes: Sequence[ShareOutcome]) -> tuple[int, list[Refusal], set[tuple[str, str]]]:
    """Rules loaded over all shares, the refusals (with an id loaded twice refused as one process would
    have: the first file in path order keeps it), and the (id, path) pairs whose detections are dropped.
    Every share loads every meta-filter file: their refusals count once, and a filter that tunes no rule
    of one share (it names none there) is refused only when it tuned none in any share."""
    refused = _merged_refusals(outcomes)
    first: dict[str, str] = {}
    for rule_id, path in sorted((pair for o in outcomes for pair in o.rules), key=lambda pair: pair[1]):
        first.setdefault(rule_id, path)
    dropped = {(rule_id, path) for o in outcomes for rule_id, path in o.rules if first[rule_id] != path}
    refused += [Refusal(path, f"duplicate rule id {rule_id} (first in {first[rule_id]})", rule_id,
                        kind=RefusalKind.DUPLICATE_ID) for rule_id, path in dropped]
    loaded = sum(len(o.rules) for o in outcomes) - len(dropped)
    return loaded, sorted(refused, key=lambda r: r.path), dropped


def _merged_refusals(outcomes: Sequence[ShareOutcome]) -> list[Refusal]:
    """The shares' refusals, each once (filter files load in every share); a filter's "tunes no rule
    here" kept only when every share gave it, the more telling reason (a log source no named rule has)
    first."""
    out: dict[tuple[str, str, str], Refusal] = {}
    unused: dict[tuple[str, str], list[Refusal]] = {}
    for outcome in outcomes:
        for refusal in outcome.refused:
            if refusal.kind in _TUNES_NO_RULE_HERE:
                unused.setdefault((refusal.path, refusal.rule_id), []).append(refusal)
            else:
                out.setdefault((refusal.path, refusal.reason, refusal.rule_id), refusal)
    for copies in unused.values():
        if len(copies) == len(outcomes):
            kept = min(copies, key=lambda r: r.kind is RefusalKind.FILTER_NAMES_NO_RULE)
            out[(kept.path, kept.reason, kept.rule_id)] = kept
    return list(out.values())
