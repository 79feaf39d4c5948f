"""Text encodings of followed files: the ``tail_encoding`` setting, and how a file's bytes are cut into
lines and decoded.

Japanese appliances and Windows servers write Shift_JIS/CP932, EUC-JP or UTF-16 (with a byte-order
mark) as often as UTF-8. Each tailed path may name its encoding (``tail_encoding = "utf-8,
/var/log/fw=cp932"``); names are checked when the service starts, so a typo is an error naming the
path and the value, not a file of mojibake. Lines are found in the encoding's own line break (two
bytes in UTF-16, at even offsets), so a checkpoint stays a byte offset that falls between two lines
of the file, valid across restarts. ``auto`` takes a byte-order mark's word (UTF-8, UTF-16, UTF-32),
else reads each line as UTF-8 when it is valid UTF-8 and as CP932 when it is valid CP932 (as ``mamori
hunt`` guesses). A line that is valid in neither is decoded with U+FFFD in place of its bad bytes,
never dropped; the tailer quarantines a copy of its raw bytes.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mamori.errors import MamoriError

AUTO = "auto"
DEFAULT_ENCODING = "utf-8"
AUTO_GUESSES = ("utf-8", "cp932")  # ``auto`` without a byte-order mark, line by line (``sources.text``'s guesses)
# Labels Python does not know, or knows as a narrower table: Shift_JIS files from Windows and Japanese
# appliances hold CP932's extensions (①, ㈱, NEC and IBM kanji), so Shift_JIS is read as CP932, as the
# WHATWG Encoding Standard (browsers) reads it.
_ALIASES = {"shift_jis": "cp932", "windows-31j": "cp932", "windows_31j": "cp932", "utf16le": "utf-16-le",
            "utf16be": "utf-16-be", "utf32le": "utf-32-le", "utf32be": "utf-32-be"}
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_FAMILY = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16", "utf-16-le": "utf-16", "utf-16-be": "utf-16",
           "utf-32": "utf-32", "utf-32-le": "utf-32", "utf-32-be": "utf-32"}
_UNMARKED = {"utf-16": "utf-16-le", "utf-32": "utf-32-le", "utf-8-sig": "utf-8"}  # no BOM: Windows' order
ENCODING_HINT = ("name a text encoding Python knows, e.g. utf-8, cp932 (Shift_JIS), euc-jp, utf-16 (with or "
                 "without a byte-order mark), utf-16-le, or auto")


def encoding_name(value: str, where: str) -> str:
    """The canonical name of the encoding ``value`` names (``auto`` kept), or an error naming ``where``
    (the setting and path) and the value: checked when the service starts, not at the first line."""
    label = value.strip().lower()
    if label == AUTO:
        return AUTO
    label = _ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise MamoriError(f"{value!r} is not a text encoding", where=where, hint=ENCODING_HINT)
    name = _ALIASES.get(info.name, info.name)
    try:
        "\n".encode(_UNMARKED.get(name, name))
    except UnicodeError as exc:
        raise MamoriError(f"{value!r} cannot encode a line break, so lines cannot be found in it", where=where,
                          hint=ENCODING_HINT) from exc
    return name


@dataclass(frozen=True)
class TailEncodings:
    """The encoding of each tailed file: the most specific path entry holding it, else ``default``."""

    default: str = DEFAULT_ENCODING
    by_path: tuple[tuple[str, str], ...] = ()  # (absolute path, encoding name), longest path first

    def of(self, path: Path) -> str:
        """The encoding configured for the file at ``path`` (a tailed file, or one in a tailed folder)."""
        name = os.path.abspath(path)
        for prefix, encoding in self.by_path:
            if name == prefix or name.startswith(prefix.rstrip(os.sep) + os.sep):
                return encoding
        return self.default


def _related(one: str, other: str) -> bool:
    """Whether one of two absolute paths is the other or holds it."""
    return (one == other or one.startswith(other.rstrip(os.sep) + os.sep)
            or other.startswith(one.rstrip(os.sep) + os.sep))


def parse_tail_encodings(value: str, tail: Sequence[Path] = ()) -> TailEncodings:
    """The ``tail_encoding`` setting: one encoding for every tailed file (``"cp932"``), or entries
    ``PATH=ENCODING`` (a tailed file or folder, or a file or folder inside one) separated by commas, with
    at most one bare encoding for the rest (``"utf-8, /var/log/fw=cp932, D:/logs/iis=utf-16"``). An
    unknown encoding, or a path no ``tail`` entry holds, is an error naming the entry."""
    default = DEFAULT_ENCODING
    seen_default = False
    by_path: list[tuple[str, str]] = []
    tailed = [os.path.abspath(p) for p in tail]
    for entry in filter(None, (part.strip() for part in value.split(","))):
        path, equals, label = entry.rpartition("=")
        if not equals:
            if seen_default:
                raise MamoriError(f"{entry!r}: a second encoding without a path", where="tail_encoding",
                                  hint="give one bare encoding (the default) and PATH=ENCODING for the others")
            default, seen_default = encoding_name(label, "tail_encoding"), True
            continue
        if not path.strip():
            raise MamoriError(f"{entry!r} names no path", where="tail_encoding", hint="write PATH=ENCODING")
        where = f"tail_encoding ({path.strip()})"
        absolute = os.path.abspath(path.strip())
        if tailed and not any(_related(absolute, t) for t in tailed):
            raise MamoriError(f"{path.strip()} is not a tailed path nor inside one", where=where,
                              hint=f"tailed paths (the tail setting): {', '.join(str(p) for p in tail)}")
        by_path.append((absolute, encoding_name(label, where)))
    by_path.sort(key=lambda item: len(item[0]), reverse=True)
    return TailEncodings(default, tuple(by_path))


@dataclass(frozen=True)
class Framing:
    """How one file's bytes are cut into lines and decoded: the codec (``auto``: each line UTF-8 or
    CP932), the byte-order mark's length at the file's start, and the line break as encoded (its
    length is the code unit: a break counts only at offsets that are multiples of it)."""

    codec: str
    bom: int
    newline: bytes
    carriage: bytes

    @property
    def unit(self) -> int:
        """Bytes per code unit: 1, or 2 for UTF-16, 4 for UTF-32."""
        return len(self.newline)

    def breaks(self, data: bytes) -> np.ndarray | list[int]:
        """The offsets of the line breaks in ``data`` (which starts on a code unit boundary)."""
        if self.unit == 1:
            return np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == self.newline[0])
        whole = len(data) - len(data) % self.unit
        units = np.frombuffer(data[:whole], dtype=np.dtype(f"<u{self.unit}"))
        return np.flatnonzero(units == int.from_bytes(self.newline, "little")) * self.unit

    def whole_lines(self, data: bytes) -> int:
        """How many bytes of ``data`` (starting on a unit boundary) are whole lines, breaks included."""
        if self.unit == 1:
            return data.rfind(self.newline) + 1
        found = self.breaks(data)
        return int(found[-1]) + self.unit if len(found) else 0

    def split(self, chunk: bytes) -> list[tuple[int, bytes]]:
        """The lines of ``chunk`` (whole lines only) as (offset in the chunk, bytes without the break and
        a carriage return before it)."""
        lines: list[tuple[int, bytes]] = []
        start = 0
        cr = self.carriage
        if self.unit == 1:
            for raw in chunk.split(self.newline)[:-1]:
                lines.append((start, raw[:-1] if raw.endswith(cr) else raw))
                start += len(raw) + 1
            return lines
        for end in self.breaks(chunk):
            raw = chunk[start:int(end)]
            lines.append((start, raw[:-len(cr)] if raw.endswith(cr) and len(raw) % self.unit == 0 else raw))
            start = int(end) + self.unit
        return lines

    def decode_lines(self, chunk: bytes) -> list[str] | None:
        """The lines of a chunk of whole lines (each without its break and a carriage return before it),
        decoded at once: the usual case, when every byte is valid; None when some line is not (then each
        line is decoded alone, to tell which)."""
        try:
            text = chunk.decode(AUTO_GUESSES[0] if self.codec == AUTO else self.codec)
        except UnicodeDecodeError:
            return None
        lines = text.split("\n")
        lines.pop()  # after the last break
        return [line[:-1] if line.endswith("\r") else line for line in lines] if "\r" in text else lines

    def decode(self, raw: bytes) -> tuple[str, UnicodeDecodeError | None]:
        """A line's text and, when its bytes are not valid in the encoding, the error (the text then
        holds U+FFFD in place of the bad bytes)."""
        if self.codec == AUTO:
            first: UnicodeDecodeError | None = None
            for guess in AUTO_GUESSES:
                try:
                    return raw.decode(guess), None
                except UnicodeDecodeError as exc:
                    first = first or exc
            return raw.decode(AUTO_GUESSES[0], errors="replace"), first
        try:
            return raw.decode(self.codec), None
        except UnicodeDecodeError as exc:
            return raw.decode(self.codec, errors="replace"), exc


def framing(configured: str, head: bytes) -> Framing:
    """The framing of a file whose configured encoding is ``configured`` and whose first bytes are
    ``head``: a byte-order mark of the configured encoding's family at the start is skipped and its
    byte order trusted (``utf-16`` without a mark is little-endian, as Windows writes it); with
    ``auto``, any mark chooses the encoding."""
    family = _FAMILY.get(configured)
    for mark, name in _BOMS:
        if (configured == AUTO or _FAMILY[name] == family) and head.startswith(mark):
            codec, bom = name, len(mark)
            break
    else:
        codec, bom = _UNMARKED.get(configured, configured), 0
    text_codec = AUTO_GUESSES[0] if codec == AUTO else codec
    return Framing(codec, bom, "\n".encode(text_codec), "\r".encode(text_codec))
