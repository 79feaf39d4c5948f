"""A copy of a followed file that appears in a tailed folder (logrotate's ``copytruncate``, or ``cp
app.log app.log.1; : > app.log``) holds lines already read: it is not read again, only the lines the
tailer had not read yet are, once, and the copy is kept in the checkpoint so a restart does not read it
either. Another log that only starts like a followed one (the same CSV or W3C header) is read in full,
and rename rotation goes on as before."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest
from mamori_testing import shared_data
from tail_testing import poll_once, spooled_lines

from mamori.collect.spool import Spool
from mamori.collect.tail import Tailer

CSV_HEADER = "timestamp,user,action,source_ip,destination_ip,destination_port,bytes_sent,bytes_received\n"
W3C_HEADER = ("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
              "#Fields: date time s-ip cs-method cs-uri-stem s-port c-ip sc-status\n")


def _append(path: Path, *lines: str) -> None:
    with path.open("a") as handle:
        handle.write("".join(f"{line}\n" for line in lines))


def _truncate(path: Path) -> None:
    """copytruncate's second step: the same file, emptied in place."""
    with path.open("r+b") as handle:
        handle.truncate(0)


def _copytruncate(log: Path, copy: Path) -> None:
    shutil.copyfile(log, copy)
    _truncate(log)


def _setup(tmp_path: Path, first: str = "") -> tuple[Path, Path, Spool, Path]:
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "app.log"
    log.write_text(first)
    return folder, log, Spool(tmp_path / "spool"), tmp_path / "cp.json"


def test_copytruncate_in_a_tailed_folder_stores_every_line_exactly_once(tmp_path: Path) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path)
    _append(log, "a1", "a2")
    tailer = Tailer([folder], spool, checkpoint)
    assert tailer.poll() == 2
    _append(log, "a3")  # written after the last poll, before the rotation
    _copytruncate(log, folder / "app.log.1")
    _append(log, "b1")
    assert tailer.poll() == 2  # a3 from the copy, b1 from the emptied file; a1, a2 not again
    _append(log, "b2")
    assert tailer.poll() == 1
    assert tailer.poll() == 0
    tailer.close()
    assert spooled_lines(spool) == ["a1", "a2", "a3", "b1", "b2"]
    assert tailer.recovered == 1
    spool.close()


@pytest.mark.parametrize("truncate_seen", [True, False], ids=["truncated-at-once", "copy-seen-first"])
def test_a_copy_seen_before_or_after_the_truncation_gives_the_unread_lines_once(
        tmp_path: Path, truncate_seen: bool) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path)
    _append(log, "a1", "a2")
    tailer = Tailer([folder], spool, checkpoint)
    tailer.poll()
    _append(log, "a3", "a4")
    shutil.copyfile(log, folder / "app.log.1")
    if not truncate_seen:
        assert tailer.poll() == 2  # a3, a4 from the file itself; the copy is not read
        _append(log, "a5")  # after the copy, before the truncation: only in the file
        assert tailer.poll() == 1
    _truncate(log)
    _append(log, "b1")
    tailer.poll()
    _append(log, "b2")
    tailer.poll()
    tailer.close()
    expected = ["a1", "a2", "a3", "a4", *([] if truncate_seen else ["a5"]), "b1", "b2"]
    assert spooled_lines(spool) == expected
    spool.close()


def test_copy_and_truncate_by_hand_reads_nothing_twice(tmp_path: Path) -> None:
    """``cp app.log app.log.1; : > app.log``: the shell's truncation opens the file anew, same inode."""
    folder, log, spool, checkpoint = _setup(tmp_path)
    _append(log, *(f"a{n} {'x' * 30}" for n in range(50)))
    tailer = Tailer([folder], spool, checkpoint)
    tailer.poll()
    _append(log, "a50")
    shutil.copy(log, folder / "app.log.1")
    log.write_text("")
    tailer.poll()
    tailer.close()
    assert spooled_lines(spool) == [*(f"a{n} {'x' * 30}" for n in range(50)), "a50"]
    spool.close()


