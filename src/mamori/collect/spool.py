"""The durable spool: a write-ahead log every input appends to before it acknowledges anything.

Entries (a chunk of raw records from one input) are appended by many producers and made durable
together by one writer thread (group commit: one ``fsync`` for many entries), then numbered with a
monotonic sequence. The pipeline reads entries back in order and records the sequence it has
committed; at start, the log is scanned, a torn tail is cut off, and reading resumes after the last
commit. Memory stays bounded: producers learn the unconsumed backlog (``pending_bytes``) and slow
down or refuse when it is too large.
"""

from __future__ import annotations

import itertools
import os
import queue
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mamori.collect.key_ledger import HTTP_ORIGIN, KeyLedger
from mamori.errors import MamoriError

_HEADER = struct.Struct("<2sIIQ")  # magic, body length, crc32 of body, sequence number
_MAGIC = b"MW"
SUFFIX = ".wal"
LEDGER_FILE = "http-keys.sqlite"  # idempotency keys of pruned segments (key_ledger)
SOURCE_FORMAT = "source:"  # an entry format naming the source whose reader parses the records


def source_format(name: str) -> str:
    """The entry format of records that the reader of source ``name`` parses (``source:cloudtrail``).
    The spool keeps the reader's name with the records, so a replay after a crash parses them the same
    way; older entries carry ``syslog``, ``json`` or ``quarantine``, which stay readable."""
    return SOURCE_FORMAT + name


@dataclass(frozen=True)
class Entry:
    """A chunk of raw records from one input: its format (which parser reads it: ``syslog``, ``json``,
    ``quarantine`` or ``source:<name>``), origin, the records, when it was received (ns), an optional
    idempotency key and its sequence number in the spool."""

    fmt: str
    origin: str
    records: tuple[str, ...]
    received_ns: int
    key: str | None = None
    seq: int = -1
    body: bytes | None = field(default=None, compare=False, repr=False)  # the stored body, when read back

    def encode(self) -> bytes:
        """The entry body as stored (JSON)."""
        if self.body is not None:
            return self.body
        return orjson.dumps({"f": self.fmt, "o": self.origin, "r": self.records, "t": self.received_ns,
                             "k": self.key})

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """An entry read from the spool crosses to a parser process as its stored body, decoded there:
        one block of bytes pickles in a fraction of the time its thousands of records take."""
        if self.body is not None:
            return _decode, (self.body, self.seq)
        return Entry, (self.fmt, self.origin, self.records, self.received_ns, self.key, self.seq)


def _decode(body: bytes, seq: int) -> Entry:
    data = orjson.loads(body)
    return Entry(data["f"], data["o"], tuple(data["r"]), int(data["t"]), data.get("k"), seq, body)


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def _scan(path: Path, offset: int = 0) -> Iterator[tuple[int, int, bytes]]:
    """Yield (seq, end offset, body) for every intact entry of a segment from byte ``offset``; stop at
    the first torn one."""
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    position = 0
    while position + _HEADER.size <= len(data):
        magic, length, crc, seq = _HEADER.unpack_from(data, position)
        end = position + _HEADER.size + length
        if magic != _MAGIC or end > len(data):
            return
        body = data[position + _HEADER.size:end]
        if zlib.crc32(body) != crc:
            return
        yield seq, offset + end, body
        position = end


