"""Bar 1: 100,000 events through syslog TCP and HTTP while the service is SIGKILLed at random moments
(at least 5 times) and restarted; afterwards every acknowledged event is stored exactly once and every
expected alert exists once, with the right count.

Acknowledged means: for HTTP, a 202 (the sender retries the same batch with the same Idempotency-Key
until it gets one); for syslog TCP, which has no acknowledgement, a clean close by a service that is
still running (the sender half-closes, the service spools what it read, then closes; the test knows
when it killed the service, so an EOF caused by a kill does not count). Unacknowledged TCP batches
may be lost in a crash but never doubled.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import httpx
import orjson
from service_fixtures import WHOAMI_RULE_ID, syslog_line, windows_event

from mamori.service.launch import ServiceProcess, seed_tokens

TOTAL = 100_000
BATCH = 1_000
KILLS = 6


class Shared:
    """Where the service listens now (it changes at every restart)."""

    def __init__(self, process: ServiceProcess) -> None:
        self.process = process
        self.lock = threading.Lock()
        self.generation = 0

    def kill_and_restart(self) -> None:
        with self.lock:
            self.generation += 1  # before the kill: a sender that sees EOF afterwards knows it was a crash
            self.process.kill()
            self.process.start()

    def ports(self) -> tuple[int, int]:
        with self.lock:
            info = self.process.info
            return int(info["syslog_tcp"]), int(info["api"])


def _event(prefix: str, number: int) -> dict[str, object]:
    return windows_event(f"{prefix}{number}", f"H{number % 20}", number % 10 == 0)


def _send_tcp(shared: Shared, batches: list[list[int]], acked: list[int], failed: list[int]) -> None:
    for batch in batches:
        payload = b"".join(syslog_line(_event("t", n)) for n in batch)
        try:
            generation = shared.generation
            port, _ = shared.ports()
            with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):  # EOF: the service spooled everything and closed
                    pass
            if shared.generation != generation:
                raise ConnectionResetError("the service was killed while the batch was in flight")
            acked.extend(batch)
        except OSError:
            failed.extend(batch)
            time.sleep(0.2)


def _send_http(shared: Shared, batches: list[list[int]], token: str, acked: list[int]) -> None:
    for index, batch in enumerate(batches):
        body = orjson.dumps([_event("h", n) for n in batch])
        while True:
            _, port = shared.ports()
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/ingest", content=body, timeout=20,
                                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                             "Idempotency-Key": f"durability-{index}"})
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            if answer.status_code == 202:
                acked.extend(batch)
                break
            time.sleep(float(answer.headers.get("retry-after", "0.2")))


def _wait_drained(process: ServiceProcess, token: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = httpx.get(process.url + "/api/v1/health", headers={"Authorization": f"Bearer {token}"}).json()
        if health["spool"]["pending_bytes"] == 0 and not health["pipeline"]["error"]:
            return
        time.sleep(0.2)
    raise AssertionError("the service did not catch up")


def test_acknowledged_events_survive_sigkills_exactly_once_with_their_alerts(tmp_path: Path, rules_dir: Path) -> None:
    data = tmp_path / "data"
    tokens = seed_tokens(data, ("analyst",))
    # small spool segments: batches start and end on segment boundaries again and again
    process = ServiceProcess(data, rules=[rules_dir], extra={"MAMORI_BATCH_SECONDS": "0.2",
                                                             "MAMORI_SPOOL_SEGMENT_BYTES": "65536"})
    process.start()
    shared = Shared(process)
    numbers = list(range(TOTAL // 2))
    tcp_batches = [numbers[i:i + BATCH] for i in range(0, len(numbers), BATCH)]
    tcp_acked: list[int] = []
    tcp_failed: list[int] = []
    http_acked: list[int] = []
    senders = [
        threading.Thread(target=_send_tcp, args=(shared, tcp_batches, tcp_acked, tcp_failed)),
        threading.Thread(target=_send_http, args=(shared, tcp_batches, tokens["analyst"], http_acked)),
    ]
    for sender in senders:
        sender.start()
    rng = random.Random(20261129)
    kills = 0
    try:
        while kills < KILLS:
            time.sleep(rng.uniform(0.2, 1.5))
            shared.kill_and_restart()
            kills += 1
        for sender in senders:
            sender.join()
        _wait_drained(process, tokens["analyst"])
        alerts = httpx.get(process.url + "/api/v1/alerts", params={"limit": 1000, "rule_id": WHOAMI_RULE_ID},
                           headers={"Authorization": f"Bearer {tokens['analyst']}"}).json()["alerts"]
    finally:
        process.stop()
    assert kills >= 5
    assert len(http_acked) == TOTAL // 2
    assert tcp_acked, "no TCP batch was acknowledged"
    stored = duckdb.sql(
        f"SELECT marker, CommandLine, _host FROM read_parquet('{data}/lake/**/*.parquet', union_by_name=true)"
    ).fetchall()
    markers = Counter(row[0] for row in stored)
    doubled = [m for m, c in markers.items() if c > 1]
    assert not doubled, f"{len(doubled)} events stored twice, e.g. {doubled[:5]}"
    missing_http = [n for n in http_acked if f"h{n}" not in markers]
    missing_tcp = [n for n in tcp_acked if f"t{n}" not in markers]
    assert not missing_http, f"{len(missing_http)} acknowledged HTTP events lost"
    assert not missing_tcp, f"{len(missing_tcp)} acknowledged TCP events lost"
    assert len(stored) >= len(http_acked) + len(tcp_acked)
    expected = Counter(host for marker, command, host in stored if "whoami" in command)
    by_host = Counter(a["entities"]["host"] for a in alerts)
    assert all(count == 1 for count in by_host.values()), "an alert group exists twice"
    assert {a["entities"]["host"]: a["count"] for a in alerts} == dict(expected)
    print(f"kills={kills} stored={len(stored)} tcp_acked={len(tcp_acked)} tcp_unacked={len(tcp_failed)} "
          f"http_acked={len(http_acked)} alerts={len(alerts)}")
