"""HTTP idempotency keys remembered after their spool segment is gone.

The spool knows the keys of the entries it still holds, and those go once their segment is pruned (a
few minutes after it is stored). An HTTP client that retries a batch later than that (an agent that
buffered through an outage, a collector restarted with its queue) must still be told "accepted
before" instead of having its events stored twice. Before a segment is deleted, its HTTP keys are
written here, in a small SQLite file beside the spool, with the time their entry was received; keys
older than ``keep_seconds`` (a day by default) are forgotten. A file tailer's keys are not kept: its
checkpoint already says what was read.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

HTTP_ORIGIN = "http:"  # the origin prefix of entries sent through the HTTP ingest API


class KeyLedger:
    """Idempotency keys of pruned spool entries, each kept ``keep_seconds`` after it was received."""

    def __init__(self, path: Path, keep_seconds: float = 86_400.0) -> None:
        self.path = path
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS http_keys (key TEXT PRIMARY KEY, received REAL NOT NULL) "
                         "WITHOUT ROWID")
        self._db.execute("CREATE INDEX IF NOT EXISTS http_keys_received ON http_keys (received)")

    def remember(self, keys: Iterable[tuple[str, float]]) -> None:
        """Keep (key, received as Unix seconds) pairs, and forget those past ``keep_seconds``; durable
        when this returns (the caller deletes the spool segment only then)."""
        cutoff = time.time() - self.keep_seconds
        rows = [(key, received) for key, received in keys if received >= cutoff]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO http_keys (key, received) VALUES (?, ?)", rows)
                self._db.execute("DELETE FROM http_keys WHERE received < ?", (cutoff,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` was accepted within ``keep_seconds``."""
        with self._lock:
            row = self._db.execute("SELECT received FROM http_keys WHERE key = ?", (key,)).fetchone()
        return row is not None and row[0] >= time.time() - self.keep_seconds

    def __len__(self) -> int:
        """How many keys are kept (for metrics and tests)."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM http_keys").fetchone()[0])

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()
