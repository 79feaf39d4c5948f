"""IOC matching figures: 1M indicators against a live stream, and retro-hunt over 10M stored events.

Prints: index build time, stream matching throughput (events/s on the threads given, one by
default = per core), and the time to retro-hunt one new indicator over Parquet files of history.

    .venv/bin/python benchmarks/intel_match.py                     # full size
    .venv/bin/python benchmarks/intel_match.py --indicators 100000 --history 1000000   # quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--indicators", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the live stream")
    parser.add_argument("--batch", type=int, default=100_000, help="events per micro-batch")
    parser.add_argument("--history", type=int, default=10_000_000, help="stored events for the retro-hunt")
    parser.add_argument("--threads", type=int, default=1, help="Polars threads (1 = per-core figure)")
    args = parser.parse_args()
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)

    import polars as pl

    from mamori.intel.matcher import IndicatorIndex, IndicatorInput, Matcher
    from mamori.intel.retrohunt import retro_hunt

    print(f"polars {pl.__version__}, threads {pl.thread_pool_size()}")
    n = args.indicators
    seq = pl.int_range(0, n, eager=True).alias("i")
    frame = pl.DataFrame(seq)
    kind = pl.col("i") % 10

    def ip(expr: pl.Expr) -> pl.Expr:
        return pl.concat_str(
            [(expr // 16_777_216 % 223 + 1), (expr // 65536 % 256), (expr // 256 % 256), (expr % 256)],
            separator=".",
        )

    hexdigest = pl.col("i").cast(pl.Utf8).str.pad_start(16, "0")
    patterns = frame.select(
        indicator_id=pl.concat_str([pl.lit("indicator--"), pl.col("i").cast(pl.Utf8)]),
        pattern=pl.when(kind < 4)
        .then(pl.concat_str([pl.lit("[ipv4-addr:value = '"), ip(pl.col("i") * 7919 + 12345), pl.lit("']")]))
        .when(kind < 7)
        .then(pl.concat_str([pl.lit("[domain-name:value = 'bad"), pl.col("i").cast(pl.Utf8), pl.lit(".example.net']")]))
        .when(kind < 9)
        .then(pl.concat_str([pl.lit("[file:hashes.'SHA-256' = '"), pl.concat_str([hexdigest] * 4), pl.lit("']")]))
        .otherwise(
            pl.concat_str([pl.lit("[url:value = 'http://bad"), pl.col("i").cast(pl.Utf8), pl.lit(".example.org/x']")])
        ),
        name=pl.lit("synthetic"),
        sources=pl.lit("benchmark"),
        confidence=pl.lit(70, dtype=pl.Int64),
        pattern_type=pl.lit("stix"),
    )
    # A few CIDR ranges too.
    extra = pl.DataFrame(
        {
            "indicator_id": ["indicator--cidr1", "indicator--cidr2"],
            "pattern": [
                "[ipv4-addr:value ISSUBSET '203.0.113.0/24']",
                "[ipv4-addr:value ISSUBSET '198.18.0.0/15']",
            ],
            "name": ["net", "net"],
            "sources": ["benchmark"] * 2,
            "confidence": [70, 70],
            "pattern_type": ["stix"] * 2,
        },
        schema=patterns.schema,
    )
    started = time.perf_counter()
    index = IndicatorIndex.from_frame(pl.concat([patterns, extra]))
    print(
        f"index: {index.size:,} indicators compiled in {time.perf_counter() - started:.2f} s "
        f"({len(index.refused)} refused)"
    )

    def events(count: int, offset: int) -> pl.DataFrame:
        base = pl.DataFrame(pl.int_range(offset, offset + count, eager=True).alias("i"))
        hit = pl.col("i") % 100 == 0  # 1% of events ask for a listed domain
        j = pl.col("i") * 31 % n
        return base.select(
            _uid=pl.concat_str([pl.lit("ev-"), pl.col("i").cast(pl.Utf8)]),
            _time=pl.lit(0).cast(pl.Datetime("ns", "UTC")),
            DestinationIp=ip(pl.col("i") * 104729 + 7),
            SourceIp=ip(pl.col("i") % 65536 + 167772160),
            QueryName=pl.when(hit)
            .then(pl.concat_str([pl.lit("www.bad"), (j - j % 10 + 4).cast(pl.Utf8), pl.lit(".example.net")]))
            .otherwise(pl.concat_str([pl.lit("cdn"), (pl.col("i") % 5000).cast(pl.Utf8), pl.lit(".good.example.com")])),
            Image=pl.concat_str(
                [pl.lit("C:\\Windows\\System32\\proc"), (pl.col("i") % 300).cast(pl.Utf8), pl.lit(".exe")]
            ),
            Hashes=pl.concat_str(
                [
                    pl.lit("SHA1="),
                    pl.col("i").cast(pl.Utf8).str.pad_start(40, "1"),
                    pl.lit(",SHA256="),
                    pl.col("i").cast(pl.Utf8).str.pad_start(64, "f"),
                ]
            ),
        )

    # The IP of indicator k is ip(k * 7919 + 12345): 1% of stream events go to one of them.
    def stream_batch(count: int, offset: int) -> pl.DataFrame:
        batch = events(count, offset)
        k = pl.int_range(offset, offset + count) * 31 % n
        k = k - k % 10
        return batch.with_columns(
            DestinationIp=pl.when(pl.int_range(offset, offset + count) % 100 == 0)
            .then(ip(k * 7919 + 12345))
            .otherwise(pl.col("DestinationIp"))
        )

    matcher = Matcher(index)
    batches = [stream_batch(args.batch, start) for start in range(0, args.events, args.batch)]
    matcher.match(batches[0].head(1000))  # warm up
    started = time.perf_counter()
    matched = 0
    for batch in batches:
        matched += matcher.match(batch).height
    elapsed = time.perf_counter() - started
    total = sum(b.height for b in batches)
    print(
        f"stream: {total:,} events in {elapsed:.2f} s = {total / elapsed:,.0f} events/s "
        f"on {pl.thread_pool_size()} thread(s); {matched:,} matches"
    )

    with tempfile.TemporaryDirectory(prefix="intel-bench-") as tmp:
        chunk = 1_000_000
        started = time.perf_counter()
        for number, start in enumerate(range(0, args.history, chunk)):
            events(min(chunk, args.history - start), start).write_parquet(Path(tmp) / f"part-{number:04d}.parquet")
        print(f"history: wrote {args.history:,} events as Parquet in {time.perf_counter() - started:.1f} s")
        target = args.history // 2 + 17
        new = IndicatorInput(
            "indicator--new",
            f"[ipv4-addr:value = '{_ip_text(target * 104729 + 7)}']",
            name="new",
            sources="benchmark",
        )
        started = time.perf_counter()
        found = retro_hunt([new], pl.scan_parquet(Path(tmp) / "*.parquet"))
        print(
            f"retro-hunt: 1 new indicator over {args.history:,} stored events in "
            f"{time.perf_counter() - started:.2f} s; {found.height} match(es)"
        )
    sys.stdout.flush()


def _ip_text(value: int) -> str:
    return ".".join(
        str(x) for x in (value // 16_777_216 % 223 + 1, value // 65536 % 256, value // 256 % 256, value % 256)
    )


if __name__ == "__main__":
    main()
