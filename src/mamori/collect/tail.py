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

Lines are cut and decoded in each file's encoding (``tail_encoding``, ``collect.encodings``): UTF-16's
two-byte line breaks included, so offsets stay byte offsets between lines. A line whose bytes are not
valid in it is stored with U+FFFD in place of the bad bytes, and a copy of its raw bytes quarantined
naming the file, line and byte offset (counted in ``undecodable``).

When a followed file's content goes away before it was read to its end (rotated while the service was
stopped, or copied and truncated), the rest is read from the rotated copy beside it: the same inode
under another name, or a copy (plain, gzip, bzip2 or xz, as logrotate leaves them) whose first bytes
and the bytes just before the checkpoint's offset are the ones read. Chunk keys name the file, the byte
range and its CRC, and the ranges spooled before a restart are skipped when read again (also when the
next read reaches further than the first did), so each line is spooled once.

A copy of a followed file that appears in a tailed folder (``copytruncate``'s or ``cp``'s ``app.log.1``)
holds lines already read. A new file whose first bytes are a followed file's and which holds, before
that file's offset, the bytes read last (or, when shorter, the bytes that file holds at the same place)
is taken for its copy: it is not read, only moved along to the point its original has read, and kept so
in the checkpoint (``copy_of``), so neither a later poll nor a restart reads it again. What lies past
that point is the original's to read: from the original itself, or from the copy by the recovery above
when the original was truncated (the copy then goes on from where that read ended). A file that holds
other bytes there is another log starting with the same header and is read in full, also when it first
looked like a copy and then parts from its original.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import io
import logging
import lzma
import os
import stat as stat_kind
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson
import polars as pl

from mamori.collect.encodings import DEFAULT_ENCODING, Framing, TailEncodings, framing, parse_tail_encodings
from mamori.collect.records import WHOLE_FILE_SOURCES, has_record_reader, open_envelopes, record_sources
from mamori.collect.spool import Entry, Spool, source_format
from mamori.collect.syslog_listen import QUARANTINE
from mamori.errors import MamoriError
from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import iter_json_values
from mamori.sources.evtx_repair import FILE_MAGIC
from mamori.sources.registry import sniff_head, sniff_source

log = logging.getLogger("mamori.collect.tail")
CHUNK_BYTES = 1 << 20
SKIP_SUFFIXES = (".tmp", ".part", ".swp", ".gz", ".zip", ".bz2", ".xz", ".zst")
PREAMBLE_BYTES = 65536  # where a Zeek log's header lines, or a JSON document's first line, are looked for
DOCUMENT_RECORDS = 10_000  # records per spool entry of a JSON document read whole
HEAD_BYTES = 64  # a file's first bytes kept in the checkpoint: a rewritten file starts differently
MARK_BYTES = 32  # the bytes just before the checkpoint's offset: a rotated copy holding them is the file
QUARANTINE_RAW = 2048  # raw bytes kept of a quarantined line
_UNTOLD = (0, b"")  # ``Tailer._copied_up_to``: whether a file is a copy cannot be told at this poll
_COPY_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)  # a damaged or half-written compressed copy
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
    mark: bytes = b""  # the last bytes before ``offset``: a rotated copy holding them there is this file
    line: int | None = 0  # whole lines before ``offset`` (None: not known, older checkpoint)
    frame: Framing | None = None  # how its lines are cut and decoded (from its encoding and first bytes)
    plain: bool = True  # its handle reads the file itself (not a compressed rotated copy)
    copy_of: str | None = None  # the followed file this one is a copy of: bytes before ``offset`` read there


def _first_record(frame: pl.DataFrame) -> str:
    """What tells an EVTX file's first record: its record id and time."""
    row = frame.row(0, named=True)
    return f"{row.get('EventRecordID')}|{row.get(schema.TIME)}"


def _identity(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}"


