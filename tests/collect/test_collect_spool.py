"""The spool: appends are durable and numbered, reads resume at the commit, a torn tail is cut off,
the backlog is counted, idempotency keys survive a restart, and HTTP ones their segment's pruning."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

from mamori.collect.spool import Entry, Spool


def _entry(n: int, key: str | None = None) -> Entry:
    return Entry("syslog", "test", (f"line {n}a", f"line {n}b"), time.time_ns(), key)


def test_entries_are_read_back_in_order_from_any_committed_point(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=300)
    seqs = [spool.append_wait(_entry(n)) for n in range(20)]
    assert seqs == list(range(20))
    assert len(spool.segments()) > 1
    got = spool.read(0, 1000, 0.1)
    assert [e.records[0] for e in got] == [f"line {n}a" for n in range(20)]
    assert [e.seq for e in spool.read(7, 4, 0.1)] == [7, 8]
    spool.close()


def test_batches_read_one_after_another_skip_nothing_at_segment_boundaries(tmp_path: Path) -> None:
    # a batch that ends on a segment's last entry must not make the next read skip the next segment
    spool = Spool(tmp_path, segment_bytes=300)
    for n in range(40):
        spool.append_wait(_entry(n))
    assert len(spool.segments()) > 5
    for per_batch in (1, 2, 3, 4, 5, 7):
        seen: list[int] = []
        start = 0
        while batch := spool.read(start, per_batch * 2, 0.0):
            seen.extend(e.seq for e in batch)
            start = batch[-1].seq + 1
        assert seen == list(range(40)), per_batch
    spool.close()


def test_a_restart_resumes_after_the_commit_and_counts_only_the_backlog(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(10):
        spool.append_wait(_entry(n, key=f"k{n}"))
    spool.commit(6)
    spool.close()
    again = Spool(tmp_path)
    again.start_from(6)
    assert again.next_seq == 10
    assert [e.seq for e in again.read(6, 100, 0.1)] == [6, 7, 8, 9]
    assert 0 < again.pending_bytes < 4 * 200
    assert "k3" in again.keys
    again.commit(10)
    assert again.pending_bytes == 0
    assert again.append_wait(_entry(10)) == 10
    again.close()


def test_a_torn_write_at_the_end_is_cut_off_and_numbering_goes_on(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(3):
        spool.append_wait(_entry(n))
    spool.close()
    segment = spool.segments()[-1][1]
    with segment.open("ab") as handle:
        handle.write(b"MW\x10\x00\x00\x00garbage")  # a crash in the middle of a write
    again = Spool(tmp_path)
    assert again.next_seq == 3
    assert again.append_wait(_entry(3)) == 3
    assert [e.seq for e in again.read(0, 100, 0.1)] == [0, 1, 2, 3]
    again.close()


def test_the_spool_reports_full_when_the_backlog_reaches_its_limit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_pending_bytes=500)
    while not spool.full:
        spool.append_wait(_entry(0))
    spool.commit(spool.next_seq)
    assert not spool.full
    spool.close()


def test_committed_old_segments_are_pruned_with_their_keys(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200, keep_seconds=0)
    for n in range(10):
        spool.append_wait(_entry(n, key=f"k{n}"))
    before = len(spool.segments())
    spool.commit(10)
    removed = spool.prune(now=time.time() + 10)
    assert removed == before - 1
    assert "k0" not in spool.keys
    spool.close()


def test_an_http_key_is_remembered_after_its_segment_is_pruned_and_across_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200, keep_seconds=0)
    spool.append_wait(Entry("json", "http:json:batch-1", ("{}",), time.time_ns(), "batch-1"))
    spool.append_wait(Entry("syslog", "tail:/var/log/app.log", ("x",), time.time_ns(), "tail:/var/log/app.log:0-2"))
    for n in range(8):
        spool.append_wait(_entry(n))
    spool.commit(10)
    assert spool.prune(now=time.time() + 10) >= 1
    assert "batch-1" not in spool.keys and spool.seen("batch-1")  # the HTTP client's retry is still a duplicate
    assert not spool.seen("tail:/var/log/app.log:0-2")  # a tailer's checkpoint says what it read
    spool.close()
    again = Spool(tmp_path, segment_bytes=200, keep_seconds=0)
    assert again.seen("batch-1") and not again.seen("batch-2")
    again.close()


def test_an_http_key_older_than_its_keep_time_is_forgotten(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200, keep_seconds=0, key_keep_seconds=3600)
    two_hours_ago = time.time_ns() - 7200 * 10**9
    spool.append_wait(Entry("json", "http:json:old", ("{}",), two_hours_ago, "old"))
    spool.append_wait(Entry("json", "http:json:new", ("{}",), time.time_ns(), "new"))
    for n in range(8):
        spool.append_wait(_entry(n))
    spool.commit(10)
    spool.prune(now=time.time() + 10)
    assert not spool.seen("old") and spool.seen("new")
    assert len(spool.ledger) == 1
    spool.close()


def test_a_batch_whose_first_entry_already_waited_the_batch_time_closes_at_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    long_ago = time.time_ns() - 120 * 10**9  # received while the reader was busy with batches ahead
    spool.append_wait(Entry("syslog", "tcp:1", ("a", "b"), long_ago))
    started = time.monotonic()
    got = spool.read(0, 1000, timeout=60.0)  # a small batch would otherwise wait the minute for more
    assert [e.records for e in got] == [("a", "b")]
    assert time.monotonic() - started < 30.0
    spool.close()


def test_an_entry_read_back_crosses_to_another_process_as_its_stored_body(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    made = _entry(1, key="k1")
    spool.append_wait(made)
    [read] = spool.read(0, 10, 0.1)
    assert read.body is not None
    wire = pickle.dumps(read)
    assert b"line 1a" in wire and len(wire) < len(read.body) + 200  # the body, not one object per record
    back = pickle.loads(wire)
    assert back == read and back.seq == 0 and back.key == "k1" and back.records == made.records
    fresh = pickle.loads(pickle.dumps(made))  # an entry an input made has no body: its fields travel
    assert fresh == made and fresh.body is None
    spool.close()
