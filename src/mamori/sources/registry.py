"""Find the readers: every module in ``mamori.sources`` that defines ``SPECS`` (a list of SourceSpec)."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Iterable
from pathlib import Path

import mamori.sources
from mamori.errors import MamoriError
from mamori.sources.base import SourceSpec
from mamori.sources.evtx_repair import FILE_MAGIC

SNIFF_BYTES = 8192


@functools.cache
def all_sources() -> dict[str, SourceSpec]:
    """Return every known source by name, collected from the modules of ``mamori.sources``."""
    found: dict[str, SourceSpec] = {}
    for info in pkgutil.iter_modules(mamori.sources.__path__):
        if info.name in {"base", "registry"}:
            continue
        module = importlib.import_module(f"mamori.sources.{info.name}")
        for spec in getattr(module, "SPECS", ()):
            found[spec.name] = spec
    return dict(sorted(found.items()))


def get_source(name: str) -> SourceSpec:
    """Return the source called ``name`` or raise an error listing the known ones."""
    sources = all_sources()
    if name not in sources:
        raise MamoriError(f"unknown source {name!r}", hint=f"known sources: {', '.join(sources)}")
    return sources[name]


def sniff_source(path: Path) -> SourceSpec | None:
    """Guess the source of a file from its first bytes and its name; None when nothing claims it."""
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return None
    return sniff_head(head, path.name)


def sniff_head(head: bytes, name: str = "", candidates: Iterable[str] | None = None) -> SourceSpec | None:
    """The source whose sniffer claims ``head`` (a file's first bytes, or one record) with the highest
    priority, among ``candidates`` (names; default every source); None when none claims it. The tailer
    asks it of a file's first bytes decoded from their own encoding, the live inputs of one message."""
    sources = all_sources()
    if candidates is None and head.startswith(FILE_MAGIC):  # EVTX: the signature settles it
        return sources["evtx"]
    specs = sources.values() if candidates is None else [sources[n] for n in candidates]
    claims = [s for s in specs if _safe_sniff(s, head, name)]
    return max(claims, key=lambda s: s.priority) if claims else None


def _safe_sniff(spec: SourceSpec, head: bytes, name: str) -> bool:
    try:
        return bool(spec.sniff(head, name))
    except Exception:
        return False