def test_a_copy_seen_half_written_is_not_read_and_the_unread_lines_come_once(tmp_path: Path) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path)
    _append(log, *(f"a{n:03d} {'x' * 50}" for n in range(200)))
    tailer = Tailer([folder], spool, checkpoint)
    tailer.poll()
    _append(log, "a200", "a201")
    data = log.read_bytes()
    copy = folder / "app.log.1"
    copy.write_bytes(data[:len(data) // 2 + 7])  # logrotate copying: half of it so far, cut mid-line
    assert tailer.poll() == 2  # a200, a201 from the file; nothing from the copy
    with copy.open("ab") as handle:
        handle.write(data[len(data) // 2 + 7:])
    assert tailer.poll() == 0
    _truncate(log)
    _append(log, "b1")
    assert tailer.poll() == 1
    tailer.close()
    assert spooled_lines(spool) == [*(f"a{n:03d} {'x' * 50}" for n in range(200)), "a200", "a201", "b1"]
    spool.close()


def test_copytruncate_of_a_utf16_log_in_a_tailed_folder_reads_each_line_once(tmp_path: Path) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path)
    log.write_bytes("開始\r\n".encode("utf-16"))  # with a byte-order mark, as Windows writes it
    tailer = Tailer([folder], spool, checkpoint, encoding="utf-16")
    tailer.poll()
    with log.open("ab") as handle:
        handle.write("ログ 1\r\n".encode("utf-16-le"))
    _copytruncate(log, folder / "app.log.1")
    with log.open("ab") as handle:
        handle.write("ログ 2\r\n".encode("utf-16-le"))
    tailer.poll()
    tailer.close()
    assert spooled_lines(spool) == ["開始", "ログ 1", "ログ 2"]
    spool.close()


@pytest.mark.parametrize("kill_before_checkpoint", [False, True])
def test_copytruncate_across_a_restart_stores_every_line_exactly_once(
        tmp_path: Path, kill_before_checkpoint: bool) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path)
    _append(log, "a1", "a2")
    assert poll_once([folder], spool, checkpoint) == 2
    # stopped; the application writes on and logrotate copies and truncates meanwhile
    _append(log, "a3")
    _copytruncate(log, folder / "app.log.1")
    _append(log, "b1")
    before = checkpoint.read_bytes()
    assert poll_once([folder], spool, checkpoint) == 2
    if kill_before_checkpoint:  # killed after spooling, before that poll's checkpoint was saved
        checkpoint.write_bytes(before)
        poll_once([folder], spool, checkpoint)
    saved = orjson.loads(checkpoint.read_bytes())
    copy = folder / "app.log.1"
    assert {item["path"] for item in saved.values()} == {str(log), str(copy)}  # the copy is kept, at its end
    assert next(item["offset"] for item in saved.values() if item["path"] == str(copy)) == copy.stat().st_size
    _append(log, "b2")
    assert poll_once([folder], spool, checkpoint) == 1
    assert poll_once([folder], spool, checkpoint) == 0
    assert spooled_lines(spool) == ["a1", "a2", "a3", "b1", "b2"]
    spool.close()


def test_a_copy_made_while_the_tailer_was_down_and_not_yet_truncated_is_not_read(tmp_path: Path) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path)
    _append(log, "a1", "a2")
    poll_once([folder], spool, checkpoint)
    _append(log, "a3")
    shutil.copyfile(log, folder / "app.log.1")
    _append(log, "a4")  # after the copy: the file holds more than the copy
    assert poll_once([folder], spool, checkpoint) == 2  # a3, a4 from the file; the copy is taken for its copy
    _truncate(log)  # truncated while down again
    _append(log, "b1")
    assert poll_once([folder], spool, checkpoint) == 1
    assert poll_once([folder], spool, checkpoint) == 0
    assert spooled_lines(spool) == ["a1", "a2", "a3", "a4", "b1"]
    spool.close()


def test_a_copy_compressed_at_the_next_rotation_is_not_read_again(tmp_path: Path) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path)
    _append(log, "a1", "a2")
    tailer = Tailer([folder], spool, checkpoint)
    tailer.poll()
    _append(log, "a3")
    _copytruncate(log, folder / "app.log.1")
    _append(log, "b1")
    tailer.poll()
    # next rotation: app.log.1 -> app.log.2 -> app.log.2.gz, a new copytruncate into app.log.1
    os.rename(folder / "app.log.1", folder / "app.log.2")
    _append(log, "b2")
    _copytruncate(log, folder / "app.log.1")
    with (folder / "app.log.2").open("rb") as source, gzip.open(folder / "app.log.2.gz", "wb") as sink:
        shutil.copyfileobj(source, sink)
    (folder / "app.log.2").unlink()
    _append(log, "c1")
    tailer.poll()
    tailer.close()
    _append(log, "c2")
    poll_once([folder], spool, checkpoint)  # and a restart reads neither copy
    poll_once([folder], spool, checkpoint)
    assert spooled_lines(spool) == ["a1", "a2", "a3", "b1", "b2", "c1", "c2"]
    spool.close()


