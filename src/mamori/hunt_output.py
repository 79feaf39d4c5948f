"""Present a hunt: the detections as table, CSV or JSON Lines, and a rich terminal summary."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from typing import IO, Any

import orjson
from rich.console import Console
from rich.table import Table

from mamori.detect.attack import level_rank, tactics
from mamori.hunt import HuntResult

CSV_COLUMNS = ("time", "rule_level", "rule_title", "rule_id", "rule_author", "host", "channel", "event_id",
               "record_id", "source_file", "tags", "match")
LEVEL_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "informational": "dim"}


def write_jsonl(detections: Sequence[dict[str, Any]], out: IO[bytes]) -> None:
    """One detection per line (the contract other tools rely on)."""
    for detection in detections:
        out.write(orjson.dumps(detection, option=orjson.OPT_NON_STR_KEYS) + b"\n")


def write_csv(detections: Sequence[dict[str, Any]], out: IO[str]) -> None:
    """The main columns of each detection, tags joined with ``;``."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for d in detections:
        writer.writerow([";".join(d.get(c) or []) if c == "tags" else d.get(c) for c in CSV_COLUMNS])


def detections_table(detections: Sequence[dict[str, Any]], limit: int | None = None) -> Table:
    """A rich table of detections, most severe first."""
    table = Table(title=f"Detections ({len(detections)})", show_lines=False)
    for name in ("time", "level", "rule", "host", "event", "file"):
        table.add_column(name, overflow="fold")
    ordered = sorted(detections, key=lambda d: (-level_rank(d["rule_level"]), d.get("time") or ""))
    for d in ordered[:limit] if limit else ordered:
        table.add_row(d.get("time") or "", f"[{LEVEL_STYLE.get(d['rule_level'], '')}]{d['rule_level']}",
                      d["rule_title"], str(d.get("host") or ""),
                      f"{d.get('channel') or ''} {d.get('event_id') or ''}".strip(),
                      str(d.get("source_file") or "").rsplit("/", 1)[-1])
    return table


def render_table(detections: Sequence[dict[str, Any]]) -> str:
    """The detections table as plain text (for ``--format table --output FILE``)."""
    buffer = io.StringIO()
    Console(file=buffer, width=200, no_color=True).print(detections_table(detections))
    return buffer.getvalue()


def _matched_by(processes: int) -> str:
    return "matched in one process" if processes == 1 else f"shared out over {processes} processes"


def print_summary(result: HuntResult, console: Console, top: int = 15) -> None:
    """Counts by level, tactic and host, the top rules, the files read, speed, and every problem."""
    detections = result.detections
    rate = result.events / result.seconds if result.seconds else 0.0
    rules_fired = {d["rule_id"] for d in detections}
    console.print(f"[bold]mamori hunt[/]: {result.events:,} events from {len(result.files)} files in "
                  f"{result.seconds:.2f} s ({rate:,.0f} events/s); {result.rules_loaded:,} rules "
                  f"({_matched_by(result.rule_processes)}), "
                  f"{result.correlations_loaded} correlations; {len(detections):,} detections "
                  f"from {len(rules_fired)} rules")
    levels = Counter(d["rule_level"] for d in detections)
    by_level = Table(title="By level")
    by_level.add_column("level")
    by_level.add_column("detections", justify="right")
    for level in ("critical", "high", "medium", "low", "informational"):
        if levels.get(level):
            by_level.add_row(f"[{LEVEL_STYLE[level]}]{level}", str(levels[level]))
    console.print(by_level)
    tactic_counts = Counter(t for d in detections for t in d.get("tactics", []))
    if tactic_counts:
        by_tactic = Table(title="By ATT&CK tactic")
        by_tactic.add_column("tactic")
        by_tactic.add_column("detections", justify="right")
        for tactic in tactics():
            if tactic_counts.get(tactic.tag):
                by_tactic.add_row(f"{tactic.en} ({tactic.id})", str(tactic_counts[tactic.tag]))
        console.print(by_tactic)
    hosts = Counter(d.get("host") or "-" for d in detections)
    if hosts:
        by_host = Table(title="By host")
        by_host.add_column("host")
        by_host.add_column("detections", justify="right")
        for host, count in hosts.most_common(top):
            by_host.add_row(host, str(count))
        console.print(by_host)
    rule_counts = Counter((d["rule_level"], d["rule_title"]) for d in detections)
    if rule_counts:
        top_rules = Table(title=f"Top rules ({len(rule_counts)} fired)")
        top_rules.add_column("level")
        top_rules.add_column("rule")
        top_rules.add_column("detections", justify="right")
        for (level, title), count in rule_counts.most_common(top):
            top_rules.add_row(f"[{LEVEL_STYLE.get(level, '')}]{level}", title, str(count))
        console.print(top_rules)
    files = Table(title="Files read")
    files.add_column("file", overflow="fold")
    files.add_column("source")
    files.add_column("events", justify="right")
    files.add_column("status")
    for report in sorted(result.files, key=lambda r: r.path)[:top]:
        if not report.problems:
            status = "ok"
        elif report.complete:
            status = f"[yellow]{report.quarantined} quarantined"
        else:
            status = f"[red]{len(report.problems)} problem(s)"
        files.add_row(report.path, report.source, str(report.events), status)
    if len(result.files) > top:
        files.add_row(f"... and {len(result.files) - top} more", "", "", "")
    console.print(files)
    problems = [p for r in result.files for p in r.problems]
    for problem in problems[:50]:
        console.print(f"[red]input problem[/] {problem.where}: {problem.reason}")
    if len(problems) > 50:
        console.print(f"[red]... {len(problems) - 50} more input problems[/]")
    for path, reason in result.skipped[:20]:
        console.print(f"[dim]skipped {path}: {reason}[/]")
    if len(result.skipped) > 20:
        console.print(f"[dim]... {len(result.skipped) - 20} more files skipped[/]")
    for refusal in result.refused[:50]:
        console.print(f"[yellow]rule refused[/] {refusal.path}: {refusal.reason}")
    if len(result.refused) > 50:
        console.print(f"[yellow]... {len(result.refused) - 50} more rules refused "
                      "(see `mamori rules list --refused`)[/]")
    if result.unrouted_rules:
        console.print(f"[dim]{len(result.unrouted_rules)} rules have a log source no reader serves yet "
                      "(see `mamori rules list`)[/]")
