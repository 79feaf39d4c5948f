"""Bar 4: malformed syslog, broken JSON, oversized lines and bodies, wrong tokens (over 1,000 bad inputs):
each gets a clear error or a quarantine entry, the service keeps running, and what was stored stays intact."""

from __future__ import annotations

import gzip
import socket
import time
from pathlib import Path

import httpx
import orjson
from service_fixtures import syslog_line, windows_event
from service_testing import wait_for

from mamori.service.launch import ServiceProcess, seed_tokens

MAX_LINE = 4096


def _tcp(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass


def _good(prefix: str, count: int) -> bytes:
    return b"".join(syslog_line(windows_event(f"{prefix}{n}", "GOOD", False)) for n in range(count))


def test_a_thousand_bad_inputs_are_each_refused_or_quarantined_and_nothing_stored_is_harmed(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    tokens = seed_tokens(data, ("analyst",))
    headers = {"Authorization": f"Bearer {tokens['analyst']}"}
    process = ServiceProcess(data, extra={"MAMORI_BATCH_SECONDS": "0.1", "MAMORI_MAX_LINE_BYTES": str(MAX_LINE),
                                         "MAMORI_MAX_BODY_BYTES": "65536"})
    process.start()
    try:
        tcp, udp = int(process.info["syslog_tcp"]), int(process.info["syslog_udp"])
        client = httpx.Client(base_url=process.url, headers=headers, timeout=20)
        _tcp(tcp, _good("before", 100))
        wait_for(lambda: client.get("/api/v1/stats").json()["stored_total"] == 100, timeout=60.0)

        bad_syslog = 0
        invalid_utf8 = b"".join(b"<13>Oct 11 22:14:15 host app: caf\xe9 \xff\xfe broken " + str(n).encode() + b"\n"
                                for n in range(300))
        binary = b"".join(b"<13>Oct 11 22:14:15 host app: \x00\x01\x02binary" + str(n).encode() + b"\n"
                          for n in range(200))
        oversized = b"".join(b"<13>" + b"A" * (MAX_LINE + 10) + b"\n" for _ in range(100))
        _tcp(tcp, invalid_utf8 + _good("mid", 50) + binary + oversized + _good("after", 50))
        bad_syslog += 600
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for n in range(100):
            datagram = b"\xff\xfe\x00" + str(n).encode() if n % 2 else b"<13>" + b"B" * (MAX_LINE + 1)
            sender.sendto(datagram, ("127.0.0.1", udp))
            time.sleep(0.002)
        sender.close()
        bad_syslog += 100

        refused: dict[int, int] = {}

        def count(answer: httpx.Response) -> None:
            refused[answer.status_code] = refused.get(answer.status_code, 0) + 1
            assert answer.json()["detail"], answer.text

        for n in range(150):
            answer = client.post("/api/v1/ingest", content=b'[{"EventID": 1}, {"broken": ' + str(n).encode(),
                                 headers={"Content-Type": "application/json"})
            assert "not valid JSON" in answer.json()["detail"]
            count(answer)
        for n in range(50):
            answer = client.post("/api/v1/ingest", content=b'{"ok": 1}\n' + str(n).encode() + b"\n",
                                 headers={"Content-Type": "application/x-ndjson"})
            assert answer.json()["detail"].startswith("line 2")
            count(answer)
        for _ in range(50):
            count(client.post("/api/v1/ingest", content=b"[" + b'{"a": "' + b"x" * 70_000 + b'"}]'))
        for _ in range(50):
            count(client.post("/api/v1/ingest", content=b"not gzip at all", headers={"Content-Encoding": "gzip"}))
        bomb = gzip.compress(b"[" + b'{"a": 1},' * 50_000 + b'{"a": 1}]')
        for _ in range(20):
            count(client.post("/api/v1/ingest", content=bomb, headers={"Content-Encoding": "gzip"}))
        for n in range(100):
            answer = httpx.post(process.url + "/api/v1/ingest", json=[{"a": 1}],
                                headers={"Authorization": f"Bearer mamori_wrong{n}"})
            count(answer)
        for _ in range(30):
            count(client.post("/api/v1/ingest", content=b"<xml/>", headers={"Content-Type": "application/xml"}))
        assert refused == {400: 250, 413: 70, 401: 100, 415: 30}

        def settled() -> bool:
            quarantined = client.get("/api/v1/quarantine", params={"limit": 1}).json()["total"]
            return bool(quarantined == bad_syslog)

        wait_for(settled, timeout=60.0)
        records = client.get("/api/v1/quarantine", params={"limit": 1000}).json()["records"]
        reasons = " ".join(r["reason"] for r in records)
        assert "not UTF-8" in reasons
        assert "control character" in reasons
        assert f"longer than the {MAX_LINE}-byte limit" in reasons
        assert "over the" in reasons
        assert all(r["input"].startswith("syslog+") for r in records)
        wait_for(lambda: client.get("/api/v1/stats").json()["stored_total"] == 200, timeout=60.0)
        stored = client.get("/api/v1/events", params={"field": "Computer=GOOD", "limit": 1000}).json()
        markers = sorted(e["marker"] for e in stored["events"])
        expected = sorted([f"before{n}" for n in range(100)] + [f"mid{n}" for n in range(50)]
                          + [f"after{n}" for n in range(50)])
        assert markers == expected
        assert client.get("/api/v1/health").json()["status"] == "ok"
        good = client.post("/api/v1/ingest", content=orjson.dumps([{"still": "working"}]))
        assert good.status_code == 202
        assert 250 + 70 + 100 + 30 + bad_syslog >= 1000
    finally:
        process.stop()