def _rows(header: str, who: str, count: int) -> list[str]:
    """Data lines of a CSV or W3C (IIS) log, one per second."""
    if header.startswith("#"):
        return [f"2025-01-06 10:00:{n:02d} 10.0.0.1 GET /{who}/{n} 443 10.0.2.{n} 200" for n in range(count)]
    return [f"2025-01-06 10:00:{n:02d},{who},login,10.0.0.{n},10.0.1.1,443,100,200" for n in range(count)]


def _by_file(spool: Spool) -> dict[str, list[str]]:
    """The stored lines per file they were read from."""
    found: dict[str, list[str]] = {}
    for entry in spool.read(0, 1_000_000, 0.05):
        found.setdefault(Path(entry.origin.split(":", 2)[2].rsplit("@", 1)[0]).name, []).extend(entry.records)
    return found


@pytest.mark.parametrize("header", [CSV_HEADER, W3C_HEADER], ids=["csv", "w3c"])
@pytest.mark.parametrize("longer", [False, True], ids=["shorter", "longer"])
def test_another_log_with_the_same_header_is_read_in_full(tmp_path: Path, header: str, longer: bool) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path, header)
    mine = _rows(header, "alice", 5)
    _append(log, *mine)
    tailer = Tailer([folder], spool, checkpoint)
    tailer.poll()
    other = folder / "app.log.1"  # named like a rotated copy; another log with the same header
    theirs = _rows(header, "bob", 20 if longer else 2)
    other.write_text(header + "".join(f"{line}\n" for line in theirs))
    assert (other.stat().st_size > log.stat().st_size) is longer  # holds other bytes at, or before, the offset
    tailer.poll()
    tailer.close()
    assert _by_file(spool) == {"app.log": [*header.splitlines(), *mine], "app.log.1": [*header.splitlines(), *theirs]}
    spool.close()


def test_a_log_holding_only_the_same_header_at_first_is_read_in_full_once_it_has_lines(tmp_path: Path) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path, CSV_HEADER)
    _append(log, "2025-01-06 10:00:00,alice,login,10.0.0.1,10.0.1.1,443,100,200")
    tailer = Tailer([folder], spool, checkpoint)
    tailer.poll()
    other = folder / "other.log"
    other.write_text(CSV_HEADER)  # created, header written, its lines to come
    tailer.poll()
    _append(other, "2025-01-06 11:00:00,bob,logout,10.0.2.1,10.0.3.1,22,5,6")
    tailer.poll()
    tailer.close()
    header = CSV_HEADER.rstrip("\n")
    assert spooled_lines(spool) == [header, "2025-01-06 10:00:00,alice,login,10.0.0.1,10.0.1.1,443,100,200",
                             header, "2025-01-06 11:00:00,bob,logout,10.0.2.1,10.0.3.1,22,5,6"]
    spool.close()


