"""Bytes to text for log files: gzip, byte-order marks, UTF-8 or Shift_JIS / CP932, in bounded chunks.

Japanese devices still write CP932; a file is read as UTF-8 when it decodes cleanly, else as
CP932 when that decodes cleanly, else as UTF-8 with replacement characters (nothing is dropped).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from mamori.events.frame import arrow_series

CHUNK_BYTES = 8 * 1024 * 1024
FALLBACK_ENCODINGS = ("utf-8", "cp932")


def detect_encoding(data: bytes) -> str:
    """Name the encoding of ``data``: a BOM's, UTF-8 when it decodes, else CP932 when it decodes."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    for name in FALLBACK_ENCODINGS:
        try:
            data.decode(name)
        except UnicodeDecodeError as exc:
            if name == "utf-8" and exc.start >= len(data) - 3:
                return "utf-8"  # a character cut by the sample's end
            continue
        return name
    return "utf-8"


def decode(data: bytes, encoding: str | None = None) -> str:
    """Decode ``data`` with ``encoding``, or the detected one; never fails (bad bytes become U+FFFD)."""
    name = encoding or detect_encoding(data)
    text = data.decode(name, errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


def open_binary(path: Path) -> BinaryIO:
    """Open a log file for reading bytes, through gzip when it is compressed."""
    handle = path.open("rb")
    magic = handle.read(2)
    handle.seek(0)
    if magic == b"\x1f\x8b":
        handle.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return handle


def read_head(path: Path, size: int = 8192) -> bytes:
    """Return the first ``size`` bytes of a file, decompressed when it is gzip."""
    with open_binary(path) as handle:
        return handle.read(size)


def iter_line_chunks(path: Path, encoding: str | None = None,
                     chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(number of the first line, lines)`` for a text file, a few megabytes at a time.

    Lines keep their text without the line break (``\\r\\n`` or ``\\n``); line numbers count from 1.
    """
    line_number = 1
    for body, name in _blocks(path, encoding, chunk_bytes):
        lines = _split(decode(body, name))
        yield line_number, lines
        line_number += len(lines)


def iter_line_columns(path: Path, encoding: str | None = None,
                      chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, pl.Series]]:
    """``iter_line_chunks`` with each chunk's lines as one Utf8 Series: the same lines and numbers, but
    a UTF-8 chunk is cut at its line breaks in bulk, without making a Python string per line (about
    half the cost of reading a line)."""
    line_number = 1
    for body, name in _blocks(path, encoding, chunk_bytes):
        column = _split_utf8(body) if name == "utf-8" else None
        if column is None:
            column = pl.Series("t", _split(decode(body, name)), dtype=pl.Utf8)
        yield line_number, column
        line_number += len(column)


def _blocks(path: Path, encoding: str | None, chunk_bytes: int) -> Iterator[tuple[bytes, str]]:
    """The bytes of a file in blocks that end at a line break (all but perhaps the last), each with
    the encoding to read it in: ``encoding``, else the one detected on the first block."""
    carry = b""
    chosen = encoding
    with open_binary(path) as handle:
        while True:
            block = handle.read(chunk_bytes)
            if not block:
                if carry:
                    yield carry, chosen or detect_encoding(carry)
                return
            cut = block.rfind(b"\n")
            if cut < 0:  # no break in the block (carry never holds one)
                carry += block
                continue
            # the line cut off by the last block, then this block up to its last break: one copy at most
            body = block if not carry and cut == len(block) - 1 else b"".join((carry, memoryview(block)[: cut + 1]))
            carry = block[cut + 1:]
            if chosen is None:
                chosen = detect_encoding(body)
            yield body, chosen


def _split_utf8(body: bytes) -> pl.Series | None:
    """``_split(decode(body, "utf-8"))`` as a Series, cut at the line breaks by Arrow offsets; None when
    the block is not clean UTF-8 or starts with a byte-order mark (``decode`` has its own rules then)."""
    if not body or body.startswith(b"\xef\xbb\xbf"):
        return None
    breaks = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 0x0A)
    ends = breaks + 1 if body.endswith(b"\n") else np.append(breaks + 1, len(body))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    values = pa.Array.from_buffers(pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(body)])
    try:
        column = arrow_series("t", values).cast(pl.Utf8)
    except pl.exceptions.ComputeError:  # bad bytes: ``decode`` writes U+FFFD for them
        return None
    # a block ending with a break: every line ends with one, and cutting a last character off costs less
    column = column.str.head(-1) if body.endswith(b"\n") else column.str.strip_suffix("\n")
    return column.str.strip_suffix("\r") if b"\r" in body else column


def _split(text: str) -> list[str]:
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
