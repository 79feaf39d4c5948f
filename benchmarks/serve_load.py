"""Sustained load on ``mamori serve``: syslog TCP at a fixed rate with all SigmaHQ Windows rules on.

Starts the service in a child process (temp data folder, free ports), offers ``--rate`` events/s for
``--seconds`` with ``benchmarks/loadgen.py`` in another process, and every ``--every`` seconds prints
the curve: events received and stored per second, pipeline lag, spool backlog, service memory (RSS of
the service alone, and with its parser processes) and the ingest-to-alert latency p99 of that window
(upper bucket edge). Ends with a summary.

    .venv/bin/python benchmarks/serve_load.py --rate 20000 --seconds 300
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from mamori.service.launch import ServiceProcess, seed_tokens

RULES = Path(__file__).resolve().parents[2] / "shared" / "data" / "sigmahq" / "rules" / "windows"
_SAMPLE = re.compile(r'^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+\-]+|\+Inf|inf)$')


def scrape(client: httpx.Client) -> dict[str, float]:
    """The metrics as a flat name{labels} -> value map."""
    out: dict[str, float] = {}
    for line in client.get("/metrics").text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            key = match.group(1) + (f"{{{match.group(2)}}}" if match.group(2) else "")
            out[key] = float(match.group(3))
    return out


def buckets(sample: dict[str, float], name: str) -> list[tuple[float, float]]:
    """Cumulative (edge, count) pairs of a histogram."""
    pairs = []
    for key, value in sample.items():
        if key.startswith(f"{name}_bucket"):
            edge = key.split('le="')[1].rstrip('"}')
            pairs.append((float("inf") if edge == "+Inf" else float(edge), value))
    return sorted(pairs)


def quantile(now: list[tuple[float, float]], before: list[tuple[float, float]], q: float) -> float | None:
    """Upper bucket edge of the ``q`` quantile of the observations between two scrapes."""
    old = dict(before)
    window = [(edge, count - old.get(edge, 0.0)) for edge, count in now]
    if not window or window[-1][1] <= 0:
        return None
    target = q * window[-1][1]
    return next(edge for edge, count in window if count >= target)


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    """The process's children, their children, and so on (the service's parser processes)."""
    found: list[int] = []
    waiting = [pid]
    while waiting:
        parent = waiting.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found.extend(children)
            waiting.extend(children)
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of the service and every process it started, in MB (shared pages counted in
    each: an upper bound)."""
    return rss_mb(pid) + sum(rss_mb(child) for child in descendants(pid))


def main() -> None:
    """Run the benchmark and print the curve and the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--every", type=float, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--attack-share", type=float, default=0.05)
    parser.add_argument("--rules", type=Path, default=RULES)
    parser.add_argument("--keep", action="store_true", help="keep the service's data folder (removed by default)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mamori-load-"))
    data = root / "data"
    token = seed_tokens(data, ("admin",))["admin"]
    service = ServiceProcess(data, rules=[args.rules])
    started = time.monotonic()
    service.start(timeout=300)
    print(f"service up in {time.monotonic() - started:.1f}s (data {data})", flush=True)
    client = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    while not client.get("/api/v1/health").json()["pipeline"]["parsers_ready"] and time.monotonic() - started < 300:
        time.sleep(0.2)  # the load starts once the parser processes have the rules too
    print(f"rules loaded: {client.get('/api/v1/health').json()['rules']}; parser processes ready in "
          f"{time.monotonic() - started:.1f}s", flush=True)
    generator = subprocess.Popen([sys.executable, str(Path(__file__).with_name("loadgen.py")), "--port",
                                  str(service.info["syslog_tcp"]), "--rate", str(args.rate), "--seconds",
                                  str(args.seconds), "--connections", str(args.connections), "--attack-share",
                                  str(args.attack_share)], stdout=subprocess.PIPE, text=True)
    pid = service.process.pid if service.process else 0
    print(f"{'t(s)':>6} {'recv/s':>9} {'stored/s':>9} {'lag(s)':>7} {'spool(MB)':>9} {'rss(MB)':>8} "
          f"{'+workers':>8} {'alert p99(s)':>12} {'alerts':>7}", flush=True)
    first = previous = scrape(client)
    began = last = time.monotonic()
    rss: list[float] = []
    tree: list[float] = []
    p99s: list[float] = []
    sent: float | None = None
    output = ""
    try:
        while True:
            time.sleep(args.every)
            now = time.monotonic()
            sample = scrape(client)
            span = now - last
            received = sample.get('mamori_events_received_total{input="tcp"}', 0) - previous.get(
                'mamori_events_received_total{input="tcp"}', 0)
            stored = sample.get("mamori_events_stored_total", 0) - previous.get("mamori_events_stored_total", 0)
            p99 = quantile(buckets(sample, "mamori_ingest_to_alert_seconds"),
                           buckets(previous, "mamori_ingest_to_alert_seconds"), 0.99)
            memory = rss_mb(pid)
            rss.append(memory)
            tree.append(tree_rss_mb(pid))
            if p99 is not None:
                p99s.append(p99)
            alerts = sample.get("mamori_alerts_created_total", 0) + sample.get("mamori_alerts_updated_total", 0)
            print(f"{now - began:6.0f} {received / span:9.0f} {stored / span:9.0f} "
                  f"{sample.get('mamori_pipeline_lag_seconds', 0):7.2f} "
                  f"{sample.get('mamori_spool_pending_bytes', 0) / 1e6:9.1f} {memory:8.0f} {tree[-1]:8.0f} "
                  f"{'-' if p99 is None else f'{p99:g}':>12} {alerts:7.0f}", flush=True)
            previous, last = sample, now
            if generator.poll() is not None and sent is None:
                output = generator.communicate()[0]
                sent = float(orjson.loads(output.strip().splitlines()[-1])["sent"])
                drained_by = now + 300
            if sent is not None and (sample.get("mamori_events_stored_total", 0) >= sent or now > drained_by):
                break
        total = time.monotonic() - began
        stored = previous.get("mamori_events_stored_total", 0) - first.get("mamori_events_stored_total", 0)
        overall = quantile(buckets(previous, "mamori_ingest_to_alert_seconds"), [], 0.99)
        stages = {k.split('"')[1]: v for k, v in previous.items() if k.startswith("mamori_stage_seconds_total")}
        print(f"generator: {output.strip()}")
        if sent is not None and previous.get("mamori_events_stored_total", 0) < sent:
            missing = sent - previous.get("mamori_events_stored_total", 0)
            print(f"NOT STORED: {missing:.0f} of {sent:.0f} events sent (quarantined lines are counted apart: "
                  f"{previous.get('mamori_quarantined_total', 0):.0f})")
        print(f"summary: offered {args.rate:.0f}/s for {args.seconds:.0f}s; sent {sent or 0:.0f}; "
              f"stored {stored:.0f} events "
              f"in {total:.0f}s ({stored / total:.0f}/s); alert latency p99 <= {overall} s "
              f"(windows: {sorted(p99s)}); "
              f"RSS min {min(rss or [0]):.0f} MB max {max(rss or [0]):.0f} MB (with its worker processes: min "
              f"{min(tree or [0]):.0f} MB max {max(tree or [0]):.0f} MB); stage seconds {stages}")
    finally:
        generator.kill()
        service.stop()
        if args.keep:
            print(f"data kept in {root}")
        else:  # a 5-minute run stores 6 million events and their spool: gigabytes a run would leave behind
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
