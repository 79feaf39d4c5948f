"""Syslog stream framing: octet counting and newline framing, split anywhere, with bounded memory."""

from __future__ import annotations

import random

from mamori.collect.framing import SyslogFramer, decode_message, decode_messages


def test_octet_counted_and_newline_framed_messages_are_split_whatever_the_chunking() -> None:
    stream = b"11 <13>hello\nx" + b"<14>plain line\r\n" + b"5 abcde" + b"<15>last\n"
    for size in (1, 2, 3, 7, len(stream)):
        framer = SyslogFramer(1024)
        messages: list[bytes] = []
        for start in range(0, len(stream), size):
            got, rejected = framer.feed(stream[start:start + size])
            assert not rejected
            messages += got
        assert messages == [b"<13>hello\nx", b"<14>plain line", b"abcde", b"<15>last"]


def test_an_oversized_line_is_rejected_and_the_next_line_still_arrives() -> None:
    framer = SyslogFramer(10)
    messages, rejected = framer.feed(b"<13>" + b"A" * 50)
    assert messages == []
    assert "longer than the 10-byte limit" in rejected[0].reason
    messages, rejected = framer.feed(b"AAAA\n<13>ok\n")
    assert (messages, rejected) == ([b"<13>ok"], [])


def test_an_oversized_octet_count_is_rejected_and_its_bytes_skipped() -> None:
    framer = SyslogFramer(10)
    messages, rejected = framer.feed(b"20 " + b"B" * 20 + b"3 abc")
    assert messages == [b"abc"]
    assert "over the 10-byte limit" in rejected[0].reason


def test_a_line_starting_with_digits_but_no_count_is_a_plain_line() -> None:
    framer = SyslogFramer(100)
    assert framer.feed(b"2024-05-01 host app: hi\n") == ([b"2024-05-01 host app: hi"], [])
    assert framer.feed(b"tail without newline") == ([], [])
    assert framer.flush() == ([b"tail without newline"], [])


def test_messages_that_are_not_text_are_refused_with_the_reason() -> None:
    assert decode_message(b"\xef\xbb\xbf<13>caf\xc3\xa9") == ("<13>café", None)
    text, reason = decode_message(b"<13>\xff\xfe")
    assert text is None and reason is not None and "not UTF-8" in reason
    text, reason = decode_message(b"<13>a\x00b")
    assert text is None and reason is not None and "control character" in reason


def _slow_text(framer: SyslogFramer, chunk: bytes) -> tuple[list[str], list[str]]:
    messages, rejected = framer.feed(chunk)
    texts, bad = decode_messages(messages)
    return texts, [r.reason for r in rejected + bad]


def test_plain_text_chunks_decode_in_whole_chunk_passes_exactly_as_message_by_message() -> None:
    pieces = [b"<13>1 2026-11-29T10:00:00Z h app - - - hello\n", b"<14>plain line\r\n", b"\n", b"   \r\n",
              "<13>日本語のメッセージ\n".encode(), b"<13>nbsp\xc2\xa0end\n", b"2024-05-01 host app: digits first\n",
              b"11 <13>hello\nx", b"<13>bad \xff byte\n", b"<13>nul \x00 here\n", b"<13>" + b"L" * 300 + b"\n",
              b"\xef\xbb\xbf<13>with bom\n", "<13>\u3000\n".encode(), b"<13>tab\tinside\n", b"<13>no newline yet"]
    rng = random.Random(5)
    for _ in range(300):
        stream = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        fast, slow = SyslogFramer(200), SyslogFramer(200)
        start = 0
        while start < len(stream):
            size = rng.choice([1, 5, 40, 200, 1000])
            chunk = stream[start:start + size]
            start += size
            texts, rejected = fast.feed_text(chunk)
            assert (texts, [r.reason for r in rejected]) == _slow_text(slow, chunk), stream
        assert fast.flush() == slow.flush()


def test_a_chunk_of_plain_lines_keeps_its_unfinished_line_for_the_next() -> None:
    framer = SyslogFramer(100)
    assert framer.feed_text(b"<13>one\n<13>two\r\n<13>thr") == (["<13>one", "<13>two"], [])
    assert framer.feed_text(b"ee\n") == (["<13>three"], [])
