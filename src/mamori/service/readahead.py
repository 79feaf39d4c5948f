"""Read and parse the next micro-batch while the pipeline detects on the current one.

Parsing (syslog headers, JSON payloads, Windows events into columns) and rule matching take most
of a batch's time. Here the next batch is read from the spool on a helper thread, then parsed, and
matched against the Sigma rules (``match_ahead``), in a worker process, while the pipeline stores
and alerts on the current one: the work overlaps and the service uses both cores. Parsing and
matching are pure: the spool stays the record of what is pending and the pipeline's commit stays
the only commit point, so a batch read ahead and never used (a failed batch, a restart) is simply
read again.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from mamori.collect.spool import Entry, Spool
from mamori.events.transfer import frame_from_bytes, frame_to_bytes
from mamori.service.match_ahead import HitsForTransfer, MatchSpec, match_batch, rules_loaded
from mamori.service.parse import Parsed, Quarantined, parse_entries
from mamori.sources.base import ReadOptions
from mamori.store.lake import EncodedPart, decode_parts, encode_parts

log = logging.getLogger("mamori.service")


@dataclass(frozen=True)
class Batch:
    """Consecutive spool entries and what they parsed into."""

    entries: list[Entry]
    parsed: Parsed

    @property
    def end(self) -> int:
        """The first spool entry after this batch."""
        return self.entries[-1].seq + 1


def watch_parent(service_pid: int, every: float = 1.0) -> None:
    """In a parser process: leave when the service is gone. A killed service (SIGKILL, out of memory)
    cannot stop its workers, and a worker holding its own task pipe never sees it close."""

    def watch() -> None:
        while True:
            time.sleep(every)
            try:
                os.kill(service_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # the pid now belongs to another user's process: ours is gone
                os._exit(0)

    threading.Thread(target=watch, name="watch-service", daemon=True).start()


@dataclass(frozen=True)
class ParsedForTransfer:
    """A parsed batch as it crosses from a parser process, its frames as bytes (``events.transfer``)."""

    parts: list[EncodedPart]
    received_ns: bytes
    quarantined: list[Quarantined]
    hits: HitsForTransfer | None = None

    def parsed(self) -> Parsed:
        """The batch back as the pipeline uses it: read from its lake files' content, which the
        pipeline then writes as they are."""
        frame = decode_parts(self.parts)
        received = frame_from_bytes(self.received_ns).to_series()
        return Parsed(frame, received, self.quarantined, self.hits.rule_hits() if self.hits is not None else None,
                      self.parts)


def parse_for_transfer(entries: list[Entry], options: ReadOptions, spec: MatchSpec | None = None) -> ParsedForTransfer:
    """Parse entries (in a parser process) into what travels back cheaply: the batch encoded as its
    lake files (``store.lake.encode_parts``: the service then only writes bytes), rows regrouped by
    lake partition; with ``spec``, the rules' hits on those rows too (see ``match_ahead``)."""
    parsed = parse_entries(entries, options)
    encoded = encode_parts(parsed.frame)
    received = parsed.received_ns if encoded.order is None else parsed.received_ns.gather(encoded.order)
    hits = match_batch(encoded.frame, spec) if spec is not None else None
    return ParsedForTransfer(encoded.parts, frame_to_bytes(received.to_frame()), parsed.quarantined, hits)


@dataclass
class _InFlight:
    """A batch the reader has taken from the spool: its entries (empty: the spool had nothing there
    within the batch wait) and its parse, running in a parser process or done."""

    entries: list[Entry]
    parse: Future[ParsedForTransfer] | Parsed | None


