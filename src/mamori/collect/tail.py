"""Follow files and folders: new lines of text logs, and whole EVTX files dropped in a folder.

Files are known by (device, inode), so a rotated file (renamed, a new one created) is read to its end
and the new one from its start; a truncated file (copytruncate) is read again from the start. Each
chunk goes to the spool with an idempotency key naming the file and byte range, and the checkpoint
(offset per file) is saved after the chunk is durable; after a crash the checkpoint may be a little
behind, and the keys make the re-read chunks no-ops. Only whole lines are taken.

Each file's lines are spooled for the reader ``mamori hunt`` would use on it: the one ``tail_source``
names, else the one ``sniff_source`` picks from the file's first bytes (``source:<name>`` entries, so a
replay picks it again). A Zeek TSV chunk carries the file's ``#`` header lines first (the reader needs
``#fields``; they never become events). A JSON document over many lines (an array, a pretty-printed
export) is read whole once its size is stable, as EVTX files are. A syslog file (sniffed so) and a
file no reader claims are spooled as before: JSON lines as ``json``, other lines as ``syslog``, whose
messages each go to the reader of the product they hold (a relay's file mixes devices), generic
syslog when none claims them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import polars as pl

from mamori.collect.records import WHOLE_FILE_SOURCES, has_record_reader, open_envelopes, record_sources
from mamori.collect.spool import Entry, Spool, source_format
from mamori.collect.syslog_listen import QUARANTINE
from mamori.errors import MamoriError
from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import iter_json_values
from mamori.sources.registry import sniff_source

log = logging.getLogger("mamori.collect.tail")
CHUNK_BYTES = 1 << 20
SKIP_SUFFIXES = (".tmp", ".part", ".swp", ".gz", ".zip")
EVTX_MAGIC = b"ElfFile\x00"
PREAMBLE_BYTES = 65536  # where a Zeek log's header lines, or a JSON document's first line, are looked for
DOCUMENT_RECORDS = 10_000  # records per spool entry of a JSON document read whole
_FALLBACK = ""  # a followed file's reader when no source claims it: json or syslog, line by line
# A file sniffed as syslog is a stream of messages like the listeners': each goes to the reader of the
# product it holds (generic syslog when none claims it), as ``syslog`` entries do. ``tail_source =
# "syslog"`` reads every line with the generic syslog reader.
ROUTED = "syslog"


@dataclass
class _Followed:
    path: Path
    offset: int
    head: bytes = b""  # first bytes when last read: a rewritten file (copytruncate) starts differently
    handle: BinaryIO | None = None
    source: str | None = None  # the reader of its lines (None: not chosen yet; "": none claims the file)
    preamble: tuple[str, ...] | None = None  # Zeek TSV: the header lines at the file's start
    document: bool | None = None  # a JSON document over many lines (pretty-printed): read whole
    last_record: int = 0  # EVTX: the highest EventRecordID spooled (a grown file gives only newer records)
    first_record: str = ""  # EVTX: its first record (id and time) when read: another one means another log
    modified_ns: int | None = None  # EVTX: its modification time when read (None: not known, older checkpoint)


def _first_record(frame: pl.DataFrame) -> str:
    """What tells an EVTX file's first record: its record id and time."""
    row = frame.row(0, named=True)
    return f"{row.get('EventRecordID')}|{row.get(schema.TIME)}"


def _identity(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}"


