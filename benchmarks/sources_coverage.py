"""Coverage of the log-source readers on real samples: every message of ../shared/data/raw-logs and
../shared/data/loghub, per product: how many are read (with their raw text intact), quarantined,
carry a time, an OCSF class, and the key normalised fields; and whether auto-detection picks the
expected reader for a file of that product.

Run: .venv/bin/python benchmarks/sources_coverage.py [--data ../shared/data] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import polars as pl

from mamori.sources.base import ReadOptions, ReadResult
from mamori.sources.batch import PARSERS, parse_records
from mamori.sources.catalog import LOGHUB, PRODUCTS
from mamori.sources.registry import all_sources, sniff_source

ENTITY_FIELDS = ("src_endpoint.ip", "dst_endpoint.ip", "actor.user.name", "user.name", "api.operation",
                 "query.hostname", "http_request.url.path", "http_request.url.url_string", "process.cmd_line",
                 "file.path", "finding_info.title", "metadata.event_code")


def _share(frame: pl.DataFrame, expr: pl.Expr) -> int:
    return int(frame.select(expr.sum()).item()) if frame.height else 0


def _read_as_file(source: str, messages: list[str], options: ReadOptions) -> ReadResult:
    """Read ``messages`` through the source's file reader (for readers that take no record list)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sample.jsonl"
        path.write_text("\n".join(m.replace("\n", " ") for m in messages) + "\n", encoding="utf-8")
        results = list(all_sources()[source].read(path, options))
    frames = [r.frame for r in results if r.frame.height]
    frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame({"_raw": [], "_offset": []})
    return ReadResult(frame.with_columns(pl.col("_raw")), [p for r in results for p in r.problems])


def measure(product: str, source: str, messages: list[str], options: ReadOptions) -> dict[str, object]:
    """Parse ``messages`` as records of ``source`` and count what came out."""
    if source in PARSERS:
        result = parse_records(messages, PARSERS[source], source=source, origin=product, options=options)
    else:
        result = _read_as_file(source, messages, options)
    frame = result.frame
    raw_ok = frame.height and sum(a == messages[o - 1] for a, o in zip(frame["_raw"], frame["_offset"], strict=True))
    entity = [pl.col(c).is_not_null() for c in ENTITY_FIELDS if c in frame.columns]
    classified = (pl.col("class_uid").is_not_null() & (pl.col("class_uid") != "0")) if "class_uid" in frame.columns \
        else pl.lit(False)
    return {
        "product": product,
        "source": source,
        "messages": len(messages),
        "read": frame.height,
        "quarantined": len(result.problems),
        "raw_kept": int(raw_ok or 0),
        "with_time": _share(frame, pl.col("_time").is_not_null()),
        "with_class": _share(frame, classified),
        "with_entity": _share(frame, pl.any_horizontal(entity)) if entity else 0,
    }


def sniffed(messages: list[str], name: str) -> str:
    """The source auto-detection picks for a file holding ``messages`` one per line."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text("\n".join(m.replace("\n", " ") for m in messages) + "\n", encoding="utf-8")
        spec = sniff_source(path)
        return spec.name if spec else "-"


def main() -> int:
    """Print the per-product table and the totals; exit 1 when any message of a read product is lost."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument("--timezone", default="UTC", help="zone of times without one (device local time)")
    args = parser.parse_args()
    all_sources()
    options = ReadOptions(default_timezone=args.timezone)
    rows = []
    raw_dir = args.data / "raw-logs"
    for product, source in sorted(PRODUCTS.items()):
        path = raw_dir / f"{product}.jsonl"
        if not path.exists() or source not in all_sources():
            continue
        messages = [json.loads(line)["message"] for line in path.read_text("utf-8").splitlines() if line.strip()]
        try:
            row = measure(product, source, messages, options)
        except Exception as exc:  # a reader that crashes is a finding to print, not a reason to stop
            print(f"{product}: reader {source} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        row["sniffed"] = sniffed(messages, f"{product}.log")
        rows.append(row)
    for name, source in sorted(LOGHUB.items()):
        path = args.data / "loghub" / name
        if not path.exists():
            continue
        messages = [line for line in path.read_text("utf-8", errors="replace").splitlines() if line.strip()]
        row = measure(f"loghub/{name}", source, messages, options)
        row["sniffed"] = (sniff_source(path).name if sniff_source(path) else "-")  # type: ignore[union-attr]
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        header = f"{'product':28} {'source':13} {'msgs':>5} {'read':>5} {'quar':>4} {'raw%':>6} {'time%':>6} " \
                 f"{'class%':>6} {'entity%':>7}  sniffed"
        print(header)
        print("-" * len(header))
        for r in rows:
            n = max(int(r["messages"]), 1)  # type: ignore[call-overload]

            def pct(key: str, n: int = n, r: dict[str, object] = r) -> str:
                return f"{100 * int(r[key]) / n:6.1f}"  # type: ignore[call-overload]

            print(f"{r['product']:28} {r['source']:13} {r['messages']:>5} {r['read']:>5} {r['quarantined']:>4} "
                  f"{pct('raw_kept')} {pct('with_time')} {pct('with_class')} {pct('with_entity'):>7}  {r['sniffed']}")
        total = sum(int(r["messages"]) for r in rows)  # type: ignore[call-overload]
        read = sum(int(r["read"]) for r in rows)  # type: ignore[call-overload]
        print("-" * len(header))
        print(f"{'all':28} {'':13} {total:>5} {read:>5}  read {100 * read / max(total, 1):.2f}%")
    if not args.json:
        print()
        print_rule_loading(args.data / "sigmahq" / "rules")
    lost = [r for r in rows if r["read"] != r["messages"] or r["raw_kept"] != r["messages"]]
    return 1 if lost else 0


RULE_FOLDERS = ("linux", "macos", "cloud", "identity", "network", "web", "application")


def print_rule_loading(rules: Path) -> None:
    """Print, per SigmaHQ product folder, how many rules load, are refused (with reasons) and are
    routed to a Mamori source by the log-source mappings."""
    try:
        from mamori.detect.sigma import Detector, load_ruleset
    except ImportError:
        print("(Sigma engine not available: rule load rates skipped)")
        return
    if not rules.exists():
        return
    print(f"{'SigmaHQ folder':34} {'rules':>5} {'loaded':>6} {'refused':>7} {'load%':>6} {'routed':>6}")
    for top in RULE_FOLDERS:
        for folder in sorted(p for p in (rules / top).iterdir() if p.is_dir()):
            ruleset = load_ruleset([folder], use_cache=False)
            if not ruleset.rules and not ruleset.refused:
                continue
            unrouted = {id(r) for r in Detector(ruleset).unrouted}
            routed = sum(1 for r in ruleset.rules if id(r) not in unrouted)
            total = len(ruleset.rules) + len(ruleset.refused)
            name = f"{top}/{folder.name}"
            print(f"{name:34} {total:>5} {len(ruleset.rules):>6} {len(ruleset.refused):>7} "
                  f"{100 * len(ruleset.rules) / total:6.1f} {routed:>6}")
            for refusal in ruleset.refused:
                print(f"    refused {refusal.path}: {refusal.reason}")


if __name__ == "__main__":
    sys.exit(main())