def test_a_file_first_taken_for_a_copy_that_then_holds_other_lines_is_read_from_its_start(tmp_path: Path) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path, CSV_HEADER)
    same = ["2025-01-06 10:00:00,svc,start,10.0.0.1,10.0.1.1,443,0,0"]
    _append(log, *same)
    tailer = Tailer([folder], spool, checkpoint)
    tailer.poll()
    other = folder / "other.log"
    other.write_text(CSV_HEADER + "".join(f"{line}\n" for line in same))  # so far just like app.log
    tailer.poll()
    _append(log, "2025-01-06 10:00:01,alice,login,10.0.0.2,10.0.1.1,443,1,2")
    _append(other, "2025-01-06 11:00:00,bob,logout,10.0.2.1,10.0.3.1,22,5,6")
    tailer.poll()
    tailer.close()
    header = CSV_HEADER.rstrip("\n")
    stored = spooled_lines(spool)
    assert sorted(stored) == sorted([header, *same, "2025-01-06 10:00:01,alice,login,10.0.0.2,10.0.1.1,443,1,2",
                                     header, *same, "2025-01-06 11:00:00,bob,logout,10.0.2.1,10.0.3.1,22,5,6"])
    spool.close()


def _read_whole(folder: Path, spool: Spool, checkpoint: Path) -> int:
    """Poll until the EVTX files in ``folder`` are read (each once its size is stable)."""
    tailer = Tailer([folder], spool, checkpoint)
    try:
        return sum(tailer.poll() for _ in range(3))
    finally:
        tailer.close()


def test_another_evtx_log_with_the_same_file_header_is_read_in_full(tmp_path: Path) -> None:
    samples = [p for p in sorted(shared_data("evtx-attack-samples").rglob("*.evtx"))
               if 20_000 < p.stat().st_size < 300_000]
    first, second = samples[0], samples[1]
    alone = Spool(tmp_path / "alone")
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "b.evtx").write_bytes(second.read_bytes())
    expected = _read_whole(tmp_path / "only", alone, tmp_path / "alone.json")
    alone.close()
    assert expected > 0
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "Security.evtx").write_bytes(first.read_bytes())
    spool = Spool(tmp_path / "spool")
    assert _read_whole(folder, spool, tmp_path / "cp.json") > 0
    (folder / "Security.evtx.1").write_bytes(second.read_bytes())  # named like a rotated copy, ElfFile too
    assert _read_whole(folder, spool, tmp_path / "cp.json") == expected
    spool.close()


def test_rename_rotation_in_a_tailed_folder_is_unchanged(tmp_path: Path) -> None:
    folder, log, spool, checkpoint = _setup(tmp_path, CSV_HEADER)
    _append(log, "2025-01-06 10:00:00,alice,login,10.0.0.1,10.0.1.1,443,100,200")
    tailer = Tailer([folder], spool, checkpoint)
    tailer.poll()
    _append(log, "2025-01-06 10:00:01,alice,read,10.0.0.1,10.0.1.1,443,1,2")
    os.rename(log, folder / "app.log.1")  # the same inode under the new name
    log.write_text(CSV_HEADER)  # the new file starts with the same header
    _append(folder / "app.log.1", "2025-01-06 10:00:02,alice,write,10.0.0.1,10.0.1.1,443,3,4")  # still open
    tailer.poll()
    _append(log, "2025-01-06 10:00:03,bob,login,10.0.0.2,10.0.1.1,443,5,6")
    tailer.poll()
    tailer.close()
    header = CSV_HEADER.rstrip("\n")
    assert _by_file(spool) == {  # the renamed file read on under its new name, the new one from its start
        "app.log": [header, "2025-01-06 10:00:00,alice,login,10.0.0.1,10.0.1.1,443,100,200",
                    header, "2025-01-06 10:00:03,bob,login,10.0.0.2,10.0.1.1,443,5,6"],
        "app.log.1": ["2025-01-06 10:00:01,alice,read,10.0.0.1,10.0.1.1,443,1,2",
                      "2025-01-06 10:00:02,alice,write,10.0.0.1,10.0.1.1,443,3,4"]}
    assert tailer.recovered == 0
    spool.close()


