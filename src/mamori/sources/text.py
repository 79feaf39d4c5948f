"""Bytes to text for log files: gzip, byte-order marks, UTF-8 or Shift_JIS / CP932, in bounded chunks.

Japanese devices still write CP932; a file is read as UTF-8 when it decodes cleanly, else as
CP932 when that decodes cleanly, else as UTF-8 with replacement characters (nothing is dropped).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

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
    carry = b""
    chosen = encoding
    with open_binary(path) as handle:
        while True:
            block = handle.read(chunk_bytes)
            data = carry + block
            if not block:
                if data:
                    lines = _split(decode(data, chosen or detect_encoding(data)))
                    yield line_number, lines
                return
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1:]
            body = data[: cut + 1]
            if chosen is None:
                chosen = detect_encoding(body)
            lines = _split(decode(body, chosen))
            yield line_number, lines
            line_number += len(lines)


def _split(text: str) -> list[str]:
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