class Spool:
    """The write-ahead log in ``folder``: ``append`` from any thread, ``read`` from the pipeline."""

    def __init__(self, folder: Path, *, segment_bytes: int = 64 * 1024 * 1024, max_pending_bytes: int = 1 << 28,
                 keep_seconds: float = 900.0, fsync: bool = True, key_keep_seconds: float = 86_400.0) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        self.max_pending_bytes = max_pending_bytes
        self.keep_seconds = keep_seconds
        self.fsync = fsync
        folder.mkdir(parents=True, exist_ok=True)
        self.ledger = KeyLedger(folder / LEDGER_FILE, key_keep_seconds)  # HTTP keys of pruned segments
        self._lock = threading.Condition()
        self._queue: queue.Queue[tuple[Entry, bytes, Future[int]] | None] = queue.Queue()
        self._sizes: dict[int, int] = {}  # seq -> bytes, for entries not yet consumed
        self.keys: set[str] = set()
        self.committed = 0  # first sequence the pipeline has not committed
        self.next_seq = 0
        self.pending_bytes = 0
        self._cursor: tuple[Path, int, int] | None = None  # (segment, byte offset, next seq) of the reader
        self._recover()
        self._handle = self._open_segment()
        self._writer = threading.Thread(target=self._write_loop, name="spool-writer", daemon=True)
        self._closed = False
        self._writer.start()

    # ------------------------------------------------------------------ recovery
    def segments(self) -> list[tuple[int, Path]]:
        """The segment files, oldest first, with the first sequence each holds."""
        found = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            try:
                found.append((int(path.stem), path))
            except ValueError:
                continue
        return sorted(found)

    def _recover(self) -> None:
        segments = self.segments()
        for first, path in segments:
            good_end = 0
            for seq, end, body in _scan(path):
                good_end = end
                self.next_seq = seq + 1
                key = orjson.loads(body).get("k")
                if key:
                    self.keys.add(key)
            if good_end < path.stat().st_size:  # torn tail from a crash: cut it off
                with path.open("r+b") as handle:
                    handle.truncate(good_end)
                    os.fsync(handle.fileno())
            if good_end == 0 and first >= self.next_seq:
                path.unlink()
        self.next_seq = max(self.next_seq, segments[-1][0] if segments else 0)

    def start_from(self, committed: int) -> None:
        """Tell the spool what the pipeline committed last time (entries before it are done), so the
        backlog counts only what is left."""
        with self._lock:
            self.committed = committed
            self._sizes.clear()
            self.pending_bytes = 0
            for _, path in self.segments():
                for seq, end, body in _scan(path):
                    del end
                    if seq >= committed:
                        self._sizes[seq] = len(body)
                        self.pending_bytes += len(body)

    # ------------------------------------------------------------------ writing
    def _open_segment(self) -> Any:
        segments = self.segments()
        if segments and segments[-1][1].stat().st_size < self.segment_bytes:
            return segments[-1][1].open("ab")
        path = self.folder / _segment_name(self.next_seq)
        handle = path.open("ab")
        self._sync_dir()
        return handle

    def _sync_dir(self) -> None:
        if not self.fsync:
            return
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @property
    def full(self) -> bool:
        """True when the unconsumed backlog is above the limit: inputs must slow down or refuse."""
        return self.pending_bytes >= self.max_pending_bytes

    def append(self, entry: Entry) -> Future[int]:
        """Queue an entry; the future gives its sequence number once it is durable on disk."""
        if self._closed:
            raise MamoriError("the spool is closed", where=str(self.folder))
        body = entry.encode()
        future: Future[int] = Future()
        self._queue.put((entry, body, future))
        return future

    def append_wait(self, entry: Entry, timeout: float | None = None) -> int:
        """Append and wait until the entry is durable; return its sequence number."""
        return self.append(entry).result(timeout)

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < 4096:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            try:
                numbered = self._write(batch)
            except Exception as exc:  # a failed write must fail every waiting producer, not hang it
                for _, _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, _, future), seq in zip(batch, numbered, strict=True):
                future.set_result(seq)

    def _write(self, batch: Sequence[tuple[Entry, bytes, Future[int]]]) -> list[int]:
        numbered: list[int] = []
        chunks: list[bytes] = []
        with self._lock:
            first = self.next_seq
        for index, (entry, body, _) in enumerate(batch):
            seq = first + index
            chunks.append(_HEADER.pack(_MAGIC, len(body), zlib.crc32(body), seq) + body)
            numbered.append(seq)
            if entry.key:
                self.keys.add(entry.key)
        self._handle.write(b"".join(chunks))
        self._handle.flush()
        if self.fsync:
            os.fdatasync(self._handle.fileno())
        with self._lock:
            for (_, body, _), seq in zip(batch, numbered, strict=True):
                self._sizes[seq] = len(body)
                self.pending_bytes += len(body)
            self.next_seq = first + len(batch)
            self._lock.notify_all()
        if self._handle.tell() >= self.segment_bytes:
            self._handle.close()
            self._handle = self.folder.joinpath(_segment_name(self.next_seq)).open("ab")
            self._sync_dir()
        return numbered

    # ------------------------------------------------------------------ reading
    def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait until entry ``seq`` is durable; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.next_seq <= seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def read(self, start: int, max_records: int, timeout: float) -> list[Entry]:
        """Entries from ``start`` on (durable ones only), up to about ``max_records`` records; waits up to
        ``timeout`` for the first one and for more while the batch is small, but never past ``timeout``
        after its first entry was received: entries that waited in the spool while the reader was busy
        (a batch ahead not yet taken) close the batch at once instead of waiting ``timeout`` more."""
        deadline = time.monotonic() + timeout
        if not self.wait_for(start, timeout):
            return []
        out: list[Entry] = []
        records = 0
        seq = start
        while records < max_records:
            with self._lock:
                durable = self.next_seq
            if seq >= durable:
                if time.monotonic() >= deadline or not self.wait_for(seq, deadline - time.monotonic()):
                    break
                continue
            got = self._read_range(seq, durable, max_records - records)
            if not got:
                break
            if not out:  # the batch's first entry: how long it has waited already
                waited = max(0.0, time.time() - got[0].received_ns / 1e9)
                deadline = min(deadline, time.monotonic() + timeout - waited)
            out.extend(got)
            records += sum(len(e.records) for e in got)
            seq = got[-1].seq + 1
        return out

    def _read_range(self, start: int, stop: int, max_records: int) -> list[Entry]:
        segments = self.segments()
        paths = [p for _, p in segments]
        cursor = self._cursor
        if cursor is not None and cursor[2] == start and cursor[0] in paths:
            # on from where the last read stopped, then every later segment: the entry ``start`` may
            # well be the first of the next segment (the last read ended on a segment's last entry)
            plan = [(cursor[0], cursor[1])] + [(p, 0) for p in paths[paths.index(cursor[0]) + 1:]]
        else:
            chosen = [p for first, p in segments if first <= start]
            plan = [(chosen[-1], 0)] if chosen else []
            plan += [(p, 0) for first, p in segments if first > start]
        out: list[Entry] = []
        records = 0
        for path, offset in plan:
            try:
                for seq, end, body in _scan(path, offset):
                    if seq < start:
                        continue
                    if seq >= stop or records >= max_records:
                        return out
                    entry = _decode(body, seq)
                    out.append(entry)
                    records += len(entry.records)
                    self._cursor = (path, end, seq + 1)
            except FileNotFoundError:  # pruned since listed: it held only stored entries
                continue
        return out

    def commit(self, upto: int) -> None:
        """Record that every entry before ``upto`` is stored (the pipeline calls this after its commit)."""
        with self._lock:
            for seq in [s for s in self._sizes if s < upto]:
                self.pending_bytes -= self._sizes.pop(seq)
            self.committed = max(self.committed, upto)

    def prune(self, now: float | None = None) -> int:
        """Delete segments fully committed and older than ``keep_seconds``; return how many went."""
        now = time.time() if now is None else now
        segments = self.segments()
        removed = 0
        for (_, path), (next_first, _) in itertools.pairwise(segments):
            if next_first <= self.committed and now - path.stat().st_mtime > self.keep_seconds:
                gone: list[str] = []
                http_keys: list[tuple[str, float]] = []  # a tailer's keys are not kept: its checkpoint is
                for _, _, body in _scan(path):
                    data = orjson.loads(body)
                    if key := data.get("k"):
                        gone.append(key)
                        if str(data.get("o", "")).startswith(HTTP_ORIGIN):
                            http_keys.append((key, int(data["t"]) / 1e9))
                self.ledger.remember(http_keys)  # durable before the segment goes
                self.keys.difference_update(gone)
                path.unlink()
                removed += 1
        return removed

    def seen(self, key: str) -> bool:
        """Whether an entry with this idempotency key was accepted: still in the spool, or (an HTTP key)
        in the ledger of pruned segments within its keep time."""
        return key in self.keys or key in self.ledger

    def close(self) -> None:
        """Stop the writer after the queued entries are written."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join()
        self._handle.close()
        self.ledger.close()
