"""Damaged ``.evtx`` files: which chunks lost records, and chunks rebuilt in memory holding only their
complete records, so the parser reads everything that is still readable.

An EVTX file is a 4 KB file header then 64 KB chunks. A chunk is a 512-byte header (the range of record
ids it holds, where its free space starts, CRCs) then records, each ``**\\0\\0``, its size, its id, a
time, its body, and its size again. The ``evtx`` parser silently drops a partial last chunk and stops a
chunk at the first record whose header is broken; a rebuilt chunk is a well-formed one that holds the
complete records, with a filler record bridging each damaged stretch.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

FILE_HEADER = 4096
CHUNK_SIZE = 65536
CHUNK_HEADER = 512
FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
RECORD_HEADER = 24
RECORD_MIN = RECORD_HEADER + 4
MAX_RECORDS = (CHUNK_SIZE - CHUNK_HEADER) // RECORD_MIN
FILLER_ID = 0  # id of the filler records bridging damaged stretches (real ids start at 1)


def _u32(data: bytes | bytearray, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 4], "little")


def _u64(data: bytes | bytearray, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 8], "little")


@dataclass(frozen=True)
class ChunkInfo:
    """One chunk as its header describes it: where it is, how many bytes of it the file holds, and the
    record ids it should hold (None when the header is missing or not believable)."""

    index: int
    offset: int
    length: int
    signed: bool
    first_id: int | None = None
    last_id: int | None = None

    @property
    def expected(self) -> int | None:
        """How many records the header says the chunk holds."""
        if self.first_id is None or self.last_id is None:
            return None
        return self.last_id - self.first_id + 1

    def holds(self, record_id: int) -> bool:
        """Whether the header's id range covers ``record_id``."""
        return self.first_id is not None and self.last_id is not None and self.first_id <= record_id <= self.last_id


@dataclass(frozen=True)
class Layout:
    """What the file's bytes say before parsing: its size, whether its header is sound, the chunk count,
    next record id and dirty flag the header declares, and the chunks present."""

    size: int
    header_ok: bool
    declared_chunks: int
    next_id: int  # the record id the header says comes next (0 when the header is damaged)
    dirty: bool  # the header's dirty flag: the log was copied while open, so chunk CRCs may lag
    chunks: tuple[ChunkInfo, ...]

    @property
    def expected_records(self) -> int:
        """Records the chunk headers account for (chunks with an unbelievable header count none)."""
        return sum(c.expected or 0 for c in self.chunks)

    @property
    def cut_short(self) -> bool:
        """True when the file ends inside a chunk or before the chunks its header declares."""
        partial = bool(self.chunks) and self.chunks[-1].length < CHUNK_SIZE
        return partial or (self.header_ok and self.declared_chunks > len(self.chunks))


def _chunk_info(index: int, offset: int, head: bytes, length: int) -> ChunkInfo:
    signed = head.startswith(CHUNK_MAGIC)
    if len(head) < 40:
        return ChunkInfo(index, offset, length, signed)
    first, last = _u64(head, 24), _u64(head, 32)
    if not 1 <= first <= last or last - first >= MAX_RECORDS:
        return ChunkInfo(index, offset, length, signed)
    return ChunkInfo(index, offset, length, signed, first, last)


def read_layout(path: Path) -> Layout:
    """Read the file header and each chunk's header (a few bytes per 64 KB, so cheap on every file)."""
    with path.open("rb", buffering=0) as handle:  # unbuffered: reads of a few bytes cost just that
        size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        header = handle.read(FILE_HEADER)
        chunks = []
        for index, offset in enumerate(range(FILE_HEADER, size, CHUNK_SIZE)):
            handle.seek(offset)
            chunks.append(_chunk_info(index, offset, handle.read(48), min(CHUNK_SIZE, size - offset)))
    header_ok = len(header) == FILE_HEADER and header.startswith(FILE_MAGIC)
    declared = int.from_bytes(header[42:44], "little") if header_ok else 0
    next_id = _u64(header, 24) if header_ok else 0
    dirty = header_ok and bool(_u32(header, 120) & 1)
    return Layout(size, header_ok, declared, next_id, dirty, tuple(chunks))


