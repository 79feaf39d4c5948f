"""Reading and parsing the next batch ahead, in a parser process: same batch as parsed inline, and a
batch read ahead but discarded is read again from the spool."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from mamori.collect.spool import Entry, Spool
from mamori.events.schema import CORE_SCHEMA
from mamori.service.parse import parse_entries
from mamori.service.readahead import ReadAhead, parse_for_transfer
from mamori.sources.base import ReadOptions
from mamori.store.lake import decode_parts, encode_parts

# today: lines that are no syslog at all are still stored, in today's partition, and the test counts
# one lake file per source (a fixed date made it fail on any other day)
TODAY = datetime.now(UTC).strftime("%Y-%m-%d")
WINDOWS_EVENT = {"EventID": 4688, "Channel": "Security", "Computer": "pc1.example.jp", "ProviderName":
                 "Microsoft-Windows-Security-Auditing", "NewProcessName": "C:\\Windows\\System32\\whoami.exe",
                 "CommandLine": "whoami /all", "SubjectUserName": "田中", "EventTime": f"{TODAY} 10:00:00"}


def _lines(count: int) -> list[str]:
    lines = []
    for n in range(count):
        if n % 3 == 0:
            lines.append(f"<13>1 {TODAY}T10:00:{n % 60:02d}Z web01 sshd 42 - - Accepted password for u{n}")
        elif n % 3 == 1:
            event = {**WINDOWS_EVENT, "EventRecordID": n}
            lines.append(f"<14>1 {TODAY}T10:00:00Z pc1 nxlog - - - {orjson.dumps(event).decode()}")
        else:
            lines.append("<999> not a syslog line at all")
    return lines


def test_a_batch_parsed_in_a_parser_process_arrives_as_the_lake_stores_the_inline_parse() -> None:
    entries = [Entry("syslog", "tcp:127.0.0.1:1", tuple(_lines(30)), time.time_ns(), None, 0),
               Entry("syslog", "tcp:127.0.0.1:2", tuple(_lines(9)), time.time_ns(), None, 1)]
    inline = parse_entries(entries, ReadOptions())
    moved = parse_for_transfer(entries, ReadOptions()).parsed()
    stored = encode_parts(inline.frame)
    assert stored.order is not None  # two sources: the rows come regrouped, one lake file each
    assert [p.source for p in stored.parts] == ["syslog", "winjson"]
    assert moved.frame.equals(decode_parts(stored.parts))
    assert moved.lake_parts == stored.parts  # the very bytes the pipeline writes
    assert moved.received_ns.equals(inline.received_ns.gather(stored.order))
    assert moved.quarantined == inline.quarantined
    by_uid = {row["_uid"]: row for row in inline.frame.to_dicts()}
    assert len(by_uid) == moved.frame.height == inline.frame.height
    for row in moved.frame.to_dicts():  # every event intact: its fields as text, empty ones left out
        expected = by_uid[row["_uid"]]
        assert {k: v for k, v in row.items() if v is not None} == {
            k: v if k in CORE_SCHEMA or v is None else str(v) for k, v in expected.items() if v is not None}


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool", fsync=False)
    try:
        yield opened
    finally:
        opened.close()


def _fill(spool: Spool, entries: int) -> None:
    for seq in range(entries):
        spool.append_wait(Entry("syslog", f"tcp:h:{seq}", tuple(_lines(6)), time.time_ns()))


def test_the_batch_read_ahead_is_served_and_a_discarded_one_is_read_again(spool: Spool) -> None:
    _fill(spool, 4)
    source = ReadAhead(spool, rows=12, seconds=0.2, options=ReadOptions(), parse_processes=1)
    try:
        first = source.take(0)
        assert first is not None and [e.seq for e in first.entries] == [0, 1]
        source.ahead(first.end)
        second = source.take(first.end)  # the one read ahead, parsed in the parser process
        assert second is not None and [e.seq for e in second.entries] == [2, 3]
        assert second.parsed.frame.height == first.parsed.frame.height == 12

        source.ahead(second.end)  # nothing there yet; then the pipeline fails and restarts at 2
        source.discard()
        again = source.take(first.end)
        assert again is not None and [e.seq for e in again.entries] == [2, 3]
        assert again.parsed.frame.equals(second.parsed.frame)
    finally:
        source.close()


def test_batches_in_flight_in_several_parser_processes_come_in_spool_order(spool: Spool) -> None:
    _fill(spool, 10)
    source = ReadAhead(spool, rows=12, seconds=0.2, options=ReadOptions(), parse_processes=2)
    assert source.depth == 2
    try:
        start, seen = 0, []
        for _ in range(5):
            batch = source.take(start)
            assert batch is not None and batch.parsed.frame.height == 12
            seen.append([e.seq for e in batch.entries])
            start = batch.end
            source.ahead(start)
        assert seen == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
        again = source.take(4)  # the pipeline failed the batch at 4: read from there again
        assert again is not None and [e.seq for e in again.entries] == [4, 5]
    finally:
        source.close()


def test_a_failed_spool_read_reaches_the_pipeline_and_reading_resumes(spool: Spool,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(spool, 1)
    source = ReadAhead(spool, rows=12, seconds=0.2, options=ReadOptions(), parse_processes=0)
    real_read = spool.read
    failures = [OSError("disk went away")]

    def flaky_read(start: int, rows: int, seconds: float) -> list[Entry]:
        if failures:
            raise failures.pop()
        return real_read(start, rows, seconds)

    monkeypatch.setattr(spool, "read", flaky_read)
    try:
        with pytest.raises(OSError, match="disk went away"):
            source.take(0)
        batch = source.take(0)
        assert batch is not None and [e.seq for e in batch.entries] == [0]
    finally:
        source.close()
