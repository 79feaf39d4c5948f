"""Damaged ``.evtx`` files: every complete record is still read, and each loss is reported with the file,
the chunk, the byte offset where reading stopped or resumed, and how many records were lost.

The damaged copies are made in a temporary folder from real samples (skipped when ``../shared/data`` is
absent). An EVTX file is a 4096-byte header then 65536-byte chunks; a chunk is a 512-byte header then
records, each ``**\\0\\0``, its size (4 bytes), its id (8 bytes) ... and its size again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mamori_testing import shared_data

from mamori.sources.base import ReadProblem
from mamori.sources.evtx import read_evtx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHUNK = 65536


def _babyshark() -> bytes:
    """One chunk of 33 records (ids 1-33) ending at byte offset 46600."""
    path: Path = shared_data("evtx-attack-samples", "Credential Access", "babyshark_mimikatz_powershell.evtx")
    return path.read_bytes()


def _panache() -> bytes:
    """17 chunks, 565 records (ids 1-565); chunk 1 starts at byte offset 69632 and holds ids 45-87."""
    path: Path = shared_data("evtx-attack-samples", "AutomatedTestingTools", "PanacheSysmon_vs_AtomicRedTeam01.evtx")
    return path.read_bytes()


def _record_offsets(data: bytes | bytearray, chunk: int) -> list[int]:
    """File offsets of the records of chunk ``chunk``, following each record's size."""
    start = 4096 + chunk * CHUNK
    offsets, at = [], start + 512
    while data[at:at + 4] == b"**\x00\x00":
        offsets.append(at)
        at += int.from_bytes(data[at + 4:at + 8], "little")
    return offsets


def _read(path: Path) -> tuple[list[int], list[ReadProblem]]:
    """The record ids read (``_offset``) and the problems met."""
    results = list(read_evtx(path))
    ids = sorted(i for r in results if r.frame.height for i in r.frame.get_column("_offset").to_list())
    return ids, [p for r in results for p in r.problems]


def _write(tmp_path: Path, name: str, data: bytes | bytearray) -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def test_file_cut_mid_chunk_yields_the_complete_records_of_the_partial_chunk(tmp_path: Path) -> None:
    cut = _write(tmp_path, "cut.evtx", _babyshark()[:24096])
    ids, problems = _read(cut)
    assert ids == list(range(1, 17))
    [problem] = problems
    assert problem.where == f"{cut}@offset 23000" and not problem.fatal
    assert problem.reason == ("file truncated at byte offset 24096, inside chunk 0 (byte offset 4096): reading "
                              "stopped at byte offset 23000 after its last complete record; 16 of its 33 "
                              "records read, 17 lost")


def test_file_cut_in_the_free_space_of_its_only_chunk_loses_no_record(tmp_path: Path) -> None:
    cut = _write(tmp_path, "cut.evtx", _babyshark()[:50000])
    ids, problems = _read(cut)
    assert ids == list(range(1, 34))
    assert [p.reason.rsplit("; ", 1)[1] for p in problems] == ["all 33 of its records read"]
    assert "truncated at byte offset 50000, inside chunk 0 (byte offset 4096)" in problems[0].reason


def test_file_cut_mid_chunk_of_many_keeps_the_whole_chunks_and_the_complete_records_after(tmp_path: Path) -> None:
    cut = _write(tmp_path, "cut.evtx", _panache()[:300_000])
    ids, problems = _read(cut)
    assert ids == list(range(1, 182))  # chunks 0-3 (ids 1-162) and 19 of chunk 4's 40 records
    assert [p.reason for p in problems] == [
        "file truncated at byte offset 300000, inside chunk 4 (byte offset 266240): reading stopped at byte offset "
        "298424 after its last complete record; 19 of its 40 records read, 21 lost",
        "file truncated at byte offset 300000: its header declares 15 chunks, the file holds 5 (the last cut short); "
        "the records of the missing chunks are lost: 384 in all after record 181, going by the header's next "
        "record id"]


def test_file_cut_at_a_chunk_boundary_counts_the_lost_records_from_its_header(tmp_path: Path) -> None:
    cut = _write(tmp_path, "cut.evtx", _panache()[:4096 + 3 * CHUNK])
    ids, problems = _read(cut)
    assert ids == list(range(1, 125))
    [problem] = problems
    assert problem.where == f"{cut}@offset 200704"
    assert "declares 15 chunks, the file holds 3;" in problem.reason
    assert "lost: 441 in all after record 124" in problem.reason


def test_file_cut_inside_a_chunk_header_counts_that_chunks_records_lost(tmp_path: Path) -> None:
    cut = _write(tmp_path, "cut.evtx", _panache()[:4096 + 3 * CHUNK + 100])
    ids, problems = _read(cut)
    assert ids == list(range(1, 125))
    assert problems[0].where == f"{cut}@offset 200804"
    assert problems[0].reason == ("file truncated at byte offset 200804, inside the header of chunk 3 (byte offset "
                                  "200704): its 38 records are lost")
    assert "lost: 441 in all after record 124" in problems[1].reason


def test_file_cut_inside_its_header_is_one_fatal_problem_naming_the_offset(tmp_path: Path) -> None:
    cut = _write(tmp_path, "cut.evtx", _babyshark()[:2000])
    ids, problems = _read(cut)
    assert ids == []
    assert [(p.where, p.fatal) for p in problems] == [(str(cut), True)]
    assert "truncated at byte offset 2000, inside its 4096-byte file header" in problems[0].reason


def test_empty_file_is_one_fatal_problem(tmp_path: Path) -> None:
    empty = _write(tmp_path, "empty.evtx", b"")
    ids, problems = _read(empty)
    assert ids == []
    assert [(p.where, p.fatal) for p in problems] == [(str(empty), True)]
    assert "empty (0 bytes)" in problems[0].reason


