"""Split a syslog byte stream into messages: octet counting (RFC 6587 / RFC 5425) and newline framing.

The framer is fed whatever the socket gives and returns whole messages, plus a ``Rejected`` for every
piece it refuses (an oversized message, a broken octet count), so that each bad input becomes a
quarantine entry with its reason while the stream goes on. Memory is bounded by ``max_bytes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))  # the same set (UTF-8 has
# these bytes only as these characters, never inside a multi-byte one)
_DIGITS = frozenset("0123456789")  # a message opening with one may be octet-counted


@dataclass(frozen=True)
class Rejected:
    """A piece of input refused by the framer or the decoder: why, and its first bytes."""

    reason: str
    raw: bytes


PREVIEW = 2048


class SyslogFramer:
    """Stateful splitter for one TCP/TLS connection; ``feed`` returns (messages, rejected)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._skip = 0  # bytes of an oversized octet-counted frame still to discard
        self._discarding = False  # inside an oversized newline-framed line

    def feed(self, data: bytes) -> tuple[list[bytes], list[Rejected]]:
        """Take bytes from the socket; return the complete messages and the rejected pieces."""
        messages: list[bytes] = []
        rejected: list[Rejected] = []
        buffer = self._buffer
        buffer += data
        position = 0
        size = len(buffer)
        while position < size:
            if self._skip:
                taken = min(self._skip, size - position)
                self._skip -= taken
                position += taken
                continue
            if self._discarding:
                newline = buffer.find(b"\n", position)
                if newline < 0:
                    position = size
                    break
                self._discarding = False
                position = newline + 1
                continue
            first = buffer[position]
            if 0x30 <= first <= 0x39:  # a digit: octet counting "LEN SP MSG"
                space = buffer.find(b" ", position, position + 12)
                if space < 0:
                    if size - position < 12:
                        break  # the length is not complete yet
                    space = -1
                digits = bytes(buffer[position:space]) if space > 0 else b""
                if space > 0 and digits.isdigit() and not (len(digits) > 1 and digits.startswith(b"0")):
                    length = int(digits)
                    start = space + 1
                    if length > self.max_bytes:
                        rejected.append(Rejected(f"message of {length} bytes is over the {self.max_bytes}-byte "
                                                 "limit (octet-counted frame)", bytes(buffer[start:start + PREVIEW])))
                        self._skip = length
                        position = start
                        continue
                    if size - start < length:
                        break  # wait for the rest of the frame
                    messages.append(bytes(buffer[start:start + length]))
                    position = start + length
                    continue
                # digits but no valid count: treat as a newline-framed line (e.g. "2024-05-01 ...")
            newline = buffer.find(b"\n", position)
            if newline < 0:
                if size - position > self.max_bytes:
                    rejected.append(Rejected(f"line longer than the {self.max_bytes}-byte limit",
                                             bytes(buffer[position:position + PREVIEW])))
                    self._discarding = True
                    position = size
                break
            if newline - position > self.max_bytes:
                rejected.append(Rejected(f"line longer than the {self.max_bytes}-byte limit",
                                         bytes(buffer[position:position + PREVIEW])))
            else:
                line = bytes(buffer[position:newline]).rstrip(b"\r")
                if line.strip():
                    messages.append(line)
            position = newline + 1
        del buffer[:position]
        return messages, rejected

    def feed_text(self, data: bytes) -> tuple[list[str], list[Rejected]]:
        """``feed`` and ``decode_messages`` in one: the complete messages as text, and every refused
        piece. A chunk of plain newline-framed text (the common case: no octet count, no line over the
        limit, valid UTF-8 without control bytes) is split and decoded in a few whole-chunk passes
        instead of message by message; anything else takes the message-by-message path."""
        if not self._skip and not self._discarding:
            texts = self._plain_lines(data)
            if texts is not None:
                return texts, []
        messages, rejected = self.feed(data)
        texts, bad = decode_messages(messages)
        return texts, rejected + bad

    def _plain_lines(self, data: bytes) -> list[str] | None:
        """The complete lines of the buffer and ``data`` when they are plain text (see ``feed_text``),
        the rest kept for the next chunk; None, and nothing changed, otherwise."""
        whole = bytes(self._buffer) + data if self._buffer else data
        end = whole.rfind(b"\n") + 1
        if end == 0 or len(whole) - end > self.max_bytes:
            return None
        body = whole[:end]
        if b"\xef\xbb\xbf" in body or len(body.translate(None, _CONTROL_BYTES)) != end:
            return None
        if end > self.max_bytes and max(map(len, body.split(b"\n"))) > self.max_bytes:
            return None  # (a body within the limit has no line over it)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        lines = text.split("\n")
        lines.pop()  # the body ends with a newline: nothing after it
        if any(line[:1] in _DIGITS for line in lines):  # may be octet-counted: the message-by-message path
            return None
        if "\r" in text:
            lines = [line.rstrip("\r") for line in lines]
        self._buffer = bytearray(whole[end:])
        return [line for line in lines if line.strip(" \t\r")]

    def flush(self) -> tuple[list[bytes], list[Rejected]]:
        """At the end of the connection: a last unterminated line is a message."""
        rest = bytes(self._buffer).rstrip(b"\r\n")
        self._buffer.clear()
        if self._skip or self._discarding or not rest.strip():
            return [], []
        if len(rest) > self.max_bytes:
            return [], [Rejected(f"line longer than the {self.max_bytes}-byte limit", rest[:PREVIEW])]
        return [rest], []


def decode_messages(messages: list[bytes]) -> tuple[list[str], list[Rejected]]:
    """Decode framed messages; the ones that are not text become rejected pieces."""
    texts: list[str] = []
    bad: list[Rejected] = []
    for message in messages:
        text, reason = decode_message(message)
        if text is None:
            bad.append(Rejected(reason or "unreadable", message))
        else:
            texts.append(text)
    return texts, bad


def decode_message(message: bytes) -> tuple[str | None, str | None]:
    """Decode one syslog message as UTF-8 (a BOM is dropped); return (text, None) or (None, reason)
    for bytes that are not text (invalid UTF-8, NUL or other control characters)."""
    if message.startswith(b"\xef\xbb\xbf"):
        message = message[3:]
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text: {exc.reason} at byte {exc.start}"
    if len(message.translate(None, _CONTROL_BYTES)) == len(message):
        return text, None  # no control byte: counting bytes costs a tenth of a regex over the text
    found = _CONTROL.search(text)
    if found is not None:
        return None, f"control character {found.group()!r} at {found.start()} (binary data, not a syslog message)"
    return text, None