class ReadAhead:
    """The pipeline's source of parsed batches. A reader thread takes consecutive batches from the
    spool and hands each to a parser process, keeping up to ``depth`` batches in flight (one per parser
    process by default), so several batches are parsed and matched at once while the pipeline stores
    one. ``take(start)`` returns the batch beginning at spool entry ``start``; when the batches in flight
    begin elsewhere (the pipeline failed a batch and goes back to its commit) they are dropped and
    reading starts again at ``start``. ``parse_processes=0`` parses on the reader thread (tests, one-core
    machines). ``match_spec`` says, for each batch, which rules a parser process should match on it."""

    def __init__(self, spool: Spool, rows: int, seconds: float, options: ReadOptions,
                 parse_processes: int = 1, match_spec: Callable[[], MatchSpec | None] | None = None,
                 depth: int | None = None) -> None:
        self.spool = spool
        self.rows = rows
        self.seconds = seconds
        self.options = options
        self.parse_processes = parse_processes
        self.match_spec = match_spec or (lambda: None)
        self.depth = depth or max(1, parse_processes)
        self._parsers: ProcessPoolExecutor | None = None
        self._flight: queue.Queue[_InFlight | Exception] = queue.Queue(self.depth)
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._next: int | None = None  # the start of the next batch ``take`` will be given

    def warm(self) -> list[Future[bool]]:
        """Start the parser processes now and have each load the rules (``match_ahead.rules_loaded``),
        so the first batches after a start do not wait for either; the futures say when each is done."""
        if self.parse_processes <= 0:
            return []
        spec = self.match_spec()
        pool = self._pool()
        return [pool.submit(rules_loaded, spec) for _ in range(self.parse_processes)]

    def take(self, start: int) -> Batch | None:
        """The batch starting at ``start`` (None when the spool has nothing there within the batch wait)."""
        self.ahead(start)
        got = self._flight.get()
        if isinstance(got, Exception):  # the reader failed (the spool): stop, the pipeline retries
            self.discard()
            raise got
        if not got.entries:
            return None
        self._next = got.entries[-1].seq + 1
        try:
            parsed = self._finish(got.parse)
        except BrokenProcessPool:  # a parser process died (killed, out of memory): start afresh
            log.warning("a parser process died; starting a new one")
            self.discard()
            self._parsers = None
            parsed = self._finish(self._submit(got.entries))
        return Batch(got.entries, parsed)

    def ahead(self, start: int) -> None:
        """Make sure batches from ``start`` on are being read (the reader runs ahead on its own)."""
        if self._next != start:
            self.discard()
            self._next = start
            self._reader = threading.Thread(target=self._read_from, args=(start,), name="read-ahead", daemon=True)
            self._reader.start()

    def discard(self) -> None:
        """Drop the batches in flight and stop the reader (the pipeline will read from its commit again)."""
        reader, self._reader = self._reader, None
        self._next = None
        if reader is None:
            return
        self._stop.set()
        while reader.is_alive():
            self._drain()
            reader.join(0.05)
        self._drain()
        self._stop.clear()

    def close(self) -> None:
        """Stop the reader and the parser processes."""
        self.discard()
        if self._parsers is not None:
            self._parsers.shutdown(wait=True, cancel_futures=True)

    def _read_from(self, start: int) -> None:
        """The reader thread: consecutive batches from ``start``, each handed to a parser as it is read."""
        try:
            while not self._stop.is_set():
                entries = self.spool.read(start, self.rows, self.seconds)
                flight = _InFlight(entries, self._submit(entries) if entries else None)
                while not self._stop.is_set():
                    try:
                        self._flight.put(flight, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if entries:
                    start = entries[-1].seq + 1
        except Exception as exc:  # handed to the pipeline, which logs it and goes back to its commit
            with contextlib.suppress(queue.Full):
                self._flight.put(exc, timeout=1.0)

    def _submit(self, entries: list[Entry]) -> Future[ParsedForTransfer] | Parsed:
        if self.parse_processes <= 0:
            return parse_entries(entries, self.options)
        return self._pool().submit(parse_for_transfer, entries, self.options, self.match_spec())

    @staticmethod
    def _finish(parse: Future[ParsedForTransfer] | Parsed | None) -> Parsed:
        assert parse is not None
        return parse if isinstance(parse, Parsed) else parse.result().parsed()

    def _drain(self) -> None:
        """Empty the hand-over queue, waiting for any parse still running (no two reads overlap)."""
        while True:
            try:
                got = self._flight.get_nowait()
            except queue.Empty:
                return
            if isinstance(got, _InFlight) and isinstance(got.parse, Future):
                with contextlib.suppress(CancelledError, Exception):  # a dropped batch's failure concerns nobody
                    got.parse.result()

    def _pool(self) -> ProcessPoolExecutor:
        if self._parsers is None:
            # the service runs threads: never fork it; fork from a clean server process instead
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["mamori.service.parse", "mamori.detect.sigma.engine"])
            self._parsers = ProcessPoolExecutor(self.parse_processes, mp_context=context,
                                                initializer=watch_parent, initargs=(os.getpid(),))
        return self._parsers