CHILD = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from mamori.collect.spool import Spool
    from mamori.collect.tail import Tailer

    if __name__ == "__main__":
        folder = Path(sys.argv[1])
        tailer = Tailer([Path(sys.argv[2])], Spool(folder / "spool"), folder / "cp.json", interval=0.02)
        tailer.poll()
        tailer.start()
        (folder / "ready").touch()
        while True:
            time.sleep(1)
''')


def _start(tmp_path: Path, folder: Path) -> subprocess.Popen[bytes]:
    (tmp_path / "ready").unlink(missing_ok=True)
    child = subprocess.Popen([sys.executable, str(tmp_path / "child.py"), str(tmp_path), str(folder)])
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists():
        assert child.poll() is None and time.monotonic() < deadline, "the tailer did not start"
        time.sleep(0.02)
    return child


def _gzip(path: Path, target: Path) -> None:
    with path.open("rb") as source, gzip.open(target, "wb") as sink:
        shutil.copyfileobj(source, sink)
    path.unlink()


def _logrotate_copytruncate(log: Path, pause: float, delaycompress: bool) -> None:
    """logrotate with ``copytruncate`` and ``rotate 2``: older copies move up a number, the file is
    copied to ``.1`` (in two writes, a pause between: the tailer may see the copy half written) and
    truncated; the copy is gzipped at once, or (``delaycompress``) at the next rotation."""
    folder = log.parent
    (folder / f"{log.name}.2.gz").unlink(missing_ok=True)
    first = folder / f"{log.name}.1"
    if (folder / f"{log.name}.1.gz").exists():
        os.rename(folder / f"{log.name}.1.gz", folder / f"{log.name}.2.gz")
    if first.exists():
        os.rename(first, folder / f"{log.name}.2")
        _gzip(folder / f"{log.name}.2", folder / f"{log.name}.2.gz")
    data = log.read_bytes()
    with first.open("wb") as copy:
        copy.write(data[:len(data) // 2])
        copy.flush()
        time.sleep(pause)
        copy.write(data[len(data) // 2:])
    _truncate(log)
    if not delaycompress:
        _gzip(first, folder / f"{log.name}.1.gz")


@pytest.mark.parametrize("delaycompress", [True, False], ids=["delaycompress", "compress"])
def test_copytruncate_in_a_tailed_folder_survives_kills_exactly_once(tmp_path: Path, delaycompress: bool) -> None:
    (tmp_path / "child.py").write_text(CHILD, encoding="utf-8")
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "app.log"
    log.write_text(CSV_HEADER)
    written = [CSV_HEADER.rstrip("\n")]
    chance = random.Random(11)
    child: subprocess.Popen[bytes] | None = _start(tmp_path, folder)
    rotations = kills = 0
    try:
        for step in range(240):
            lines = [f"2025-01-06 10:{step // 60:02d}:{step % 60:02d},user{n},login,10.0.0.{n},10.0.1.1,443,{step},{n}"
                     for n in range(chance.randint(1, 6))]
            _append(log, *lines)
            written += lines
            if step % 20 == 19:
                rotations += 1
                _logrotate_copytruncate(log, chance.uniform(0.0, 0.06), delaycompress)
            if step % 30 == 14 and child is not None:
                time.sleep(chance.uniform(0.0, 0.08))
                child.send_signal(signal.SIGKILL)
                child.wait()
                kills += 1
                child = None
            elif child is None and step % 30 == 24:  # down for a few steps: a rotation may happen meanwhile
                child = _start(tmp_path, folder)
            time.sleep(0.005)
        if child is None:
            child = _start(tmp_path, folder)
        got: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.5)
            child.send_signal(signal.SIGKILL)
            child.wait()
            spool = Spool(tmp_path / "spool")
            got = spooled_lines(spool)
            spool.close()
            if len(got) >= len(written):
                break
            child = _start(tmp_path, folder)
        child = None
    finally:
        if child is not None:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert kills >= 7 and rotations >= 11
    assert sorted(got) == sorted(written)  # every line once: none lost, none twice
