"""Detection-core speed: cold and warm `mamori hunt` of the attack samples, and detection throughput on
a 1M-event replay of that corpus with every SigmaHQ Windows rule.

    python benchmarks/hunt_speed.py [--events 1000000] [--runs 3]

Prints the figures; the bars are: cold < 2.5 s, warm < 1 s, >= 200,000 events/s per core, < 1 GB peak.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SAMPLES = DATA / "evtx-attack-samples"
RULES = DATA / "sigmahq" / "rules" / "windows"


def timed_hunt(cache: Path) -> float:
    """Wall time of one `mamori hunt` writing JSONL (what the scorecard runs)."""
    env = {**os.environ, "MAMORI_CACHE_DIR": str(cache), "XDG_CACHE_HOME": str(cache)}
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mamori", "hunt", str(SAMPLES), "--rules", str(RULES), "--format",
                        "jsonl", "--output", out.name], check=True, env=env, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started


def settled(cache: Path, timeout: float = 60.0) -> None:
    """Wait until the cache a hunt writes in the background (a forked, low-priority writer) is complete:
    no temporary file left and nothing new for a second; a warm hunt is one that finds it whole."""
    deadline = time.monotonic() + timeout
    last: set[str] = set()
    while time.monotonic() < deadline:
        names = {p.name for p in cache.iterdir()}
        if names == last and not any(".tmp" in name for name in names):
            return
        last = names
        time.sleep(1.0)


def replay(events: int) -> None:
    """Detection throughput on one core over a replay of the corpus, in 50,000-event batches."""
    os.environ["POLARS_MAX_THREADS"] = "1"
    import polars as pl

    from mamori.detect.sigma import Detector, load_ruleset
    from mamori.events.frame import concat_frames
    from mamori.sources.evtx import read_evtx_files

    corpus = concat_frames([r.frame for r in read_evtx_files(sorted(SAMPLES.rglob("*.evtx")))])
    detector = Detector(load_ruleset([RULES]))
    batch = 50_000
    copies = -(-batch // corpus.height)
    template = pl.concat([corpus] * copies)[:batch]
    started = time.process_time()
    wall = time.perf_counter()
    done = hits = 0
    while done < events:
        frame = template if events - done >= batch else template[: events - done]
        hits += detector.detect(frame).height
        done += frame.height
    cpu = time.process_time() - started
    elapsed = time.perf_counter() - wall
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"replay: {done:,} events, {hits:,} hits, {len(detector.ruleset.rules):,} rules; "
          f"{done / cpu:,.0f} events/s per core (CPU {cpu:.2f} s, wall {elapsed:.2f} s); peak RSS {peak_mb:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not SAMPLES.exists():
        sys.exit(f"needs {SAMPLES} (the shared data beside the repo)")
    cold = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as cache:
            cold.append(timed_hunt(Path(cache)))
            settled(Path(cache))  # its background cache writer is not the next run's work
    with tempfile.TemporaryDirectory() as cache:
        timed_hunt(Path(cache))
        settled(Path(cache))
        warm = [timed_hunt(Path(cache)) for _ in range(args.runs)]
    print(f"cold hunt (no cache): median {statistics.median(cold):.2f} s, min {min(cold):.2f} s over {args.runs} runs")
    print(f"warm hunt (cache):    median {statistics.median(warm):.2f} s, min {min(warm):.2f} s over {args.runs} runs")
    replay(args.events)


if __name__ == "__main__":
    main()