@dataclass(frozen=True)
class Repair:
    """What rebuilding one chunk found: the ids of its complete records, the damaged stretches skipped
    and the records with one damaged field that were mended (byte offsets in the file), and where
    reading stopped."""

    chunk: ChunkInfo
    ids: tuple[int, ...]
    gaps: tuple[tuple[int, int], ...]  # (where reading stopped, where it resumed)
    mended: tuple[tuple[int, str], ...]  # (record offset, its damaged field: signature, size, end or id)
    end: int  # file offset just past the last complete record
    stopped: bool  # True when records the chunk header promises come after ``end`` and none could be read
    data: bytes | None  # the rebuilt 64 KB chunk, None when it holds no complete record


def _framed(data: bytes, pos: int, limit: int) -> tuple[int, bool, bool]:
    """A record's size at ``pos`` when it fits before ``limit`` (else 0), whether its signature is right
    and whether the size is repeated at its end."""
    if pos + RECORD_HEADER > limit:
        return 0, False, False
    size = _u32(data, pos + 4)
    if size < RECORD_MIN or pos + size > limit:
        return 0, False, False
    return size, data[pos:pos + 4] == RECORD_MAGIC, _u32(data, pos + size - 4) == size


def _sound(data: bytes, pos: int, limit: int, after: int, chunk: ChunkInfo) -> int:
    """The size of a sound record at ``pos`` with an id after ``after`` in the chunk's id range (else 0):
    where reading may resume after a damaged stretch."""
    size, signed, ended = _framed(data, pos, limit)
    record_id = _u64(data, pos + 8)
    if not (size and signed and ended) or record_id <= after:
        return 0
    return size if chunk.expected is None or chunk.holds(record_id) else 0


def _next_record(data: bytes, pos: int, limit: int, expect: int | None, chunk: ChunkInfo, free: int) -> tuple[int, str]:
    """The size of the record expected at ``pos`` (0 when there is none) and which of its fields is
    damaged ("" when none). Ids run on by one within a chunk, so of the signature, the size, the size
    repeated at the end and the id, one damaged field is vouched for by the others and by the next record
    starting right after it with the next id (or the chunk's records ending there)."""
    size, signed, ended = _framed(data, pos, limit)
    numbered = expect is None or _u64(data, pos + 8) == expect
    if size and signed and ended and numbered:
        return size, ""
    if expect is None or pos + RECORD_HEADER > limit:
        return 0, ""

    def followed(end: int) -> bool:
        if expect == chunk.last_id or end == free:
            return True
        following, next_signed, next_ended = _framed(data, end, limit)
        return bool(following and next_signed and next_ended) and _u64(data, end + 8) == expect + 1

    if size and numbered and ended and not signed:
        return size, "signature"
    if size and numbered and signed and not ended and followed(pos + size):
        return size, "end"
    if size and signed and ended and not numbered and followed(pos + size):
        return size, "id"
    if signed and numbered:  # the size itself is damaged: find where the record ends
        ends = [free] if CHUNK_HEADER < free <= limit else []
        candidate = data.find(RECORD_MAGIC, pos + RECORD_MIN)
        while candidate != -1 and candidate + RECORD_HEADER <= limit:
            if _u64(data, candidate + 8) == expect + 1:
                ends.insert(0, candidate)
                break
            candidate = data.find(RECORD_MAGIC, candidate + 1)
        for end in ends:
            if _u32(data, end - 4) == end - pos and followed(end):
                return end - pos, "size"
    return 0, ""


