"""Lines written just before logrotate rotated a followed file are read from the rotated copy when the
tailer did not see them in the file itself: renamed (``app.log.1``), compressed (``app.log.1.gz``), or
copied and truncated (``copytruncate``). The copy is told by the file's first bytes and the bytes just
before the checkpoint's offset, not by its name, and each line is spooled exactly once across restarts
and kills."""

from __future__ import annotations

import bz2
import gzip
import os
import shutil
import time
from pathlib import Path

import orjson
import pytest
from tail_testing import poll_once, spooled_lines

from mamori.collect.spool import Spool
from mamori.collect.tail import Tailer

HEADER = "#fields\tts\tuid\tid.orig_h\tid.resp_h\tquery\tqtype_name\tanswers\tTTL\tmessage\n"  # > 64 bytes


def _compress(path: Path, target: Path, opener: object = gzip.open) -> None:
    """What logrotate's ``compress`` does: write the compressed copy, then remove the file."""
    with path.open("rb") as source, opener(target, "wb") as sink:  # type: ignore[operator]
        shutil.copyfileobj(source, sink)
    path.unlink()


def _older_rotation(folder: Path, name: str) -> None:
    """An older rotation with the same first bytes (the header), newer on disk than the real copy, so
    the first bytes alone would pick it."""
    with gzip.open(folder / name, "wb") as handle:
        handle.write((HEADER + "".join(f"old{n}\t-\n" for n in range(20))).encode())
    future = time.time() + 60
    os.utime(folder / name, (future, future))


@pytest.mark.parametrize("tailed", ["file", "folder"])
def test_lines_rotated_and_gzipped_while_the_service_was_stopped_are_read_exactly_once(
        tmp_path: Path, tailed: str) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "app.log"
    log.write_text(HEADER + "a1\t-\na2\t-\n")
    spool = Spool(tmp_path / "spool")
    checkpoint = tmp_path / "cp.json"
    paths = [log] if tailed == "file" else [folder]
    assert poll_once(paths, spool, checkpoint) == 3
    # stopped; the application writes on, then logrotate renames, creates, compresses
    with log.open("a") as handle:
        handle.write("a3\t-\na4 ログ\t-\n")
    os.rename(log, folder / "app.log.1")
    log.write_text("b1\t-\n")
    _compress(folder / "app.log.1", folder / "app.log.1.gz")
    _older_rotation(folder, "app.log.2.gz")
    before = checkpoint.read_bytes()
    assert poll_once(paths, spool, checkpoint) == 3  # a3, a4 from the copy, then b1
    expected = [HEADER.rstrip("\n"), "a1\t-", "a2\t-", "a3\t-", "a4 ログ\t-", "b1\t-"]
    assert spooled_lines(spool) == expected
    checkpoint.write_bytes(before)  # killed before that poll's checkpoint was saved: read again
    with log.open("a") as handle:
        handle.write("b2\t-\n")
    assert poll_once(paths, spool, checkpoint) == 1
    assert spooled_lines(spool) == [*expected, "b2\t-"]
    assert poll_once(paths, spool, checkpoint) == 0  # and the copy is not read again afterwards
    assert [k for k in orjson.loads(checkpoint.read_bytes())] == [f"{log.stat().st_dev}:{log.stat().st_ino}"]
    spool.close()


def test_a_file_renamed_while_stopped_is_finished_from_its_new_name_when_only_the_file_is_tailed(
        tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a1\n")
    spool = Spool(tmp_path / "spool")
    checkpoint = tmp_path / "cp.json"
    poll_once([log], spool, checkpoint)
    with log.open("a") as handle:
        handle.write("a2\n")
    os.rename(log, tmp_path / "app.log-20250106")  # dateext, delaycompress: not compressed yet
    log.write_text("b1\n")
    poll_once([log], spool, checkpoint)
    assert spooled_lines(spool) == ["a1", "a2", "b1"]
    spool.close()


def test_a_copytruncate_rotation_compressed_with_bzip2_gives_the_lines_the_tailer_had_not_read(
        tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a1\na2\n")
    spool = Spool(tmp_path / "spool")
    tailer = Tailer([log], spool, tmp_path / "cp.json")
    tailer.poll()
    with log.open("a") as handle:
        handle.write("a3\n")  # written after the last poll
    shutil.copy(log, tmp_path / "app.log.1")
    with log.open("r+b") as handle:  # copytruncate: the same file, emptied
        handle.truncate(0)
    _compress(tmp_path / "app.log.1", tmp_path / "app.log.1.bz2", bz2.open)
    with log.open("a") as handle:
        handle.write("b1\n")
    assert tailer.poll() == 2
    tailer.close()
    assert spooled_lines(spool) == ["a1", "a2", "a3", "b1"]
    spool.close()


def test_a_half_written_compressed_copy_gives_its_whole_lines_and_nothing_twice(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a1\n")
    spool = Spool(tmp_path / "spool")
    checkpoint = tmp_path / "cp.json"
    poll_once([log], spool, checkpoint)
    with log.open("a") as handle:
        handle.write("".join(f"a{n} {'x' * 40}\n" for n in range(2, 2000)))
    os.rename(log, tmp_path / "app.log.1")
    whole = gzip.compress((tmp_path / "app.log.1").read_bytes())
    (tmp_path / "app.log.1").unlink()
    (tmp_path / "app.log.1.gz").write_bytes(whole[:len(whole) // 2])  # gzip was stopped halfway
    log.write_text("b1\n")
    poll_once([log], spool, checkpoint)
    lines = spooled_lines(spool)
    assert lines[0] == "a1" and lines[-1] == "b1"
    assert len(lines) == len(set(lines))
    assert [line.split()[0] for line in lines[1:-1]] == [f"a{n}" for n in range(2, len(lines))]
    spool.close()