def test_record_with_a_damaged_size_is_mended_and_read(tmp_path: Path) -> None:
    data = bytearray(_panache())
    broken = _record_offsets(data, 1)[3]  # id 48
    data[broken + 4:broken + 8] = (12345).to_bytes(4, "little")  # the parser alone loses ids 49-87
    path = _write(tmp_path, "bad.evtx", data)
    ids, problems = _read(path)
    assert ids == list(range(1, 566))
    assert (f"{path}@offset {broken}", f"chunk 1 (byte offset 69632): record at byte offset {broken} has a "
                                       "damaged size; read anyway") in [(p.where, p.reason) for p in problems]


def test_record_with_a_damaged_header_in_chunk_1_is_skipped_and_reading_resumes_after_it(tmp_path: Path) -> None:
    data = bytearray(_panache())
    broken = _record_offsets(data, 1)[3]  # id 48, 1632 bytes long
    data[broken:broken + 16] = bytes(16)  # signature, size and id all gone
    path = _write(tmp_path, "bad.evtx", data)
    ids, problems = _read(path)
    assert ids == [i for i in range(1, 566) if i != 48]
    reasons = [(p.where, p.reason) for p in problems]
    assert (f"{path}@offset {broken}", f"chunk 1 (byte offset 69632): damaged record at byte offset {broken}; "
                                       f"reading resumed at byte offset {broken + 1632}") in reasons
    assert reasons[-1][1] == "chunk 1 (byte offset 69632): 42 of its 43 records read, 1 lost"


def test_zeroed_stretch_in_chunk_1_loses_only_the_records_it_covers(tmp_path: Path) -> None:
    data = bytearray(_panache())
    data[4096 + CHUNK + 20000:4096 + CHUNK + 22000] = bytes(2000)
    ids, problems = _read(_write(tmp_path, "bad.evtx", data))
    assert len(ids) == 563 and set(range(1, 45)) | set(range(88, 566)) <= set(ids)
    assert problems[-1].reason == "chunk 1 (byte offset 69632): 41 of its 43 records read, 2 lost"
    assert any("damaged record at byte offset 88432; reading resumed at byte offset 92768" in p.reason
               for p in problems)


def test_record_with_a_damaged_signature_is_mended_and_read(tmp_path: Path) -> None:
    data = bytearray(_panache())
    broken = _record_offsets(data, 1)[3]
    data[broken:broken + 4] = bytes(4)
    ids, problems = _read(_write(tmp_path, "bad.evtx", data))
    assert ids == list(range(1, 566))  # the parser alone stopped chunk 1 there and lost 40 records silently
    assert any(f"record at byte offset {broken} has a damaged signature; read anyway" in p.reason for p in problems)


def test_flipped_byte_fails_the_chunk_checksum_and_its_records_are_read_with_a_warning(tmp_path: Path) -> None:
    data = bytearray(_panache())
    data[4096 + CHUNK + 9000] ^= 0x01
    path = _write(tmp_path, "bad.evtx", data)
    ids, problems = _read(path)
    assert ids == list(range(1, 566))
    assert problems[0].where == f"{path}@offset 69632"
    assert "chunk 1 (byte offset 69632): its records fail their CRC32 checksum" in problems[0].reason


def test_damaged_chunk_name_table_no_longer_loses_the_chunk(tmp_path: Path) -> None:
    data = bytearray(_panache())
    data[4096 + CHUNK + 200] ^= 0x01  # the parser alone drops all 43 records of chunk 1
    ids, _ = _read(_write(tmp_path, "bad.evtx", data))
    assert ids == list(range(1, 566))


def test_damaged_chunk_signature_and_file_header_are_read_past(tmp_path: Path) -> None:
    data = bytearray(_panache())
    data[0] = 0  # the parser alone refuses the whole file
    data[4096 + CHUNK] = 0
    path = _write(tmp_path, "bad.evtx", data)
    ids, problems = _read(path)
    assert ids == list(range(1, 566))
    reasons = [p.reason for p in problems]
    assert "damaged EVTX file header (no ElfFile signature); its chunks are read without it" in reasons
    assert "chunk 1 (byte offset 69632): chunk signature damaged; read by rebuilding the chunk" in reasons


def test_scrambled_chunk_is_counted_lost_from_the_chunks_either_side(tmp_path: Path) -> None:
    data = bytearray(_panache())
    for offset in range(200_000, 260_000, 7):  # chunk 3 (byte offset 200704, ids 125-162) and its header
        data[offset] ^= 0x5A
    path = _write(tmp_path, "bad.evtx", data)
    ids, problems = _read(path)
    assert ids == [i for i in range(1, 566) if not 125 <= i <= 162]
    assert problems[0].where == f"{path}@chunk 3 (byte offset 200704)"
    assert problems[-1].reason.startswith("chunk 3 (byte offset 200704): its header is damaged; 0 records read, "
                                          "38 lost going by the chunks either side")


def test_hunt_over_damaged_files_reads_what_is_readable_and_exits_incomplete(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    _write(logs, "cut.evtx", _babyshark()[:24096])
    _write(logs, "empty.evtx", b"")
    run = subprocess.run([sys.executable, "-m", "mamori", "hunt", str(logs), "--rules", str(FIXTURES / "rules"),
                          "--format", "jsonl", "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stderr
    stderr = " ".join(run.stderr.split())
    assert "cut.evtx" in stderr and "byte offset 23000" in stderr and "17 lost" in stderr
    assert "empty.evtx" in stderr
