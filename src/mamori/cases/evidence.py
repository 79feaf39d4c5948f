"""Evidence files: stored by content under ``<data>/evidence/<sha256>``, never under a name a user chose.

The same content uploaded twice is stored once. Files are written to a temporary name, synced and
renamed (atomic); the upload's own name is kept only as text in the database, cleaned of any path.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mamori.errors import MamoriError

MAX_EVIDENCE_BYTES = 64 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass(frozen=True)
class StoredFile:
    """Where an evidence file went: its SHA-256, size and path relative to the data folder."""

    sha256: str
    size: int
    relative_path: str


def clean_filename(name: str) -> str:
    """The display name of an upload: the last path component, no control characters, at most 200 characters."""
    base = re.split(r"[/\\]", name or "")[-1]
    cleaned = _UNSAFE.sub("_", base).strip(" .")
    return cleaned[:200] or "evidence.bin"


def evidence_path(evidence_dir: Path, sha256: str) -> Path:
    """The file holding the content with this SHA-256 (the digest is checked, so it cannot name another path)."""
    if not _SHA256.match(sha256):
        raise MamoriError(f"{sha256!r} is not a SHA-256 digest", where="evidence")
    return evidence_dir / sha256


def store_evidence(evidence_dir: Path, data: bytes, max_bytes: int = MAX_EVIDENCE_BYTES) -> StoredFile:
    """Store ``data`` under its SHA-256 (once per content); refuse it when larger than ``max_bytes``."""
    if len(data) > max_bytes:
        raise MamoriError(f"the evidence file is {len(data)} bytes; the limit is {max_bytes}", where="evidence",
                          hint="split the file or attach a smaller extract")
    digest = hashlib.sha256(data).hexdigest()
    evidence_dir.mkdir(parents=True, exist_ok=True)
    target = evidence_path(evidence_dir, digest)
    if not target.exists():
        handle, temporary = tempfile.mkstemp(dir=evidence_dir, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return StoredFile(digest, len(data), f"evidence/{digest}")


def read_evidence(evidence_dir: Path, sha256: str) -> bytes:
    """The stored content with this SHA-256, checked against the digest (a changed file is an error)."""
    path = evidence_path(evidence_dir, sha256)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MamoriError(f"the evidence file is missing: {exc}", where=str(path)) from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise MamoriError("the stored evidence no longer matches its SHA-256", where=str(path),
                          hint="the file was changed on disk; restore it from a backup")
    return data
