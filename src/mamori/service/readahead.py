"""Read and parse the next micro-batch while the pipeline detects on the current one.

Parsing (syslog headers, JSON payloads, Windows events into columns) and detection each take about
half of a batch's time. Run one after the other on one thread they use one core; here the next
batch is read from the spool on a helper thread and parsed in a worker process, so the two overlap
and the service uses both cores. Parsing is pure: the spool stays the record of what is pending and
the pipeline's commit stays the only commit point, so a batch read ahead and never used (a failed
batch, a restart) is simply read again.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import polars as pl

from mamori.collect.spool import Entry, Spool
from mamori.service.parse import Parsed, Quarantined, parse_entries
from mamori.sources.base import ReadOptions

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
    """A parsed batch as it crosses from a parser process: the frame as LZ4 Parquet bytes. A batch of
    Windows events is wide and sparse (hundreds of mostly empty columns); pickled as is it weighs ten
    times more and costs more to move than parsing it again."""

    frame: bytes
    received_ns: bytes
    quarantined: list[Quarantined]

    def parsed(self) -> Parsed:
        """The batch back as the pipeline uses it."""
        frame = pl.read_parquet(io.BytesIO(self.frame))
        received = pl.read_parquet(io.BytesIO(self.received_ns)).to_series()
        return Parsed(frame, received, self.quarantined)


def parse_for_transfer(entries: list[Entry], options: ReadOptions) -> ParsedForTransfer:
    """Parse entries (in a parser process) into what travels back cheaply."""
    parsed = parse_entries(entries, options)
    return ParsedForTransfer(_parquet(parsed.frame), _parquet(parsed.received_ns.to_frame()), parsed.quarantined)


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="lz4", statistics=False)
    return buffer.getvalue()


class ReadAhead:
    """The pipeline's source of parsed batches: ``take(start)`` returns the batch beginning at spool entry
    ``start`` (read ahead when it was asked for, else read now); ``ahead(start)`` starts reading the
    next one. ``parse_processes=0`` parses on the helper thread (tests, one-core machines)."""

    def __init__(self, spool: Spool, rows: int, seconds: float, options: ReadOptions,
                 parse_processes: int = 1) -> None:
        self.spool = spool
        self.rows = rows
        self.seconds = seconds
        self.options = options
        self.parse_processes = parse_processes
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="read-ahead")
        self._parsers: ProcessPoolExecutor | None = None
        self._pending: tuple[int, Future[Batch | None]] | None = None

    def take(self, start: int) -> Batch | None:
        """The batch starting at ``start`` (None when the spool has nothing there within the batch wait)."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == start:
            return pending[1].result()
        if pending is not None:
            pending[1].cancel()
            self._settle(pending[1])
        return self._read(start)

    def ahead(self, start: int) -> None:
        """Start reading and parsing the batch that begins at ``start``."""
        if self._pending is None:
            self._pending = (start, self._reader.submit(self._read, start))

    def discard(self) -> None:
        """Forget the batch read ahead (the pipeline will read from its commit again)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1].cancel()
            self._settle(pending[1])

    def close(self) -> None:
        """Stop the helper thread and the parser processes."""
        self.discard()
        self._reader.shutdown(wait=True)
        if self._parsers is not None:
            self._parsers.shutdown(wait=True, cancel_futures=True)

    def _read(self, start: int) -> Batch | None:
        entries = self.spool.read(start, self.rows, self.seconds)
        if not entries:
            return None
        return Batch(entries, self._parse(entries))

    def _parse(self, entries: list[Entry]) -> Parsed:
        if self.parse_processes <= 0:
            return parse_entries(entries, self.options)
        try:
            wire = self._pool().submit(parse_for_transfer, entries, self.options).result()
        except BrokenProcessPool:  # a parser process died (killed, out of memory): start afresh
            log.warning("a parser process died; starting a new one")
            self._parsers = None
            wire = self._pool().submit(parse_for_transfer, entries, self.options).result()
        return wire.parsed()

    def _pool(self) -> ProcessPoolExecutor:
        if self._parsers is None:
            # the service runs threads: never fork it; fork from a clean server process instead
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["mamori.service.parse"])
            self._parsers = ProcessPoolExecutor(self.parse_processes, mp_context=context,
                                                initializer=watch_parent, initargs=(os.getpid(),))
        return self._parsers

    @staticmethod
    def _settle(future: Future[Batch | None]) -> None:
        """Wait for a discarded read to end, so no two reads of the spool overlap."""
        with contextlib.suppress(CancelledError, Exception):  # a discarded batch's failure concerns nobody
            future.result()
