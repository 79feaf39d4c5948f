"""Tailed files are read with the reader ``mamori hunt`` picks for them (or the one ``tail_source``
names): an auditd log and a Zeek log give the hunt's events, Zeek header lines never become events
(also in chunks appended later), and a file no reader claims is spooled as before."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import orjson
import polars as pl
import pytest
from mamori_testing import REPO

from mamori.collect.spool import Entry, Spool, source_format
from mamori.collect.tail import Tailer
from mamori.errors import MamoriError
from mamori.events import schema
from mamori.service.parse import Parsed, parse_entries
from mamori.sources.base import ReadOptions
from mamori.sources.registry import get_source

SOURCES = REPO / "tests" / "fixtures" / "sources"
IDS = (schema.UID, schema.ORIGIN, schema.OFFSET)
OPTIONS = ReadOptions(default_year=2025)


def _entries(spool: Spool) -> list[Entry]:
    return list(spool.read(0, 1_000_000, 0.05))


def _tailed_once(path: Path, tmp_path: Path) -> list[Entry]:
    """The spool entries of one poll of ``path`` by a fresh tailer."""
    spool = Spool(tmp_path / "spool")
    tailer = Tailer([path], spool, tmp_path / "cp.json")
    tailer.poll()
    tailer.close()
    entries = _entries(spool)
    spool.close()
    return entries


def _parsed(entries: list[Entry]) -> Parsed:
    return parse_entries([e for e in entries if e.fmt != "quarantine"], OPTIONS)


def _hunt(path: Path, source: str) -> pl.DataFrame:
    return pl.concat([r.frame for r in get_source(source).read(path, OPTIONS) if r.frame.height],
                     how="diagonal_relaxed")


def _assert_same_events(live: pl.DataFrame, hunted: pl.DataFrame) -> None:
    assert live.height == hunted.height
    for column in hunted.columns:
        if column not in IDS:
            assert live.get_column(column).to_list() == hunted.get_column(column).to_list(), column


def test_tailed_auditd_and_zeek_logs_give_the_events_a_hunt_gives(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    for name in ("audit.log", "dns.log"):
        shutil.copy(SOURCES / name, folder / name)
    entries = _tailed_once(folder, tmp_path)
    assert sorted(e.fmt for e in entries) == [source_format("auditd"), source_format("zeek")]
    parsed = _parsed(entries)
    for name, source in (("audit.log", "auditd"), ("dns.log", "zeek")):
        live = parsed.frame.filter(pl.col(schema.SOURCE) == source)
        _assert_same_events(live, _hunt(folder / name, source))
        assert live.get_column(schema.TIME).null_count() == 0
    assert not parsed.frame.get_column(schema.RAW).str.starts_with("#").any()
    hunt_problems = [p.raw for name, source in (("audit.log", "auditd"), ("dns.log", "zeek"))
                     for r in get_source(source).read(folder / name, OPTIONS) for p in r.problems]
    assert sorted(q.raw for q in parsed.quarantined) == sorted(hunt_problems)  # the hunt refuses them too
    assert "broken\tline" in hunt_problems


def test_lines_appended_to_a_zeek_log_are_read_with_its_header(tmp_path: Path) -> None:
    log = tmp_path / "dns.log"
    header = [line for line in (SOURCES / "dns.log").read_text(encoding="utf-8").splitlines()
              if line.startswith("#") and not line.startswith("#close")]
    first = "1320279566.452687\tC1\t10.0.0.2\t5353\t10.0.0.53\t53\tudp\tone.example\tA\tNOERROR\t-\tF"
    log.write_text("\n".join([*header, first]) + "\n", encoding="utf-8")
    spool = Spool(tmp_path / "spool")
    tailer = Tailer([log], spool, tmp_path / "cp.json")
    assert tailer.poll() == len(header) + 1
    later = first.replace("C1", "C2").replace("one.example", "two.example")
    with log.open("a", encoding="utf-8") as handle:
        handle.write(later + "\n")
    assert tailer.poll() == 1  # the header sent again with the chunk is not counted as lines read
    tailer.close()
    entries = _entries(spool)
    spool.close()
    assert entries[1].records == (*header, later)
    parsed = _parsed(entries)
    assert parsed.frame.get_column("query").to_list() == ["one.example", "two.example"]
    assert parsed.frame.get_column("zeek_path").to_list() == ["dns", "dns"]
    assert parsed.quarantined == []


def test_a_tailed_cloudtrail_envelope_gives_one_event_per_record(tmp_path: Path) -> None:
    document = orjson.loads(gzip.decompress((SOURCES / "cloudtrail_records.json.gz").read_bytes()))
    log = tmp_path / "trail.json"
    log.write_bytes(orjson.dumps(document) + b"\n")
    entries = _tailed_once(log, tmp_path)
    assert [e.fmt for e in entries] == [source_format("cloudtrail")]
    parsed = _parsed(entries)
    assert parsed.frame.get_column("eventName").to_list() == [r["eventName"] for r in document["Records"]]
    assert parsed.frame.get_column(schema.TIME).null_count() == 0


def test_tail_source_names_the_reader_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "device.log"
    log.write_text("%ASA-6-302013: Built inbound TCP connection 1 for outside:198.51.100.2/51000 "
                   "(198.51.100.2/51000) to inside:10.0.0.8/443 (203.0.113.8/443)\nsecond line, not ASA\n")
    spool = Spool(tmp_path / "spool")
    tailer = Tailer([log], spool, tmp_path / "cp.json", source="cisco_asa")
    tailer.poll()
    tailer.close()
    entries = _entries(spool)
    assert [e.fmt for e in entries] == [source_format("cisco_asa")]
    assert entries[0].origin.startswith("file:cisco_asa:")
    parsed = _parsed(entries)
    assert parsed.frame.get_column(schema.SOURCE).to_list() == ["cisco_asa", "cisco_asa"]  # no sniffing
    assert parsed.frame.get_column("src_ip").to_list() == ["198.51.100.2", None]
    with pytest.raises(MamoriError, match="not-a-source"):
        Tailer([log], spool, tmp_path / "cp2.json", source="not-a-source")
    spool.close()


def test_a_file_no_reader_claims_is_spooled_as_json_or_syslog_lines(tmp_path: Path) -> None:
    plain = tmp_path / "app.log"
    plain.write_text("service started\nCEF:0|V|P|1|42|Name|5|src=10.0.0.1\n")
    entries = _tailed_once(plain, tmp_path)
    assert [(e.fmt, e.origin.split(":")[1]) for e in entries] == [("syslog", "syslog")]
    parsed = _parsed(entries)
    assert parsed.frame.get_column(schema.SOURCE).to_list() == ["syslog", "cef"]  # each line to its reader


def test_a_syslog_file_sends_each_message_to_the_reader_of_its_product(tmp_path: Path) -> None:
    relay = tmp_path / "remote.log"  # a relay's file: several devices' messages behind syslog headers
    relay.write_text("<38>Jan  2 03:04:06 web1 sshd[812]: Accepted publickey for alice from 192.0.2.4 port 5022\n"
                     "<134>Jan  2 03:04:07 fw01 CEF:0|V|P|1|42|Name|5|src=10.0.0.1 act=blocked\n")
    entries = _tailed_once(relay, tmp_path)
    assert [(e.fmt, e.origin.split(":")[1]) for e in entries] == [("syslog", "syslog")]
    parsed = _parsed(entries)
    assert parsed.frame.get_column(schema.SOURCE).to_list() == ["syslog", "cef"]
    assert parsed.frame.get_column("src").to_list() == [None, "10.0.0.1"]


def test_a_pretty_printed_json_export_is_read_whole_once_it_stops_growing(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(SOURCES / "gcp_audit_pretty.json", drop / "export.json")
    spool = Spool(tmp_path / "spool")
    tailer = Tailer([drop], spool, tmp_path / "cp.json")
    assert tailer.poll() == 0  # size not yet seen twice: it may still be being written
    hunted = _hunt(SOURCES / "gcp_audit_pretty.json", "gcp_audit")
    assert tailer.poll() == hunted.height
    assert tailer.poll() == 0
    tailer.close()
    entries = _entries(spool)
    spool.close()
    assert [e.fmt for e in entries] == [source_format("gcp_audit")]
    parsed = _parsed(entries)
    _assert_same_events(parsed.frame, hunted)
    assert parsed.quarantined == []
