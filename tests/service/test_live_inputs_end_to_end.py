"""Through a real ``mamori serve`` child: syslog over TCP, HTTP ingest with ``?source=`` and a tailed
folder are stored with the fields, source and time their own readers give (as ``mamori hunt`` does)."""

from __future__ import annotations

import gzip
import shutil
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from mamori_testing import REPO
from service_fixtures import syslog_line, windows_event
from service_testing import Running, running_service, wait_for

SOURCES = REPO / "tests" / "fixtures" / "sources"
SINCE = "2000-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A child following a drop folder (``<root>/drop``)."""
    root = tmp_path_factory.mktemp("live")
    (root / "drop").mkdir()
    with running_service(root, {}, {"MAMORI_TAIL": str(root / "drop")}) as running:
        yield running


def _events(client: httpx.Client, source: str, count: int) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]] | None:
        page: dict[str, Any] = client.get("/api/v1/events", params={"source": source, "since": SINCE,
                                                                    "limit": 100}).json()
        events: list[dict[str, Any]] = page["events"]
        return events if page["total"] >= count else None

    events: list[dict[str, Any]] = wait_for(found, timeout=60.0)
    assert len(events) == count
    return events


def test_syslog_tcp_lines_of_firewalls_are_stored_with_their_product_fields(service: Running) -> None:
    lines = [
        b"<134>Feb 28 18:20:54 fw01 CEF:0|Vendor|Product|2.0|AUTH|Logon failed|3|rt=Feb 28 2021 18:20:54 "
        b"suser=tanaka src=192.0.2.5",
        b"<166>Jun 07 2025 17:31:57: %ASA-2-106001: Inbound TCP connection denied from 198.51.100.2/4321 to "
        b"10.0.0.8/22 flags SYN  on interface outside",
        b'<189>Jan  2 03:04:05 fgt logid="0100032001" type="event" subtype="system" level="information" '
        b'logdesc="Admin login successful" user="admin" status="success"',
        syslog_line(windows_event("live-e2e", "WS1", False)).rstrip(b"\n"),
    ]
    with socket.create_connection(("127.0.0.1", int(service.process.info["syslog_tcp"])), timeout=20) as sock:
        sock.sendall(b"\n".join(lines) + b"\n")
    with service.client("analyst") as client:
        cef = _events(client, "cef", 1)[0]
        assert (cef["suser"], cef["src"], cef["hostname"]) == ("tanaka", "192.0.2.5", "fw01")
        assert cef["_time"].startswith("2021-02-28")
        asa = _events(client, "cisco_asa", 1)[0]
        assert (asa["src_ip"], asa["dst_port"]) == ("198.51.100.2", "22")
        forti = _events(client, "fortigate", 1)[0]
        assert (forti["logid"], forti["user"]) == ("0100032001", "admin")
        assert _events(client, "winjson", 1)[0]["Computer"] == "WS1"


def test_http_ingest_parses_the_body_with_the_named_sources_reader(service: Running) -> None:
    document = orjson.loads(gzip.decompress((SOURCES / "cloudtrail_records.json.gz").read_bytes()))
    with service.client("analyst") as client:
        answer = client.post("/api/v1/ingest", params={"source": "cloudtrail"}, content=orjson.dumps(document),
                             headers={"Content-Type": "application/json"})
        assert answer.status_code == 202
        assert answer.json()["accepted"] == len(document["Records"])
        events = _events(client, "cloudtrail", len(document["Records"]))
        assert sorted(e["eventName"] for e in events) == sorted(r["eventName"] for r in document["Records"])
        assert all(e["_time"] for e in events)
        assert "Records" not in events[0]
        leef = client.post("/api/v1/ingest", params={"source": "leef"}, headers={"Content-Type": "text/plain"},
                          content=b"LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.0\tusrName=joe.black"
                                  b"\tdevTime=1593013776000\n")
        assert leef.status_code == 202
        stored = _events(client, "leef", 1)[0]
        assert (stored["usrName"], stored["_time"][:10]) == ("joe.black", "2020-06-24")
        unknown = client.post("/api/v1/ingest", params={"source": "cloudtrial"}, json=[{"a": 1}])
        assert unknown.status_code == 400
        assert "'cloudtrial'" in unknown.json()["detail"] and "cloudtrail" in unknown.json()["detail"]
        evtx = client.post("/api/v1/ingest", params={"source": "evtx"}, json=[{"a": 1}])
        assert evtx.status_code == 400 and "tailed folder" in evtx.json()["detail"]


def test_a_file_dropped_in_a_tailed_folder_is_read_with_the_reader_a_hunt_picks(service: Running) -> None:
    shutil.copy(SOURCES / "dns.log", service.data_dir.parent / "drop" / "dns.log")
    with service.client("analyst") as client:
        events = _events(client, "zeek", 2)
        assert sorted(e["query"] for e in events) == ["", "www.example.co.jp"]
        assert all(e["zeek_path"] == "dns" and e["_time"].startswith("2011-11-03") for e in events)
        assert not any(e["_raw"].startswith("#") for e in events)
