"""File tailing: new lines are spooled once, rotation and truncation are followed, checkpoints survive a
restart, EVTX files dropped in a folder are read whole."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from mamori_testing import shared_data
from tail_testing import spooled_lines

from mamori.collect.spool import Spool
from mamori.collect.tail import Tailer


def test_new_lines_are_spooled_once_and_a_partial_line_waits_for_its_end(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "auth.log"
    log.parent.mkdir()
    log.write_bytes(b"<13>Oct 11 22:14:15 host sshd[1]: one\n<13>Oct 11 22:14:16 host sshd[1]: tw")
    spool = Spool(tmp_path / "spool")
    tailer = Tailer([log.parent], spool, tmp_path / "cp.json")
    assert tailer.poll() == 1
    assert tailer.poll() == 0
    with log.open("ab") as handle:
        handle.write(b"o\n")
    assert tailer.poll() == 1
    assert [line.rsplit(" ", 1)[1] for line in spooled_lines(spool)] == ["one", "two"]
    tailer.close()
    spool.close()


def test_rotation_and_truncation_are_followed(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a1\na2\n")
    spool = Spool(tmp_path / "spool")
    tailer = Tailer([log], spool, tmp_path / "cp.json")
    tailer.poll()
    with log.open("a") as handle:
        handle.write("a3\n")
    os.rename(log, tmp_path / "app.log.1")  # rotated: a3 was written just before
    log.write_text("b1\n")
    tailer.poll()
    log.write_text("c1\n")  # truncated in place and rewritten (copytruncate)
    tailer.poll()
    assert spooled_lines(spool) == ["a1", "a2", "a3", "b1", "c1"]
    tailer.close()
    spool.close()


def test_a_restart_resumes_from_the_checkpoint_without_duplicates(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("x1\nx2\n")
    spool = Spool(tmp_path / "spool")
    crashed = tmp_path / "cp.json"
    for step in range(3):
        if step == 1:
            with log.open("a") as handle:
                handle.write("x3\n")
            checkpoint = orjson.loads(crashed.read_bytes())
        if step == 2:
            crashed.write_bytes(orjson.dumps(checkpoint))  # a crash lost the last checkpoint save
        tailer = Tailer([log], spool, crashed)
        tailer.poll()
        tailer.close()
    assert spooled_lines(spool) == ["x1", "x2", "x3"]
    spool.close()


def test_an_evtx_file_that_grows_after_it_was_read_gives_only_its_new_records(tmp_path: Path) -> None:
    samples = sorted(shared_data("evtx-attack-samples").rglob("*.evtx"))
    sample = next(p for p in samples if 300_000 < p.stat().st_size < 2_000_000)
    whole = sample.read_bytes()
    drop = tmp_path / "drop"
    drop.mkdir()
    copied = drop / "copied-while-written.evtx"
    copied.write_bytes(whole[:4096 + 2 * 65536])  # the file header and the first two chunks, so far
    spool = Spool(tmp_path / "spool")
    tailer = Tailer([drop], spool, tmp_path / "cp.json")
    tailer.poll()
    first = tailer.poll()
    assert first > 0
    with copied.open("ab") as handle:  # the rest arrives
        handle.write(whole[4096 + 2 * 65536:])
    tailer.poll()
    second = tailer.poll()
    ids = [orjson.loads(line)["EventRecordID"] for line in spooled_lines(spool)]
    assert second > 0 and len(ids) == first + second
    assert len(set(ids)) == len(ids)  # nothing spooled twice
    tailer.close()
    restarted = Tailer([drop], spool, tmp_path / "cp.json")  # the highest record spooled is checkpointed
    os.utime(copied)
    restarted.poll()
    assert restarted.poll() == 0
    restarted.close()
    spool.close()


def test_an_evtx_file_rewritten_in_place_with_another_log_is_read_whole_again(tmp_path: Path) -> None:
    samples = [p for p in sorted(shared_data("evtx-attack-samples").rglob("*.evtx")) if p.stat().st_size > 70_000]
    drop = tmp_path / "drop"
    drop.mkdir()
    log = drop / "Security.evtx"
    log.write_bytes(samples[1].read_bytes())
    spool = Spool(tmp_path / "spool")
    tailer = Tailer([drop], spool, tmp_path / "cp.json")
    tailer.poll()
    first = tailer.poll()
    with log.open("r+b") as handle:  # cleared and written again: the same file, another log
        handle.truncate(0)
        handle.write(samples[0].read_bytes())
    tailer.poll()
    second = tailer.poll()
    assert first > 0 and second > 0
    assert len(spooled_lines(spool)) == first + second
    tailer.close()
    spool.close()


def test_an_evtx_file_dropped_in_a_folder_is_read_once_it_stops_growing(tmp_path: Path) -> None:
    samples = sorted(shared_data("evtx-attack-samples").rglob("*.evtx"))
    sample = next(p for p in samples if 20_000 < p.stat().st_size < 200_000)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "sample.evtx").write_bytes(sample.read_bytes())
    spool = Spool(tmp_path / "spool")
    tailer = Tailer([drop], spool, tmp_path / "cp.json")
    assert tailer.poll() == 0  # first sight: wait for a stable size
    read = tailer.poll()
    assert read > 0
    assert tailer.poll() == 0
    first = orjson.loads(spooled_lines(spool)[0])
    assert "EventID" in first
    tailer.close()
    spool.close()
