"""A Detector kept on disk ready to run: a warm start unpickles it instead of building it.

A Detector is the rule set plus what is built from it before the first batch (rule groups, routing
table, literal banks): building it from a cached rule set costs as much again as loading that rule
set, in every hunt. It is cached beside the rule set (``ruleset``), under a key of the rule set's key
(every rule file's path, size, modification time and inode), the files of the code whose objects it
holds (``mamori.detect.sigma`` and ``mamori.events``, with the log-source mapping files) and the
versions of Python and of the libraries it holds objects of. Any edit there builds it anew.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mamori.detect.sigma.engine import Detector
from mamori.detect.sigma.ruleset import (
    default_cache_dir,
    load_ruleset_later_cache,
    no_gc,
    rule_files_stamp,
    write_in_child,
    write_pickle,
)

_PACKAGE = Path(__file__).resolve().parents[2]  # the ``mamori`` folder
CODE_FOLDERS = ("detect/sigma", "events", "events/logsources")  # what a pickled Detector's objects come from


def load_detector(
    sources: Sequence[Path],
    cache_dir: Path | None = None,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    workers: int | None = None,
    use_cache: bool = True,
) -> tuple[Detector, Callable[[bool], None]]:
    """The Detector of every rule under ``sources``: from the cache when warm, else built (from the
    rule-set cache or the rule files). The second item writes what was missing from the cache when
    called, from a forked child if asked (``background``): a caller whose every core is busy matching
    calls it once its work is done."""
    setting = repr(sorted((placeholders or {}).items())).encode()
    stamp = rule_files_stamp(sources, setting) if use_cache else None
    cache_file = (cache_dir or default_cache_dir()) / f"detector-{_detector_key(stamp)}.pickle" if stamp else None
    if cache_file is not None and cache_file.exists():
        try:
            with cache_file.open("rb") as handle, no_gc():
                cached = pickle.load(handle)
            if isinstance(cached, Detector):
                return cached, _written
        except Exception:  # any unreadable cache (a library changed under it) is rebuilt
            pass
    ruleset, write_ruleset = load_ruleset_later_cache(sources, cache_dir, placeholders, workers, use_cache)
    with no_gc():
        detector = Detector(ruleset)

    def write() -> None:
        write_ruleset(False)
        if cache_file is not None:  # a Detector as built, before any batch ran (this one has run by now),
            fresh = Detector(ruleset)  # with its screen: a warm start screens its first batch at no cost
            fresh.build_screen()
            write_pickle(cache_file, fresh)

    def write_cache(background: bool) -> None:
        if background:
            write_in_child(write)
        else:
            write()

    return detector, write_cache


def _written(background: bool) -> None:
    """The cache write of a Detector read from the cache: nothing to do."""


def _detector_key(rules_stamp: str) -> str:
    """The cache key of a Detector: the rule set's key, the code its objects come from, the versions."""
    digest = hashlib.blake2b(rules_stamp.encode(), digest_size=20)
    digest.update(sys.version.encode())
    for name in ("numpy", "polars", "pyarrow", "ahocorasick"):
        module = sys.modules.get(name)
        digest.update(f"{name}={getattr(module, '__version__', '?')}\n".encode())
    for folder in CODE_FOLDERS:
        try:
            entries = sorted(os.scandir(_PACKAGE / folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_file() and entry.name.endswith((".py", ".yaml", ".yml")):
                status = entry.stat()
                digest.update(f"{folder}/{entry.name}\x00{status.st_size}\x00{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()
