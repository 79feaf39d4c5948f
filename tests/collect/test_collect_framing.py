"""Syslog stream framing: octet counting and newline framing, split anywhere, with bounded memory."""

from __future__ import annotations

from mamori.collect.framing import SyslogFramer, decode_message


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
