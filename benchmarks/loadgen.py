"""Load generator for ``mamori serve``: Windows events as NXLog-style JSON in RFC 5424 syslog over TCP.

The event pool mixes real attack events (every record of ../shared/data/evtx-attack-samples, read
with Mamori's EVTX reader) with common benign activity (logons, process starts of everyday programs,
network connections), ``attack_share`` of them attacks. Lines are built once; sending is paced in
10 ms slices over several connections, so the offered rate is steady.

Run alone: ``python benchmarks/loadgen.py --port 5514 --rate 20000 --seconds 60``.
"""

from __future__ import annotations

import argparse
import itertools
import random
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "evtx-attack-samples"
BENIGN_PROCESSES = [  # (image, command line, parent image): everyday activity on a Windows desktop
    ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
     '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe" https://intranet.example/{n}',
     "C:\\Windows\\explorer.exe"),
    ("C:\\Windows\\System32\\notepad.exe", '"C:\\Windows\\System32\\notepad.exe" C:\\Users\\u\\notes{n}.txt',
     "C:\\Windows\\explorer.exe"),
    ("C:\\Program Files\\Microsoft VS Code\\Code.exe", '"C:\\Program Files\\Microsoft VS Code\\Code.exe" .',
     "C:\\Windows\\explorer.exe"),
    ("C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe", "C:\\Windows\\System32\\svchost.exe"),
    ("C:\\Windows\\System32\\SearchProtocolHost.exe", "SearchProtocolHost.exe Global\\UsGthrFltPipeMssGthrPipe{n}",
     "C:\\Windows\\System32\\SearchIndexer.exe"),
]
BROWSER = "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"


def attack_events() -> list[dict[str, Any]]:
    """Every event of the attack samples, as flat Windows event objects."""
    from mamori.sources.evtx import read_evtx_files

    files = sorted(SAMPLES.rglob("*.evtx"))
    out: list[dict[str, Any]] = []
    for result in read_evtx_files(files):
        frame = result.frame.drop([c for c in result.frame.columns if c.startswith("_") or "." in c])
        out += [{k: v for k, v in row.items() if v is not None} for row in frame.to_dicts()]
    return out


def benign_event(rng: random.Random, number: int) -> dict[str, Any]:
    """An everyday event: a logon (4624), a process start (Sysmon 1) or a connection (Sysmon 3)."""
    host = f"WS{rng.randrange(500):03d}.corp.example"
    user = f"user{rng.randrange(2000)}"
    kind = number % 3
    if kind == 0:
        return {"EventID": "4624", "Channel": "Security", "Provider_Name": "Microsoft-Windows-Security-Auditing",
                "Computer": host, "TargetUserName": user, "LogonType": str(rng.choice([2, 3, 10])),
                "IpAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"}
    if kind == 1:
        image, command, parent = rng.choice(BENIGN_PROCESSES)
        return {"EventID": "1", "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Provider_Name": "Microsoft-Windows-Sysmon", "Computer": host, "User": f"CORP\\{user}",
                "Image": image, "CommandLine": command.format(n=number), "ParentImage": parent,
                "ProcessId": str(rng.randrange(100, 60000)), "Hashes": f"SHA256={rng.getrandbits(256):064X}"}
    return {"EventID": "3", "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Provider_Name": "Microsoft-Windows-Sysmon", "Computer": host, "User": f"CORP\\{user}", "Image": BROWSER,
            "DestinationIp": f"52.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
            "DestinationPort": "443", "Protocol": "tcp", "Initiated": "true"}


def build_lines(count: int, attack_share: float = 0.05, seed: int = 7) -> list[bytes]:
    """``count`` syslog lines, each a Windows event as JSON; times are now (UTC)."""
    rng = random.Random(seed)
    attacks = attack_events() if attack_share > 0 else []
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lines: list[bytes] = []
    for number in range(count):
        attack = bool(attacks) and rng.random() < attack_share
        event = dict(rng.choice(attacks)) if attack else benign_event(rng, number)
        for key in [k for k in event if "SystemTime" in k or k.startswith("TimeCreated")]:
            event[key] = now  # replayed attacks happen now, like the rest
        event["EventTime"] = now
        event["seq"] = number
        host = str(event.get("Computer") or "host").split(".")[0] or "host"
        lines.append(b"<14>1 " + now.encode() + b" " + host.encode() + b" nxlog - - - " + orjson.dumps(event) + b"\n")
    return lines


def send(port: int, lines: list[bytes], rate: float, seconds: float, connections: int = 4,
         host: str = "127.0.0.1") -> dict[str, float]:
    """Send ``rate`` lines per second for ``seconds`` over ``connections`` TCP connections (cycling the
    pool); return what was sent and how long the sockets made the sender wait (back-pressure)."""
    slice_seconds = 0.01
    per_slice = min(len(lines), max(1, int(rate * slice_seconds / connections)))
    totals = {"sent": 0.0, "blocked_seconds": 0.0}
    lock = threading.Lock()
    # the pool twice over as one block, so any run of ``per_slice`` lines is one slice of it: the sender
    # does no work per line (on a 2-core machine its CPU is taken from the service it measures)
    ring = memoryview(b"".join(lines) * 2)
    starts = list(itertools.accumulate((len(line) for line in lines + lines), initial=0))

    def worker(index: int) -> None:
        sock = socket.create_connection((host, port))
        position = index * 997 % len(lines)
        sent = 0
        blocked = 0.0
        started = time.monotonic()
        next_slice = started
        while time.monotonic() - started < seconds:
            chunk = ring[starts[position]:starts[position + per_slice]]
            position = (position + per_slice) % len(lines)
            before = time.monotonic()
            sock.sendall(chunk)
            after = time.monotonic()
            blocked += max(0.0, after - before - 0.002)
            sent += per_slice
            next_slice += slice_seconds
            pause = next_slice - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        sock.close()
        with lock:
            totals["sent"] += sent
            totals["blocked_seconds"] += blocked

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return totals


def main() -> None:
    """Command line: build the pool and send."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--pool", type=int, default=200_000)
    parser.add_argument("--attack-share", type=float, default=0.05)
    args = parser.parse_args()
    lines = build_lines(args.pool, args.attack_share)
    print(orjson.dumps(send(args.port, lines, args.rate, args.seconds, args.connections)).decode(), flush=True)


if __name__ == "__main__":
    main()
