"""Follow files and folders: new lines of text logs, and whole EVTX files dropped in a folder.

Files are known by (device, inode), so a rotated file (renamed, a new one created) is read to its end
and the new one from its start; a truncated file (copytruncate) is read again from the start. Each
chunk goes to the spool with an idempotency key naming the file and byte range, and the checkpoint
(offset per file) is saved after the chunk is durable; after a crash the checkpoint may be a little
behind, and the keys make the re-read chunks no-ops. Only whole lines are taken.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from mamori.collect.spool import Entry, Spool
from mamori.collect.syslog_listen import QUARANTINE

log = logging.getLogger("mamori.collect.tail")
CHUNK_BYTES = 1 << 20
SKIP_SUFFIXES = (".tmp", ".part", ".swp", ".gz", ".zip")


@dataclass
class _Followed:
    path: Path
    offset: int
    head: bytes = b""  # first bytes when last read: a rewritten file (copytruncate) starts differently
    handle: BinaryIO | None = None


def _identity(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}"


class Tailer:
    """Polls ``paths`` (files or folders) and spools what is new; checkpoints in ``checkpoint_file``."""

    def __init__(self, paths: list[Path], spool: Spool, checkpoint_file: Path, source: str | None = None,
                 max_line_bytes: int = 65536, interval: float = 0.5) -> None:
        self.paths = paths
        self.spool = spool
        self.checkpoint_file = checkpoint_file
        self.source = source
        self.max_line_bytes = max_line_bytes
        self.interval = interval
        self.files: dict[str, _Followed] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending_sizes: dict[str, int] = {}  # EVTX: size seen at the previous poll (wait until stable)
        self._load()

    def _load(self) -> None:
        if self.checkpoint_file.exists():
            for key, item in orjson.loads(self.checkpoint_file.read_bytes()).items():
                head = bytes.fromhex(item.get("head", ""))
                self.files[key] = _Followed(Path(item["path"]), int(item["offset"]), head)

    def _save(self) -> None:
        data = {key: {"path": str(f.path), "offset": f.offset, "head": f.head.hex()}
                for key, f in self.files.items()}
        tmp = self.checkpoint_file.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            handle.write(orjson.dumps(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.checkpoint_file)

    def start(self) -> None:
        """Poll on a background thread."""
        self._thread = threading.Thread(target=self._run, name="tail", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and close the files."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # a bad file must not stop the tailer
                log.exception("tail poll failed")
            self._stop.wait(self.interval)

    def _candidates(self) -> list[Path]:
        out: list[Path] = []
        for root in self.paths:
            if root.is_dir():
                out += sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                              and not p.name.endswith(SKIP_SUFFIXES))
            elif root.is_file():
                out.append(root)
        return out

    def poll(self) -> int:
        """Read what is new in every followed file; return the records spooled."""
        spooled = 0
        current: list[tuple[Path, os.stat_result]] = []
        for path in self._candidates():
            try:
                current.append((path, path.stat()))
            except OSError:
                continue
        present = {_identity(stat) for _, stat in current}
        for key, followed in list(self.files.items()):
            if key not in present:  # rotated away or deleted: read what is left through the open handle
                if followed.handle is not None:
                    spooled += self._lines(key, followed)
                    followed.handle.close()
                del self.files[key]
        for path, stat in current:
            while self.spool.full and not self._stop.is_set():
                time.sleep(0.05)  # back-pressure: files wait on disk
            key = _identity(stat)
            known = self.files.get(key)
            followed = known if known is not None else _Followed(path, 0)
            self.files[key] = followed
            followed.path = path
            if path.suffix.lower() == ".evtx":
                spooled += self._evtx(key, followed, stat.st_size)
                continue
            if stat.st_size < followed.offset or (followed.head and not self._same_head(followed)):
                followed.offset = 0  # truncated or rewritten in place: start again
                followed.head = b""
            spooled += self._lines(key, followed)
        self._save()
        return spooled

    def _same_head(self, followed: _Followed) -> bool:
        try:
            with followed.path.open("rb") as handle:
                return handle.read(len(followed.head)) == followed.head
        except OSError:
            return True

    def close(self) -> None:
        """Close the open files (``stop`` does it for a started tailer)."""
        for followed in self.files.values():
            if followed.handle is not None:
                followed.handle.close()
                followed.handle = None

    def _lines(self, key: str, followed: _Followed) -> int:
        if followed.handle is None:
            try:
                followed.handle = followed.path.open("rb")
            except OSError:
                return 0
        handle = followed.handle
        total = 0
        while True:
            handle.seek(followed.offset)
            data = handle.read(CHUNK_BYTES)
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) > self.max_line_bytes:  # a line with no end in sight: quarantine it and skip
                    self._quarantine(followed, "line longer than the limit", data[:2048])
                    followed.offset += len(data)
                    continue
                return total
            chunk = data[:end + 1]
            lines: list[str] = []
            bad: list[str] = []
            for raw in chunk.split(b"\n"):
                raw = raw.rstrip(b"\r")
                if not raw.strip():
                    continue
                if len(raw) > self.max_line_bytes:
                    bad.append(f"line longer than the {self.max_line_bytes}-byte limit")
                    continue
                lines.append(raw.decode("utf-8", errors="replace"))
            start = followed.offset
            if lines:
                fmt = "json" if lines[0].lstrip().startswith("{") else "syslog"
                origin = f"file:{self.source or fmt}:{followed.path}@{start}"
                chunk_key = f"tail:{key}:{start}:{zlib.crc32(chunk):08x}"
                self._append(Entry(fmt, origin, tuple(lines), time.time_ns(), chunk_key))
                total += len(lines)
            for reason in bad:
                self._quarantine(followed, reason, b"")
            followed.offset = start + len(chunk)
            if len(followed.head) < 64:
                handle.seek(0)
                followed.head = handle.read(min(64, followed.offset))

    def _evtx(self, key: str, followed: _Followed, size: int) -> int:
        if followed.offset >= size and size > 0:
            return 0
        if self._pending_sizes.get(key) != size:  # still being written: wait for a stable size
            self._pending_sizes[key] = size
            return 0
        from mamori.sources.evtx import read_evtx

        total = 0
        for part, result in enumerate(read_evtx(followed.path)):
            rows = result.frame.drop([c for c in result.frame.columns if c.startswith("_")]).to_dicts()
            records = [orjson.dumps({k: v for k, v in row.items() if v is not None}).decode() for row in rows]
            if records:
                self._append(Entry("json", f"file:evtx:{followed.path}#{part}", tuple(records), time.time_ns(),
                                   f"evtx:{key}:{size}:{part}"))
                total += len(records)
            for problem in result.problems:
                self._quarantine(followed, f"{problem.where}: {problem.reason}", problem.raw.encode()[:2048])
        followed.offset = size
        self._pending_sizes.pop(key, None)
        return total

    def _append(self, entry: Entry) -> None:
        """Spool a chunk unless its key shows it was spooled before a crash (then it is a no-op)."""
        if entry.key is None or entry.key not in self.spool.keys:
            self.spool.append_wait(entry)

    def _quarantine(self, followed: _Followed, reason: str, raw: bytes) -> None:
        record: dict[str, Any] = {"where": str(followed.path), "reason": reason,
                                  "raw": raw.decode("utf-8", errors="backslashreplace")}
        self.spool.append_wait(Entry(QUARANTINE, f"file:{followed.path}", (orjson.dumps(record).decode(),),
                                     time.time_ns()))