def repair_chunk(data: bytes, chunk: ChunkInfo) -> Repair:
    """Rebuild a chunk from the bytes the file holds of it: keep every complete record in place (records
    refer to names and templates earlier in their chunk, so none may move), mend a record with one damaged
    field of signature, end size and id, bridge each damaged stretch with a filler record, empty the
    header's name and template caches (the parser rebuilds them from the records), and set the header's
    record range, free space and CRCs to match."""
    free = _u32(data, 48) if len(data) >= 52 else 0
    ranged = chunk.expected is not None  # the id range keeps stale records in free space out
    limit = len(data) if ranged or not CHUNK_HEADER < free <= CHUNK_SIZE else min(len(data), free)
    kept: list[tuple[int, int, int]] = []  # (offset, size, id)
    gaps: list[tuple[int, int]] = []
    mended: list[tuple[int, str]] = []
    pos, after = CHUNK_HEADER, 0
    while pos + RECORD_HEADER <= limit and after != chunk.last_id:
        expect = after + 1 if after else chunk.first_id
        size, damage = _next_record(data, pos, limit, expect, chunk, free)
        if size:
            if damage:
                mended.append((chunk.offset + pos, damage))
            after = expect if damage == "id" and expect is not None else _u64(data, pos + 8)
            kept.append((pos, size, after))
            pos += size
            continue
        resume = data.find(RECORD_MAGIC, pos + RECORD_MIN)
        while resume != -1 and not _sound(data, resume, limit, after, chunk):
            resume = data.find(RECORD_MAGIC, resume + 1)
        if resume == -1:  # no sound record after it: the record here is the last chance, end or not
            size, signed, _ = _framed(data, pos, limit)
            if not (size and signed and expect is not None and _u64(data, pos + 8) == expect):
                break
            mended.append((chunk.offset + pos, "end"))
            kept.append((pos, size, expect))
            after, pos = expect, pos + size
            continue
        gaps.append((chunk.offset + pos, chunk.offset + resume))
        after = _u64(data, resume + 8)  # past a gap ids jump: the sound record found sets them anew
        kept.append((resume, _sound(data, resume, limit, 0, chunk), after))
        pos = resume + kept[-1][1]
    ids = [record_id for _, _, record_id in kept]
    stopped = chunk.last_id is not None and after != chunk.last_id
    if not ids or len(data) < CHUNK_HEADER:
        return Repair(chunk, tuple(ids), tuple(gaps), tuple(mended), chunk.offset + pos, stopped, None)
    rebuilt = bytearray(CHUNK_SIZE)
    rebuilt[:pos] = data[:pos]
    rebuilt[:8] = CHUNK_MAGIC
    rebuilt[128:CHUNK_HEADER] = bytes(CHUNK_HEADER - 128)
    for start, resume in gaps:  # the bytes stay: later records may use names and templates defined there
        start, resume = start - chunk.offset, resume - chunk.offset
        filler = resume - start
        rebuilt[start:start + RECORD_HEADER + 1] = bytes(RECORD_HEADER + 1)  # and its body ends at once
        rebuilt[start:start + 4] = RECORD_MAGIC
        rebuilt[start + 4:start + 8] = filler.to_bytes(4, "little")
        rebuilt[start + 8:start + 16] = FILLER_ID.to_bytes(8, "little")
        rebuilt[resume - 4:resume] = filler.to_bytes(4, "little")
    for start, size, record_id in kept:  # mended records get their signature, sizes and id back
        rebuilt[start:start + 4] = RECORD_MAGIC
        rebuilt[start + 4:start + 8] = rebuilt[start + size - 4:start + size] = size.to_bytes(4, "little")
        rebuilt[start + 8:start + 16] = record_id.to_bytes(8, "little")
    for field, value in ((8, ids[0]), (16, ids[-1]), (24, ids[0]), (32, ids[-1])):
        rebuilt[field:field + 8] = value.to_bytes(8, "little")
    rebuilt[40:44] = (128).to_bytes(4, "little")
    rebuilt[44:48] = kept[-1][0].to_bytes(4, "little")
    rebuilt[48:52] = pos.to_bytes(4, "little")
    rebuilt[52:56] = zlib.crc32(rebuilt[CHUNK_HEADER:pos]).to_bytes(4, "little")
    rebuilt[124:128] = zlib.crc32(bytes(rebuilt[:120]) + bytes(rebuilt[128:CHUNK_HEADER])).to_bytes(4, "little")
    return Repair(chunk, tuple(ids), tuple(gaps), tuple(mended), chunk.offset + pos, stopped, bytes(rebuilt))


def file_image(chunks: list[bytes], next_id: int) -> bytes:
    """A well-formed EVTX file in memory: a fresh file header (version 3.1, clean) then ``chunks``."""
    header = bytearray(FILE_HEADER)
    header[:8] = FILE_MAGIC
    header[16:24] = max(len(chunks) - 1, 0).to_bytes(8, "little")
    header[24:32] = next_id.to_bytes(8, "little")
    header[32:36] = (128).to_bytes(4, "little")
    header[36:38] = (1).to_bytes(2, "little")
    header[38:40] = (3).to_bytes(2, "little")
    header[40:42] = FILE_HEADER.to_bytes(2, "little")
    header[42:44] = len(chunks).to_bytes(2, "little")
    header[124:128] = zlib.crc32(bytes(header[:120])).to_bytes(4, "little")
    return bytes(header) + b"".join(chunks)
