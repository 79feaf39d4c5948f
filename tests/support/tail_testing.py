"""What the tailer tests share: the lines a spool holds, and one poll by a freshly started tailer."""

from __future__ import annotations

from pathlib import Path

from mamori.collect.spool import Spool
from mamori.collect.tail import Tailer


def spooled_lines(spool: Spool) -> list[str]:
    """Every record the spool holds, in order (quarantined ones left out)."""
    return [record for entry in spool.read(0, 1_000_000, 0.05) if entry.fmt != "quarantine"
            for record in entry.records]


def poll_once(paths: list[Path], spool: Spool, checkpoint: Path) -> int:
    """One poll by a freshly started tailer (a service start); the lines it spooled."""
    tailer = Tailer(paths, spool, checkpoint)
    try:
        return tailer.poll()
    finally:
        tailer.close()
