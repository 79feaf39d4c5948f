"""The live parse path reads every entry with the reader ``mamori hunt`` uses for the same data: syslog
messages go to the reader of the product inside them (CEF, FortiGate, ASA, ...), ``source:<name>``
entries to that source's reader, and a replayed spool entry parses to the very same events."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
import yaml
from mamori_testing import REPO, SHARED_DATA

from mamori.collect.spool import Entry, Spool, source_format
from mamori.events import schema
from mamori.service.message_routes import route_messages
from mamori.service.parse import Parsed, parse_entries
from mamori.sources.base import ReadOptions
from mamori.sources.batch import PARSERS
from mamori.sources.registry import all_sources, get_source

SOURCES = REPO / "tests" / "fixtures" / "sources"
RAW_LOGS = SHARED_DATA / "raw-logs"
IDS = (schema.UID, schema.ORIGIN, schema.OFFSET)
OPTIONS = ReadOptions(default_year=2025)


def _case_lines() -> Iterator[tuple[str, str]]:
    """(source of the cases file, input line) for every one-line input of the sources' case files."""
    for path in sorted(SOURCES.glob("*.cases.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in document["cases"]:
            given = case.get("input")
            for line in given if isinstance(given, list) else [given]:
                if isinstance(line, str) and line.strip() and "\n" not in line.strip():
                    yield document["source"], line


def _hunt_choice(line: str) -> str | None:
    """The source ``sniff_source`` picks for a file holding only ``line`` (None: no source claims it)."""
    head = line.encode()[:8192]
    claims = [s for s in all_sources().values() if _claims(s.sniff, head)]
    return max(claims, key=lambda s: s.priority).name if claims else None


def _claims(sniff: Any, head: bytes) -> bool:
    try:
        return bool(sniff(head, ""))
    except Exception:
        return False


def _live(lines: list[str], fmt: str = "syslog", origin: str = "syslog+tcp://192.0.2.9") -> Parsed:
    return parse_entries([Entry(fmt, origin, tuple(lines), time.time_ns(), None, 3)], OPTIONS)


def _hunt(lines: list[str], source: str, folder: Path) -> pl.DataFrame:
    """What ``mamori hunt`` gives for a file of ``lines`` read with the reader of ``source``."""
    path = folder / f"{source}.log"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    frames = [r.frame for r in get_source(source).read(path, OPTIONS) if r.frame.height]
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]


def _same_events(live: pl.DataFrame, hunted: pl.DataFrame) -> None:
    """The live rows hold the hunt's events: every field the hunt gives, with the same values (ids
    aside: they name the spool position, not the file line), and no field the hunt does not give."""
    assert live.height == hunted.height
    for column in hunted.columns:
        if column not in IDS:
            assert live.get_column(column).to_list() == hunted.get_column(column).to_list(), column
    extra = [c for c in live.columns if c not in hunted.columns and live.get_column(c).null_count() < live.height]
    assert extra == []


def _vendor_lines() -> list[tuple[str, str]]:
    """Sample lines of the products that arrive over syslog, with the source a hunt would read each as."""
    picked: list[tuple[str, str]] = []
    for source, line in _case_lines():
        choice = _hunt_choice(line)
        if choice == source and choice in PARSERS and not line.lstrip().startswith(("{", "[")):
            picked.append((choice, line))
    return picked


def test_live_syslog_cef_lines_get_their_fields() -> None:
    cef = ("<134>Feb 28 18:20:54 fw01 CEF:0|Vendor|Product|2.0|AUTH|Logon failed|3|rt=Feb 28 2021 18:20:54 "
           "suser=tanaka src=192.0.2.5")
    asa = ("<166>Jun 07 2025 17:31:57: %ASA-2-106001: Inbound TCP connection denied from 198.51.100.2/4321 to "
           "10.0.0.8/22 flags SYN  on interface outside")
    forti = ('<189>Jan  2 03:04:05 fgt logid="0100032001" type="event" subtype="system" level="information" '
             'logdesc="Admin login successful" user="admin" ui="https(10.0.0.9)" status="success" reason=""')
    sshd = "<38>Jan  2 03:04:06 web1 sshd[812]: Failed password for root from 203.0.113.9 port 5022 ssh2"
    parsed = _live([cef, asa, forti, sshd])
    rows = parsed.frame.to_dicts()
    assert [r[schema.SOURCE] for r in rows] == ["cef", "cisco_asa", "fortigate", "syslog"]
    assert (rows[0]["suser"], rows[0]["src"], rows[0]["name"]) == ("tanaka", "192.0.2.5", "Logon failed")
    assert rows[0]["hostname"] == "fw01"
    assert rows[1]["src_ip"] == "198.51.100.2" and rows[1]["dst_port"] == "22"
    assert (rows[2]["logid"], rows[2]["user"], rows[2]["status"]) == ("0100032001", "admin", "success")
    assert rows[3]["program"] == "sshd"
    assert all(r[schema.TIME] is not None for r in rows)
    assert all(r[schema.RAW] == line for r, line in zip(rows, [cef, asa, forti, sshd], strict=True))
    assert parsed.quarantined == []


def test_live_syslog_lines_of_every_product_get_the_events_a_hunt_gives(tmp_path: Path) -> None:
    samples = _vendor_lines()
    assert {"cef", "leef", "fortigate", "cisco_asa", "paloalto", "checkpoint", "juniper", "esxi", "squid",
            "bind", "auditd", "webaccess"} <= {s for s, _ in samples}
    parsed = _live([line for _, line in samples])
    assert parsed.frame.get_column(schema.SOURCE).to_list() == [s for s, _ in samples]
    for source in sorted({s for s, _ in samples}):
        lines = [line for s, line in samples if s == source]
        live = parsed.frame.filter(pl.col(schema.SOURCE) == source)
        _same_events(live, _hunt(lines, source, tmp_path))


def test_syslog_message_routing_agrees_with_the_hunt_sniffers_on_every_sample_line() -> None:
    lines = [line for _, line in _case_lines()]
    wrapped = [f"<134>Nov 29 12:00:00 fw01 {line}" for line in lines if not line.startswith(("<", "{", "["))]
    tricky = ['<134>Nov 29 12:00:00 fw01 [01/02/2024 10:00:00] "Palo Alto Networks" x',  # overlapping marks
              'device="SFW" date=2024-01-01 time=10:00:00 device_name="XG" log_type="Firewall" status="Allow"',
              '<30>Nov 29 12:00:00 fw01 device="SFW" date=2024-01-01 time=10:00:00 log_type="Firewall" a=b']
    texts = lines + wrapped + tricky
    routes = route_messages(pl.Series(texts))
    routed = {row: source for source, rows in routes.items() for row in rows}
    expected = {row: _hunt_choice(text) or "syslog" for row, text in enumerate(texts)}
    windows = {row for row, source in expected.items() if source == "winjson"}  # read before routing
    assert {r: s for r, s in routed.items() if r not in windows} == {r: s for r, s in expected.items()
                                                                      if r not in windows}
    assert len(set(expected.values())) > 15
    assert [routed[len(texts) - 3 + i] for i in range(3)] == ["paloalto", "keyvalue", "syslog"]


def test_syslog_message_routing_agrees_with_the_hunt_sniffers_on_real_device_logs() -> None:
    if not RAW_LOGS.is_dir():
        pytest.skip(f"the real device samples are not here ({RAW_LOGS})")
    texts: list[str] = []
    for path in sorted(RAW_LOGS.glob("*.jsonl")):
        for record in path.read_text(encoding="utf-8").splitlines():
            message = orjson.loads(record).get("message")
            if isinstance(message, str) and message.strip():
                first = message.split("\n", 1)[0]
                texts.append(first)
                if not first.startswith(("<", "{", "[")):
                    texts.append(f"<134>Nov 29 12:00:00 fw01 {first}")
    routes = route_messages(pl.Series(texts))
    routed = {row: source for source, rows in routes.items() for row in rows}
    differ = [(texts[row][:120], routed[row], _hunt_choice(texts[row]))
              for row in range(len(texts)) if routed[row] != (_hunt_choice(texts[row]) or "syslog")
              and _hunt_choice(texts[row]) != "winjson"]
    assert differ == []
    assert len(routes) > 15


def test_windows_events_in_syslog_keep_their_place_among_routed_lines() -> None:
    event = {"EventID": 4688, "Channel": "Security", "Computer": "WS1", "NewProcessName": "C:\\cmd.exe",
             "CommandLine": "cmd /c whoami", "TimeCreated": "2025-06-01T00:00:00Z"}
    windows = "<14>1 2025-06-01T00:00:00Z WS1 nxlog - - - " + orjson.dumps(event).decode()
    cef = "CEF:0|V|P|1|42|Name|5|src=10.0.0.1 act=blocked"
    sshd = "<38>Jan  2 03:04:06 web1 sshd[812]: Accepted publickey for alice from 192.0.2.4 port 5022 ssh2"
    parsed = _live([cef, windows, sshd, windows, cef])
    assert parsed.frame.get_column(schema.SOURCE).to_list() == ["cef", "winjson", "syslog", "winjson", "cef"]
    assert parsed.frame.get_column(schema.OFFSET).to_list() == [3_000_000 + i for i in range(5)]
    assert parsed.frame.filter(pl.col(schema.SOURCE) == "winjson").get_column("CommandLine").to_list() == [
        "cmd /c whoami"] * 2


def test_a_source_entry_parses_records_with_that_sources_reader(tmp_path: Path) -> None:
    document = orjson.loads(gzip.decompress((SOURCES / "cloudtrail_records.json.gz").read_bytes()))
    records = [orjson.dumps(r).decode() for r in document["Records"]]
    parsed = _live(records, source_format("cloudtrail"), "http:cloudtrail:batch-1")
    hunted = [r.frame for r in get_source("cloudtrail").read(SOURCES / "cloudtrail_records.json.gz", OPTIONS)]
    _same_events(parsed.frame, pl.concat(hunted, how="diagonal_relaxed"))
    assert parsed.frame.get_column(schema.TIME).null_count() == 0
    assert "class_uid" in parsed.frame.columns  # OCSF fields, as a hunt gives


def test_a_replayed_spool_entry_parses_to_the_same_events_and_old_entries_still_read(tmp_path: Path) -> None:
    cef = "<134>Feb 28 18:20:54 fw01 CEF:0|Vendor|Product|2.0|AUTH|Logon failed|3|suser=tanaka src=192.0.2.5"
    okta_record = next(line for _, line in _case_lines() if '"eventType"' in line and '"displayMessage"' in line)
    entries = [Entry("syslog", "syslog+tcp://192.0.2.9", (cef, "not a product line"), 1),
               Entry(source_format("okta"), "http:okta:key-1", (okta_record, "{broken"), 2, "key-1"),
               Entry(source_format("no_such_source"), "http:x:u", ("a",), 3)]
    spool = Spool(tmp_path / "spool")
    for entry in entries:
        spool.append_wait(entry)
    before = parse_entries(list(spool.read(0, 100, 0.05)), OPTIONS)
    spool.close()
    reopened = Spool(tmp_path / "spool")  # as after a crash: the entries come back from the disk
    after = parse_entries(list(reopened.read(0, 100, 0.05)), OPTIONS)
    reopened.close()
    assert before.frame.equals(after.frame)
    assert before.frame.get_column(schema.SOURCE).to_list() == ["cef", "syslog", "okta"]
    assert sorted((q.where, q.reason[:20]) for q in after.quarantined) == [
        ("http:okta:key-1#1", "not valid JSON: unex"),
        ("http:x:u", "no reader for payloa")]
    assert before.quarantined == after.quarantined


def test_a_zeek_tsv_entry_reads_its_header_lines_and_never_stores_them(tmp_path: Path) -> None:
    lines = (SOURCES / "dns.log").read_text(encoding="utf-8").splitlines()
    parsed = _live(lines, source_format("zeek"), f"file:zeek:{SOURCES / 'dns.log'}@0")
    hunted = pl.concat([r.frame for r in get_source("zeek").read(SOURCES / "dns.log", OPTIONS)])
    _same_events(parsed.frame, hunted)
    assert not parsed.frame.get_column(schema.RAW).str.starts_with("#").any()
    assert [q.raw for q in parsed.quarantined] == ["broken\tline"]


def test_zeek_json_records_get_the_log_kind_from_the_tailed_files_name(tmp_path: Path) -> None:
    record = ('{"ts":1320279566.452687,"uid":"C1","id.orig_h":"10.0.0.2","id.orig_p":5353,'
              '"id.resp_h":"10.0.0.53","id.resp_p":53,"query":"www.example.co.jp"}')
    parsed = _live([record, "{broken"], source_format("zeek"), "file:zeek:/var/log/zeek/dns.log@0")
    (tmp_path / "dns.log").write_text(record + "\n", encoding="utf-8")
    _same_events(parsed.frame, pl.concat([r.frame for r in get_source("zeek").read(tmp_path / "dns.log", OPTIONS)]))
    assert parsed.frame.get_column("zeek_path").to_list() == ["dns"]
    assert [q.where for q in parsed.quarantined] == ["file:zeek:/var/log/zeek/dns.log@0#3000001"]
