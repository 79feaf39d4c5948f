"""Keep the records a reader could not use: one JSON line each (path, line, reason, raw) appended to a
quarantine file, so nothing is silently lost and the summary can count them."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from mamori.sources.base import ReadProblem

_WHERE = re.compile(r"^(?P<path>.*?)(?::(?P<line>\d+)|@(?P<offset>\d+))?$")


@dataclass
class QuarantineCount:
    """How many records went to quarantine, in all and per reason."""

    total: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, problem: ReadProblem) -> None:
        """Count one quarantined record."""
        self.total += 1
        self.reasons[problem.reason.split(":", 1)[0]] += 1


def split_where(where: str) -> tuple[str, int | None]:
    """Split a problem's ``path:line`` (or ``path@offset``) into the path and the number."""
    match = _WHERE.match(where)
    if not match:
        return where, None
    number = match.group("line") or match.group("offset")
    return match.group("path"), int(number) if number else None


def problem_record(problem: ReadProblem) -> dict[str, object]:
    """The JSON object written for one problem: ``path``, ``line``, ``reason``, ``raw``, ``fatal``."""
    path, line = split_where(problem.where)
    return {"path": path, "line": line, "reason": problem.reason, "raw": problem.raw, "fatal": problem.fatal}


def write_quarantine(problems: Iterable[ReadProblem], target: Path, count: QuarantineCount | None = None) -> int:
    """Append ``problems`` to the JSONL file ``target`` (created with its folder if needed) and flush
    them to disk; return how many were written. ``count`` tallies them by reason for the summary."""
    items = list(problems)
    if not items:
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(orjson.dumps(problem_record(p)) + b"\n" for p in items)
    with target.open("ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if count is not None:
        for problem in items:
            count.add(problem)
    return len(items)


def read_quarantine(target: Path) -> list[dict[str, object]]:
    """Read back a quarantine file (for reports, replays and tests)."""
    if not target.exists():
        return []
    return [orjson.loads(line) for line in target.read_bytes().splitlines() if line.strip()]