class Tailer:
    """Polls ``paths`` (files or folders) and spools what is new; checkpoints in ``checkpoint_file``."""

    def __init__(self, paths: list[Path], spool: Spool, checkpoint_file: Path, source: str | None = None,
                 max_line_bytes: int = 65536, interval: float = 0.5) -> None:
        self.paths = paths
        self.spool = spool
        self.checkpoint_file = checkpoint_file
        if source and not has_record_reader(source):
            raise MamoriError(f"tail_source {source!r} is not a source the live path can read",
                              hint=f"use one of: {', '.join(record_sources())}, or leave it empty to detect "
                                   "each file's source as `mamori hunt` does")
        self.source = source
        self.max_line_bytes = max_line_bytes
        self.interval = interval
        self.files: dict[str, _Followed] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending_sizes: dict[str, int] = {}  # EVTX: size seen at the previous poll (wait until stable)
        self._load()

    def _load(self) -> None:
        if self.checkpoint_file.exists():
            for key, item in orjson.loads(self.checkpoint_file.read_bytes()).items():
                head = bytes.fromhex(item.get("head", ""))
                self.files[key] = _Followed(Path(item["path"]), int(item["offset"]), head,
                                            last_record=int(item.get("last_record", 0)),
                                            first_record=str(item.get("first_record", "")),
                                            modified_ns=item.get("modified_ns"))

    def _save(self) -> None:
        data = {key: {"path": str(f.path), "offset": f.offset, "head": f.head.hex(), "last_record": f.last_record,
                      "first_record": f.first_record, "modified_ns": f.modified_ns} for key, f in self.files.items()}
        tmp = self.checkpoint_file.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            handle.write(orjson.dumps(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.checkpoint_file)

    def start(self) -> None:
        """Poll on a background thread."""
        self._thread = threading.Thread(target=self._run, name="tail", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and close the files."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # a bad file must not stop the tailer
                log.exception("tail poll failed")
            self._stop.wait(self.interval)

    def _candidates(self) -> list[Path]:
        out: list[Path] = []
        for root in self.paths:
            if root.is_dir():
                out += sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                              and not p.name.endswith(SKIP_SUFFIXES))
            elif root.is_file():
                out.append(root)
        return out

    def poll(self) -> int:
        """Read what is new in every followed file; return the records spooled."""
        spooled = 0
        current: list[tuple[Path, os.stat_result]] = []
        for path in self._candidates():
            try:
                current.append((path, path.stat()))
            except OSError:
                continue
        present = {_identity(stat) for _, stat in current}
        for key, followed in list(self.files.items()):
            if key not in present:  # rotated away or deleted: read what is left through the open handle
                if followed.handle is not None:
                    spooled += self._lines(key, followed)
                    followed.handle.close()
                del self.files[key]
        for path, stat in current:
            while self.spool.full and not self._stop.is_set():
                time.sleep(0.05)  # back-pressure: files wait on disk
            key = _identity(stat)
            known = self.files.get(key)
            followed = known if known is not None else _Followed(path, 0)
            self.files[key] = followed
            followed.path = path
            if path.suffix.lower() == ".evtx" or self._whole_file(followed):
                spooled += self._evtx(key, followed, stat)
                continue
            if self._is_document(followed):
                spooled += self._document(key, followed, stat.st_size)
                continue
            if stat.st_size < followed.offset or (followed.head and not self._same_head(followed)):
                followed.offset = 0  # truncated or rewritten in place: start again
                followed.head = b""
                followed.source = followed.preamble = followed.document = None  # it may hold another log now
            spooled += self._lines(key, followed)
        self._save()
        return spooled

    def _same_head(self, followed: _Followed) -> bool:
        try:
            with followed.path.open("rb") as handle:
                return handle.read(len(followed.head)) == followed.head
        except OSError:
            return True

    def close(self) -> None:
        """Close the open files (``stop`` does it for a started tailer)."""
        for followed in self.files.values():
            if followed.handle is not None:
                followed.handle.close()
                followed.handle = None

    def _lines(self, key: str, followed: _Followed) -> int:
        if followed.handle is None:
            try:
                followed.handle = followed.path.open("rb")
            except OSError:
                return 0
        handle = followed.handle
        total = 0
        while True:
            handle.seek(followed.offset)
            data = handle.read(CHUNK_BYTES)
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) > self.max_line_bytes:  # a line with no end in sight: quarantine it and skip
                    self._quarantine(followed, "line longer than the limit", data[:2048])
                    followed.offset += len(data)
                    continue
                return total
            chunk = data[:end + 1]
            lines: list[str] = []
            bad: list[str] = []
            for raw in chunk.split(b"\n"):
                raw = raw.rstrip(b"\r")
                if not raw.strip():
                    continue
                if len(raw) > self.max_line_bytes:
                    bad.append(f"line longer than the {self.max_line_bytes}-byte limit")
                    continue
                lines.append(raw.decode("utf-8", errors="replace"))
            start = followed.offset
            if lines:
                source = self._source_of(followed)
                if source in WHOLE_FILE_SOURCES:
                    return total  # the next poll reads it whole
                if source == ROUTED and not self.source:
                    fmt, records = "syslog", lines
                elif source:
                    fmt, records = source_format(source), self._records(followed, source, start, lines)
                else:
                    fmt, records = "json" if lines[0].lstrip().startswith("{") else "syslog", lines
                origin = f"file:{source or fmt}:{followed.path}@{start}"
                chunk_key = f"tail:{key}:{start}:{zlib.crc32(chunk):08x}"
                self._append(Entry(fmt, origin, tuple(records), time.time_ns(), chunk_key))
                total += len(lines)
            for reason in bad:
                self._quarantine(followed, reason, b"")
            followed.offset = start + len(chunk)
            if len(followed.head) < 64:
                handle.seek(0)
                followed.head = handle.read(min(64, followed.offset))

    def _whole_file(self, followed: _Followed) -> bool:
        """Whether a file is read whole (EVTX by its signature, whatever its name), not line by line."""
        if followed.source is None and not self.source:
            try:
                with followed.path.open("rb") as handle:
                    if handle.read(len(EVTX_MAGIC)) == EVTX_MAGIC:
                        followed.source = "evtx"
            except OSError:
                return False
        return followed.source in WHOLE_FILE_SOURCES

    def _is_document(self, followed: _Followed) -> bool:
        """Whether a file is one JSON document over many lines (an array or a pretty-printed object, as
        exported by consoles): its lines are not records, so it is read whole, as a hunt reads it."""
        if followed.document is None:
            try:
                with followed.path.open("rb") as handle:
                    head = handle.read(PREAMBLE_BYTES)
            except OSError:
                return False
            first = next((line for line in head.split(b"\n") if line.strip()), b"")
            if not first.lstrip(b"\xef\xbb\xbf \t\r").startswith((b"{", b"[")) or b"\n" not in head:
                followed.document = False if b"\n" in head else None  # no whole first line yet: ask again
                return False
            try:  # JSON Lines when the first line is one whole object (as ``sources.batch`` tells them)
                followed.document = not isinstance(orjson.loads(first), dict)
            except orjson.JSONDecodeError:
                followed.document = True
        return bool(followed.document)

    def _document(self, key: str, followed: _Followed, size: int) -> int:
        """Spool the records of a whole JSON document once its size is stable (as EVTX files), for the
        reader of its source (``{"Records": [...]}`` envelopes and arrays give one record per item)."""
        if followed.offset >= size and size > 0:
            return 0
        if self._pending_sizes.get(key) != size:  # still being written: wait for a stable size
            self._pending_sizes[key] = size
            return 0
        source = self._source_of(followed)
        fmt = source_format(source) if source and source not in WHOLE_FILE_SOURCES else "json"
        label = source or "json"
        records: list[str] = []
        total = part = 0

        def flush() -> None:
            nonlocal part
            self._append(Entry(fmt, f"file:{label}:{followed.path}#{part}", tuple(records), time.time_ns(),
                               f"json:{key}:{size}:{part}"))
            records.clear()
            part += 1

        for line, text, other in iter_json_values(followed.path, ReadOptions()):
            if text is None:
                reason, _, raw = other.partition("\x00")
                self._quarantine(followed, f"line {line}: {reason}", raw.encode()[:2048])
                continue
            records.append(text)
            total += 1
            if len(records) >= DOCUMENT_RECORDS:
                flush()
        if records:
            flush()
        followed.offset = size
        self._pending_sizes.pop(key, None)
        return total

    def _source_of(self, followed: _Followed) -> str:
        """The reader of a file's lines: ``tail_source`` when set, else what ``sniff_source`` says of
        the file (as ``mamori hunt`` chooses); ``""`` when no reader that takes lines claims it."""
        if self.source:
            return self.source
        if followed.source is None:
            spec = sniff_source(followed.path)
            name = spec.name if spec is not None else _FALLBACK
            followed.source = name if name in WHOLE_FILE_SOURCES or has_record_reader(name) else _FALLBACK
            log.info("tailing %s as %s", followed.path, followed.source or "json/syslog (no source claims it)")
        return followed.source

    def _records(self, followed: _Followed, source: str, start: int, lines: list[str]) -> list[str]:
        """A chunk's records for ``source``'s reader: JSON envelopes opened; a Zeek TSV chunk that does
        not start the file gets the file's header lines first (its reader needs ``#fields``)."""
        if source != "zeek":
            return open_envelopes(lines)
        if start == 0 or lines[0].startswith("#"):
            return lines
        if followed.preamble is None and followed.handle is not None:
            followed.handle.seek(0)  # the open file: after a rotation its path names the new one
            followed.preamble = self._preamble(followed.handle.read(PREAMBLE_BYTES))
        return [*(followed.preamble or ()), *lines]

    @staticmethod
    def _preamble(head: bytes) -> tuple[str, ...]:
        """The ``#`` lines a file's first bytes start with (a Zeek TSV log's header); none for others."""
        found: list[str] = []
        for raw in head.split(b"\n")[:-1]:  # whole lines only
            if not raw.startswith(b"#"):
                break
            found.append(raw.rstrip(b"\r").decode("utf-8", errors="replace"))
        return tuple(found)

    def _evtx(self, key: str, followed: _Followed, stat: os.stat_result) -> int:
        """Spool a whole-file log (EVTX) once its size is stable, again when it changes: a grown file gives
        its newer records, one rewritten with another log (of any size) all of them."""
        size = stat.st_size
        if followed.offset == size and size > 0 and followed.modified_ns in (None, stat.st_mtime_ns):
            return 0
        if self._pending_sizes.get(key) != size:  # still being written: wait for a stable size
            self._pending_sizes[key] = size
            return 0
        from mamori.sources.evtx import read_evtx

        done = highest = 0
        first = followed.first_record
        total = 0
        for part, result in enumerate(read_evtx(followed.path)):
            frame = result.frame
            if part == 0 and frame.height:
                first = _first_record(frame)
                # the same first record: the file grew (copied while written), take its newer records;
                # another one: a log cleared or replaced in place, read it all
                done = highest = followed.last_record if first == followed.first_record else 0
            if "EventRecordID" in frame.columns:
                ids = frame.get_column("EventRecordID").cast(pl.Int64, strict=False)
                if done:
                    frame = frame.filter(ids.fill_null(0) > done)
                highest = max(highest, int(ids.max() or 0))  # type: ignore[arg-type]
            rows = frame.drop([c for c in frame.columns if c.startswith("_")]).to_dicts()
            records = [orjson.dumps({k: v for k, v in row.items() if v is not None}).decode() for row in rows]
            if records:
                self._append(Entry("json", f"file:evtx:{followed.path}#{part}", tuple(records), time.time_ns(),
                                   f"evtx:{key}:{size}:{stat.st_mtime_ns}:{done}:{part}"))
                total += len(records)
            for problem in result.problems:
                self._quarantine(followed, f"{problem.where}: {problem.reason}", problem.raw.encode()[:2048])
        followed.offset = size
        followed.last_record, followed.first_record = highest, first  # once every record up to it is spooled
        followed.modified_ns = stat.st_mtime_ns
        self._pending_sizes.pop(key, None)
        return total

    def _append(self, entry: Entry) -> None:
        """Spool a chunk unless its key shows it was spooled before a crash (then it is a no-op)."""
        if entry.key is None or entry.key not in self.spool.keys:
            self.spool.append_wait(entry)

    def _quarantine(self, followed: _Followed, reason: str, raw: bytes) -> None:
        record: dict[str, Any] = {"where": str(followed.path), "reason": reason,
                                  "raw": raw.decode("utf-8", errors="backslashreplace")}
        self.spool.append_wait(Entry(QUARANTINE, f"file:{followed.path}", (orjson.dumps(record).decode(),),
                                     time.time_ns()))
