"""Bar 3: an input faster than the service is slowed (TCP) or told to retry (HTTP 503 + Retry-After);
the backlog never grows past its bound and nothing is dropped silently (UDP drops are counted)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import orjson
from service_fixtures import syslog_line, windows_event

from mamori.service.launch import ServiceProcess, seed_tokens

LIMIT = 1_000_000


def test_a_flood_is_slowed_or_told_to_retry_and_everything_accepted_is_stored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tokens = seed_tokens(data, ("admin",))
    process = ServiceProcess(data, extra={"MAMORI_SPOOL_MAX_BYTES": str(LIMIT), "MAMORI_BATCH_SECONDS": "0.1"})
    process.start()
    client = httpx.Client(base_url=process.url, headers={"Authorization": f"Bearer {tokens['admin']}"}, timeout=30)
    try:
        assert client.post("/api/v1/pipeline/pause").json() == {"paused": True}
        accepted = 0
        refusal = None
        for batch in range(200):
            body = [windows_event(f"h{batch}-{n}", "HTTP", False) for n in range(200)]
            answer = client.post("/api/v1/ingest", content=orjson.dumps(body))
            if answer.status_code != 202:
                refusal = answer
                break
            accepted += len(body)
        assert refusal is not None, "the service never pushed back"
        assert refusal.status_code == 503
        assert refusal.headers["retry-after"] == "1"
        pending = client.get("/api/v1/health").json()["spool"]["pending_bytes"]
        assert LIMIT <= pending < LIMIT + 200 * 1000  # bounded: at most one batch over the limit

        sock = socket.create_connection(("127.0.0.1", int(process.info["syslog_tcp"])))
        sock.setblocking(False)
        line = syslog_line(windows_event("tcp", "TCP", False))
        chunk = line * 1000
        sent = 0
        blocked = False
        while sent < 512 * len(chunk):
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                blocked = True
                break
        assert blocked, f"the sender was never slowed after {sent} bytes"
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(50):
            udp.sendto(line, ("127.0.0.1", int(process.info["syslog_udp"])))
        udp.close()
        time.sleep(0.5)
        metrics = client.get("/metrics").text
        dropped = [ln for ln in metrics.splitlines() if ln.startswith("mamori_udp_dropped_total ")]
        assert dropped == ["mamori_udp_dropped_total 50"]
        assert client.get("/api/v1/health").json()["spool"]["pending_bytes"] < LIMIT + 2 * 256 * 1024 + 200_000

        client.post("/api/v1/pipeline/resume")
        sock.setblocking(True)
        rest = (sent // len(line) + 1) * len(line) - sent  # finish the line cut in the middle
        sock.sendall(chunk[:rest])
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
        sock.close()
        tcp_lines = (sent + rest) // len(line)
        deadline = time.monotonic() + 60
        stats = {}
        while time.monotonic() < deadline:
            stats = client.get("/api/v1/stats").json()
            if stats["stored_total"] >= accepted + tcp_lines:
                break
            time.sleep(0.2)
        assert stats["stored_total"] == accepted + tcp_lines
        assert client.get("/api/v1/health").json()["status"] == "ok"
    finally:
        client.close()
        process.stop()