def _open_copy(path: Path) -> BinaryIO:
    """Open a rotated copy for reading its text: through gzip, bzip2 or xz when its first bytes say it
    is compressed (as logrotate's ``compress`` leaves it), else as it is."""
    handle = path.open("rb")
    magic = handle.read(6)
    handle.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(handle, "rb")  # type: ignore[return-value]
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(handle, "rb")  # type: ignore[return-value]
    return handle


def _open_as(path: Path, key: str) -> BinaryIO | None:
    """A file opened by name when the name still names the file ``key`` (device and inode) listed: a
    rotation may have given the name to another file since; None then, or when it cannot be opened."""
    try:
        handle = path.open("rb")
    except OSError:
        return None
    if _identity(os.fstat(handle.fileno())) != key:
        handle.close()
        return None
    return handle


class Tailer:
    """Polls ``paths`` (files or folders) and spools what is new; checkpoints in ``checkpoint_file``."""

    def __init__(self, paths: list[Path], spool: Spool, checkpoint_file: Path, source: str | None = None,
                 max_line_bytes: int = 65536, interval: float = 0.5,
                 encoding: str | TailEncodings = DEFAULT_ENCODING) -> None:
        self.paths = paths
        # the ``tail_encoding`` setting: checked here too (the service checks it at start), naming the entry
        self.encodings = parse_tail_encodings(encoding, paths) if isinstance(encoding, str) else encoding
        self.undecodable = 0  # lines whose bytes were not valid in their file's encoding (stored with U+FFFD)
        self.recovered = 0  # lines read from rotated copies (renamed or compressed before they were read)
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
        self._done = self._spooled_ranges()
        self._polled = False  # a first poll saves the checkpoint once, at its end
        self._load()

    def _spooled_ranges(self) -> dict[str, dict[int, list[tuple[int, int]]]]:
        """The byte ranges the spool holds per followed file (file key -> start -> [(end, CRC)]), from the
        keys of chunks spooled before a restart: a chunk read again from the same start is skipped when
        its first bytes are those (the checkpoint may be behind, and the file may have grown since). A
        start may have several: a file truncated in place (``copytruncate``) keeps its key."""
        done: dict[str, dict[int, list[tuple[int, int]]]] = {}
        for key in self.spool.keys.copy():
            if not key.startswith("tail:"):
                continue
            parts = key.rsplit(":", 3)
            try:
                start, end, crc = int(parts[1]), int(parts[2]), int(parts[3], 16)
            except (IndexError, ValueError):
                continue  # an older key (no end): the exact-key check still makes its chunk a no-op
            done.setdefault(parts[0][len("tail:"):], {}).setdefault(start, []).append((end, crc))
        return done

    def _load(self) -> None:
        if self.checkpoint_file.exists():
            for key, item in orjson.loads(self.checkpoint_file.read_bytes()).items():
                head = bytes.fromhex(item.get("head", ""))
                line = item.get("line")
                self.files[key] = _Followed(Path(item["path"]), int(item["offset"]), head,
                                            last_record=int(item.get("last_record", 0)),
                                            first_record=str(item.get("first_record", "")),
                                            modified_ns=item.get("modified_ns"),
                                            mark=bytes.fromhex(item.get("mark", "")),
                                            line=int(line) if line is not None else None,
                                            copy_of=item.get("copy_of"))

    def _save(self) -> None:
        data = {key: {"path": str(f.path), "offset": f.offset, "head": f.head.hex(), "last_record": f.last_record,
                      "first_record": f.first_record, "modified_ns": f.modified_ns, "mark": f.mark.hex(),
                      "line": f.line, "copy_of": f.copy_of} for key, f in self.files.items()}
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
        tailed = {path: _identity(stat) for path, stat in current}
        present = set(tailed.values())
        for key, followed in list(self.files.items()):
            if key not in present:  # rotated away or deleted: read what is left through the open handle
                if followed.copy_of is not None:
                    pass  # a copy taken for another file's: what it held is that file's to read
                elif followed.handle is not None:
                    spooled += self._lines(key, followed)
                    self._release_copies(key, followed, live=True)
                else:  # gone while the service was stopped: from its rotated copy, if one is left
                    spooled += self._recover(key, followed, tailed)
                if followed.handle is not None:
                    followed.handle.close()
                del self.files[key]
        # the files read before first, then new files and copies: a new file is told for a copy by what
        # its original holds once that is read (or found truncated, its rest read from the copy)
        originals = {key for key, followed in self.files.items() if followed.copy_of is None}
        current.sort(key=lambda item: _identity(item[1]) not in originals)
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
            # a file nothing was read from yet (new, or empty when first seen: a copy being written)
            if (not followed.head or followed.copy_of is not None) and \
                    self._is_copy(key, followed, stat.st_size, originals):
                if followed.copy_of is None:  # not told yet (as little as its original's first line)
                    if followed.handle is not None:
                        followed.handle.close()
                    del self.files[key]
                continue
            if stat.st_size < followed.offset or (followed.head and not self._same_head(key, followed)):
                # truncated (copytruncate: the rest may be in the copy) or another file now: start again
                spooled += self._recover(key, followed, tailed)
                self._start_again(followed)
                self._done.pop(key, None)
            spooled += self._lines(key, followed)
            if known is None and followed.offset and self._polled:
                self._save()  # a file new since the last poll (a rotation's): known before it can rotate away
        self._save()
        self._polled = True
        return spooled

    def _same_head(self, key: str, followed: _Followed) -> bool:
        """Whether a file still starts with the first bytes read: read through its open handle, or by its
        name when that still names it (renamed since it was listed: it is looked at again next poll)."""
        if isinstance(followed.handle, io.BufferedReader):
            return self._read_at(followed.path, followed.handle, 0, len(followed.head)) == followed.head
        handle = _open_as(followed.path, key)
        if handle is None:
            return True
        with handle:
            return handle.read(len(followed.head)) == followed.head

    def close(self) -> None:
        """Close the open files (``stop`` does it for a started tailer)."""
        for followed in self.files.values():
            if followed.handle is not None:
                followed.handle.close()
                followed.handle = None

    def _frame(self, followed: _Followed, handle: BinaryIO) -> Framing | None:
        """How a file's lines are cut and decoded: its configured encoding and its first bytes (a
        byte-order mark); None while too few bytes are written to tell."""
        if followed.frame is None:
            head = followed.head
            if len(head) < 4:
                handle.seek(0)
                head = handle.read(4)
            if len(head) < 4 and b"\n" not in head:
                return None
            followed.frame = framing(self.encodings.of(followed.path), head)
        return followed.frame

    def _lines(self, key: str, followed: _Followed, final: bool = False, where: str | None = None) -> int:
        """Spool the whole lines of a file from its offset on (``final``: a rotated copy, whose last line
        needs no break); return the lines spooled. ``where`` names the copy read, for quarantine entries."""
        if followed.handle is None:
            try:
                followed.handle = followed.path.open("rb")
            except OSError:
                return 0
        handle = followed.handle
        frame = self._frame(followed, handle)
        if frame is None:
            return 0
        followed.offset = max(followed.offset, frame.bom)
        if (misaligned := (followed.offset - frame.bom) % frame.unit):  # an offset of another encoding's lines
            followed.offset += frame.unit - misaligned
        handle.seek(followed.offset)
        total = 0
        data = b""
        while True:
            more = handle.read(CHUNK_BYTES)
            data = data + more if data else more
            start = followed.offset
            spooled = self._done.get(key, {}).get(start)
            if spooled:
                if more and any(len(data) < end - start for end, _ in spooled):
                    continue  # a chunk spooled before a restart reached further than this read
                length = max((end - start for end, crc in spooled
                              if len(data) >= end - start and zlib.crc32(data[:end - start]) == crc), default=0)
                if length:
                    self._advance(followed, data[:length], len(frame.breaks(data[:length])))
                    data = data[length:]
                    continue
            size = frame.whole_lines(data)
            if final and not more and size < len(data):
                size = len(data)  # a rotated copy's last line: nothing will be added to it
            if size == 0:
                if len(data) > self.max_line_bytes:  # a line with no end in sight: quarantine it and skip
                    skip = len(data) - len(data) % frame.unit
                    chunk = data[:skip]
                    self._quarantine_lines(followed, [(f"byte {start}: line longer than the limit",
                                                       chunk[:QUARANTINE_RAW])],
                                           f"tail:{key}:{start}:{start + skip}:{zlib.crc32(chunk):08x}", where)
                    self._advance(followed, chunk, 0)
                    data = data[skip:]
                    continue
                if not more:
                    return total
                continue
            chunk = data[:size]
            whole = chunk if frame.whole_lines(chunk) == len(chunk) else chunk + frame.newline
            bad: list[tuple[str, bytes]] = []
            texts = frame.decode_lines(whole)
            # at most 4 bytes a character: no line of the chunk is longer than the limit
            if texts is not None and max(map(len, texts), default=0) * 4 <= self.max_line_bytes:
                count = len(texts)
            else:
                texts = self._decode_one_by_one(followed, frame, start, whole, bad)
                count = len(texts)
            lines = [text for text in texts if text and not text.isspace()]
            if lines:
                source = self._source_of(followed)
                if source in WHOLE_FILE_SOURCES:
                    return total  # the next poll reads it whole
            done_key = f"tail:{key}:{start}:{start + size}:{zlib.crc32(chunk):08x}"
            if bad:  # first: the chunk's last entry (its key) says the whole chunk is spooled
                self._quarantine_lines(followed, bad, "tailq" + done_key[4:] if lines else done_key, where)
            if lines:
                if source == ROUTED and not self.source:
                    fmt, records = "syslog", lines
                elif source:
                    fmt, records = source_format(source), self._records(followed, source, start, lines)
                else:
                    fmt, records = "json" if lines[0].lstrip().startswith("{") else "syslog", lines
                origin = f"file:{source or fmt}:{followed.path}@{start}"
                self._append(Entry(fmt, origin, tuple(records), time.time_ns(), done_key))
                total += len(lines)
            self._advance(followed, chunk, count)
            data = data[size:]

    def _decode_one_by_one(self, followed: _Followed, frame: Framing, start: int, chunk: bytes,
                           bad: list[tuple[str, bytes]]) -> list[str]:
        """A chunk's lines decoded one at a time (some line is not valid in the file's encoding, or may be
        longer than the limit): a bad line is kept with U+FFFD for its bad bytes, and added to ``bad`` with
        its place (line number and byte offset) and raw bytes; a line longer than the limit is only added
        to ``bad`` (an empty line in its place keeps the count)."""
        texts: list[str] = []
        for index, (at, raw) in enumerate(frame.split(chunk)):
            place = f"byte {start + at}" if followed.line is None else \
                f"line {followed.line + index + 1} (byte {start + at})"
            if len(raw) > self.max_line_bytes:
                bad.append((f"{place}: line longer than the {self.max_line_bytes}-byte limit", raw[:QUARANTINE_RAW]))
                texts.append("")
                continue
            text, error = frame.decode(raw)
            if error is not None:
                self.undecodable += 1
                codec = "UTF-8 or CP932" if frame.codec == "auto" else frame.codec
                bad.append((f"{place}: not valid {codec} ({error.reason} at byte {start + at + error.start}); "
                            "stored with U+FFFD in place of the bad bytes; if the file is written in another "
                            "encoding, name it in tail_encoding", raw[:QUARANTINE_RAW]))
            texts.append(text)
        return texts

    def _advance(self, followed: _Followed, chunk: bytes, lines: int) -> None:
        """Move past a chunk that is spooled: offset, line count, the bytes before the offset, and the
        file's first bytes (read without moving its handle)."""
        followed.offset += len(chunk)
        followed.mark = (chunk if len(chunk) >= MARK_BYTES else followed.mark + chunk)[-MARK_BYTES:]
        if followed.line is not None:
            followed.line += lines
        if len(followed.head) < HEAD_BYTES and followed.plain and isinstance(followed.handle, io.BufferedReader):
            followed.head = os.pread(followed.handle.fileno(), min(HEAD_BYTES, followed.offset), 0)

    def _recover(self, key: str, followed: _Followed, tailed: dict[Path, str]) -> int:
        """Spool the rest of a file whose content went away before it was read to its end (rotated while
        the service was stopped, copied and truncated), from its rotated copy beside it; return the lines.
        Nothing is read when no copy is left (logged when lines may have been lost). A plain copy the
        tailer follows (a tailed folder's ``app.log.1``) goes on from where this read ended, and the
        copies taken for the file's go along with it (or are let go: the file's content is gone)."""
        read, into = self._read_rest(key, followed, tailed)
        self._release_copies(key, followed, live=False, into=into)
        return read

    def _read_rest(self, key: str, followed: _Followed, tailed: dict[Path, str]) -> tuple[int, str | None]:
        """``_recover``'s read: the lines spooled, and the key of the followed copy they were read from."""
        if not followed.head:
            return 0, None  # never read (or not a line file): nothing tells its copy
        found = self._rotated_copy(key, followed, tailed)
        if found is None:
            log.warning("%s was rotated or truncated at byte %d and no rotated copy of it is left beside it; "
                        "lines written after that byte and before the rotation are not read",
                        followed.path, followed.offset)
            return 0, None
        copy, handle = found
        reader = dataclasses.replace(followed, handle=handle, plain=handle.__class__ is io.BufferedReader)
        where = f"{copy} (rotated {followed.path.name})"
        log.info("reading the rest of %s from byte %d in its rotated copy %s", followed.path, followed.offset, copy)
        read = 0
        try:
            read = self._lines(key, reader, final=not reader.plain, where=where)
        except _COPY_ERRORS as exc:  # a damaged copy: what was read before is spooled
            log.warning("%s: stopped reading after byte %d: %s", copy, reader.offset, exc)
        finally:
            handle.close()
        self.recovered += read
        into = tailed.get(copy)
        if into is None or into == key or not reader.plain:
            return read, None  # not in a tailed folder, or compressed (not tailed): nothing more to keep
        # a copy in a tailed folder: followed on from where this read ended, never from its start
        kept = self.files.get(into)
        try:
            size = copy.stat().st_size
        except OSError:
            size = reader.offset
        if kept is not None and not self._describes(kept, copy, size):
            # a file followed before under the copy's inode number, rotated away while the service was
            # stopped: its rest from its own rotated copy, then the entry is the copy's
            if kept.copy_of is None:
                read += self._recover(into, kept, tailed)
            kept = None
        if kept is None:
            kept = self.files[into] = _Followed(copy, 0)
        kept.copy_of = None
        if reader.offset > kept.offset:
            kept.offset, kept.mark, kept.line = reader.offset, reader.mark, reader.line
            kept.head = self._head(copy)
        return read, into

    def _rotated_copy(self, key: str, followed: _Followed, tailed: dict[Path, str]) -> tuple[Path, BinaryIO] | None:
        """A file's rotated copy in its folder (``app.log.1``, ``app.log-20250101.gz``, ``app-20250101.log.xz``),
        open: one whose first bytes and the bytes before the offset are the ones read (the same inode under
        another name is tried first, then the files taken for its copies, then the newest). Files the
        tailer follows as logs of their own are not copies; a tailed file not followed yet may be."""
        base, stem = followed.path.name, followed.path.stem
        copies: list[tuple[int, Path, os.stat_result]] = []
        try:
            entries = list(followed.path.parent.iterdir())
        except OSError:
            return None
        for path in entries:
            name = path.name
            if name == base:
                continue
            if not ((name.startswith(base) and name[len(base):len(base) + 1] in (".", "-", "_")) or
                    (stem != base and name.startswith(stem) and name[len(stem):len(stem) + 1] in (".", "-", "_"))):
                continue
            try:
                info = path.stat()
            except OSError:
                continue
            if self._own_log(tailed.get(path), key, path, info.st_size):
                continue
            if stat_kind.S_ISREG(info.st_mode):
                copies.append((info.st_mtime_ns, path, info))
        # the same inode first (a rename), then the newest; an inode number may have been reused, so each
        # is checked against the bytes read
        copies.sort(key=lambda item: (_identity(item[2]) == key, self._copy_key(_identity(item[2])) == key, item[0]),
                    reverse=True)
        for _, path, _ in copies:
            try:
                handle = _open_copy(path)
            except OSError:
                continue
            try:
                if self._holds(followed, handle):
                    return path, handle
            except _COPY_ERRORS:
                pass
            handle.close()
        return None

    @staticmethod
    def _holds(followed: _Followed, handle: BinaryIO) -> bool:
        """Whether an open copy is the followed file: it starts with the file's first bytes and holds the
        bytes read last just before the offset (a copy shorter than the offset is another file)."""
        if handle.read(len(followed.head)) != followed.head:
            return False
        width = len(followed.mark) or 1
        handle.seek(max(followed.offset - width, 0))
        found = handle.read(width)
        return len(found) == width and (not followed.mark or found == followed.mark)

    def _own_log(self, identity: str | None, key: str, path: Path, size: int) -> bool:
        """Whether a tailed file is followed as a log of its own (not a copy taken for file ``key``'s, nor
        a new file given the inode number of one followed before)."""
        followed = self.files.get(identity) if identity is not None else None
        return followed is not None and followed.copy_of != key and self._describes(followed, path, size)

    def _describes(self, followed: _Followed, path: Path, size: int) -> bool:
        """Whether a followed file's checkpoint fits the file now at ``path`` (``size`` bytes): as long as
        what was read and starting with the same bytes. A file removed while the service was stopped
        may have left its inode number to a new one."""
        return size >= followed.offset and self._head(path).startswith(followed.head)

    def _copy_key(self, identity: str) -> str | None:
        """The file a followed file was taken for a copy of (None: a log of its own, or not followed)."""
        followed = self.files.get(identity)
        return followed.copy_of if followed is not None else None

    def _is_copy(self, key: str, followed: _Followed, size: int, originals: set[str]) -> bool:
        """Whether a file new in a tailed folder, or taken for a copy before, is a copy of a followed
        file (``copytruncate``'s or ``cp``'s ``app.log.1``) whose bytes that file reads or has read: then
        it is not read, only moved to the point its original has read (kept in the checkpoint, so a
        restart does not read it either). One holding other bytes there (another log with the same
        header) is read in full; one holding no more than the original's first line tells nothing yet
        and is left for the next poll (returns True, not taken: ``copy_of`` stays None)."""
        if followed.copy_of is None and (size == 0 or not originals):
            return False  # empty, or nothing read before this poll: nothing to tell (read from its start)
        original = self.files.get(followed.copy_of) if followed.copy_of is not None else None
        if followed.copy_of is not None and original is None:  # its original is gone: read what may follow
            followed.copy_of = None
            return False
        handle = _open_as(followed.path, key)
        if handle is None:  # renamed since it was listed (or unreadable): looked at again next poll
            return True
        with handle:
            if original is not None:
                found = self._copied_up_to(handle, size, original) if size >= followed.offset else None
                if found == _UNTOLD:
                    return True
                if found is not None:
                    self._move_copy(followed, *found)
                    return True
                # it parted from its original (another log that started the same way), or a new file was
                # given its inode number: told again as a new file
                log.info("%s is no copy of %s: reading it as a file of its own", followed.path, original.path)
                self._start_again(followed)
            handle.seek(0)
            head = handle.read(HEAD_BYTES)
            for other, original in list(self.files.items()):
                if other not in originals or other == key or not self._line_file(original):
                    continue
                common = min(len(head), len(original.head))
                if not common or head[:common] != original.head[:common]:
                    continue
                found = self._copied_up_to(handle, size, original)
                if found is None:
                    continue
                if found == _UNTOLD:  # its original was truncated meanwhile: the next poll tells it
                    return True
                if found[0] < original.offset and not self._past_first_line(handle, followed.path, original):
                    return True  # the same first line alone (a CSV header): another log may go on differently
                log.info("%s is a copy of %s: its %d bytes read there are not read again", followed.path,
                         original.path, found[0])
                followed.copy_of, followed.head, followed.line = other, head, None
                self._move_copy(followed, *found)
                return True
        return False

    @staticmethod
    def _line_file(followed: _Followed) -> bool:
        """Whether a followed file is read line by line (not whole: EVTX, a JSON document) and was read."""
        return bool(followed.head) and followed.offset > 0 and followed.plain and \
            followed.source not in WHOLE_FILE_SOURCES and not followed.document

    def _copied_up_to(self, handle: BinaryIO, size: int, original: _Followed) -> tuple[int, bytes] | None:
        """How far an open file (``size`` bytes) holds what ``original`` has read, with the bytes just before
        that point: up to the original's offset when it holds the bytes read last just before it (as a
        rotated copy is told); when shorter, to its end when its last bytes are the ones the original
        holds at the same place (a copy made while the original was being read, or still being written).
        None when it holds other bytes: another file; ``_UNTOLD`` when that cannot be told now."""
        point = min(size, original.offset)
        if point <= 0:
            return None
        if point == original.offset:
            expected = original.mark
            if not expected:  # an older checkpoint keeps no bytes before its offset: nothing tells a copy
                return None
        else:
            expected = self._read_at(original.path, original.handle, point - MARK_BYTES, MARK_BYTES)
            if len(expected) < min(point, MARK_BYTES):
                return _UNTOLD  # the original was truncated since it was read: not told now
        handle.seek(point - len(expected))
        found = handle.read(len(expected))
        return (point, found) if found == expected else None

    @staticmethod
    def _read_at(path: Path, handle: BinaryIO | None, at: int, length: int) -> bytes:
        """A file's ``length`` bytes from ``at`` (fewer before its start), through its open handle when
        it has one (a renamed file's path names another), without moving it; empty when unreadable."""
        if at < 0:
            length, at = length + at, 0
        if length <= 0:
            return b""
        try:
            if isinstance(handle, io.BufferedReader):
                return os.pread(handle.fileno(), length, at)
            with path.open("rb") as opened:
                opened.seek(at)
                return opened.read(length)
        except OSError:
            return b""

    def _past_first_line(self, handle: BinaryIO, path: Path, original: _Followed) -> bool:
        """Whether an open file holds more than one line (or more than the first bytes looked at): a file
        holding only the first line of another (the same header) is not told for its copy."""
        handle.seek(0)
        data = handle.read(PREAMBLE_BYTES)
        frame = original.frame or framing(self.encodings.of(path), data)
        body = data[frame.bom:]
        return len(data) >= PREAMBLE_BYTES or len(frame.breaks(body[:len(body) - len(body) % frame.unit])) > 1

    @staticmethod
    def _move_copy(followed: _Followed, point: int, mark: bytes) -> None:
        """Move a copy to the point its original has read (never back)."""
        if point > followed.offset:
            followed.offset, followed.mark = point, mark

    def _start_again(self, followed: _Followed) -> None:
        """Read a file from its start again, as another file (truncated, rewritten, or not a copy)."""
        followed.offset = 0
        followed.head = followed.mark = b""
        followed.line = 0
        followed.frame = None
        followed.copy_of = None
        followed.source = followed.preamble = followed.document = None  # it may hold another log now

    def _release_copies(self, key: str, original: _Followed, live: bool, into: str | None = None) -> None:
        """Let go of the files taken for copies of ``key``, whose content goes away (rotated away with
        its handle still open: ``live``; truncated or gone: not): each is moved to the point the
        original read and read on its own from there (one that holds other bytes from its start), or,
        when the original's rest was read from a followed copy (``into``), stays a copy of that one."""
        for other_key, other in self.files.items():
            if other.copy_of != key:
                continue
            if into is not None and other_key != into:
                other.copy_of = into
                continue
            other.copy_of = None
            handle = _open_as(other.path, other_key)
            if handle is None:  # renamed or gone: followed on from where it is
                continue
            with handle:
                size = os.fstat(handle.fileno()).st_size
                if not live and size < original.offset:
                    continue  # read up to where it held the original's bytes; the original's rest is gone
                found = self._copied_up_to(handle, size, original)
            if found == _UNTOLD:
                continue
            if found is None:
                self._start_again(other)
            else:
                self._move_copy(other, *found)

    def _whole_file(self, followed: _Followed) -> bool:
        """Whether a file is read whole (EVTX by its signature, whatever its name), not line by line."""
        if followed.source is None and not self.source:
            try:
                with followed.path.open("rb") as handle:
                    if handle.read(len(FILE_MAGIC)) == FILE_MAGIC:
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
            frame = framing(self.encodings.of(followed.path), head)
            if frame.unit > 1:  # UTF-16/32: judged on the text
                head = head[frame.bom:len(head) - (len(head) - frame.bom) % frame.unit]
                head = head.decode(frame.codec, errors="replace").encode()
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

        frame = framing(self.encodings.of(followed.path), followed.head or self._head(followed.path))
        encoding = None if frame.codec in ("auto", "utf-8") else frame.codec  # None: detect UTF-8 / CP932
        for line, text, other in iter_json_values(followed.path, ReadOptions(encoding=encoding)):
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

    @staticmethod
    def _head(path: Path) -> bytes:
        """A file's first bytes (empty when it cannot be read)."""
        try:
            with path.open("rb") as handle:
                return handle.read(HEAD_BYTES)
        except OSError:
            return b""

    def _source_of(self, followed: _Followed) -> str:
        """The reader of a file's lines: ``tail_source`` when set, else what ``sniff_source`` says of
        the file (as ``mamori hunt`` chooses); ``""`` when no reader that takes lines claims it."""
        if self.source:
            return self.source
        if followed.source is None:
            frame = followed.frame
            if frame is not None and frame.unit > 1:  # UTF-16/32: the sniffers read the text as UTF-8
                try:
                    with followed.path.open("rb") as handle:
                        head = handle.read(PREAMBLE_BYTES)[frame.bom:]
                except OSError:
                    head = b""
                spec = sniff_head(head.decode(frame.codec, errors="replace").encode(), followed.path.name)
            else:
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
            back = followed.handle.tell()
            followed.handle.seek(0)  # the open file: after a rotation its path names the new one
            followed.preamble = self._preamble(followed.handle.read(PREAMBLE_BYTES), followed.frame)
            followed.handle.seek(back)
        return [*(followed.preamble or ()), *lines]

    @staticmethod
    def _preamble(head: bytes, frame: Framing | None = None) -> tuple[str, ...]:
        """The ``#`` lines a file's first bytes start with (a Zeek TSV log's header); none for others."""
        frame = frame or framing("utf-8", head)
        found: list[str] = []
        for _, raw in frame.split(head[frame.bom:]):  # whole lines only
            text = frame.decode(raw)[0]
            if not text.startswith("#"):
                break
            found.append(text)
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
        """Set aside one thing of a file that cannot be read, with the reason (not keyed: whole-file reads)."""
        self._quarantine_lines(followed, [(reason, raw)], None)

    def _quarantine_lines(self, followed: _Followed, items: list[tuple[str, bytes]], key: str | None,
                          where: str | None = None) -> None:
        """Set aside a chunk's bad lines in one keyed spool entry: each names the file (``where``: the
        rotated copy read) and the reason, with its raw bytes in the file's encoding (bad bytes escaped)."""
        codec = followed.frame.codec if followed.frame is not None and followed.frame.codec != "auto" else "utf-8"
        place = where or str(followed.path)
        records = tuple(orjson.dumps({"where": place, "reason": reason,
                                      "raw": raw.decode(codec, errors="backslashreplace")}).decode()
                        for reason, raw in items)
        self._append(Entry(QUARANTINE, f"file:{place}", records, time.time_ns(), key))
