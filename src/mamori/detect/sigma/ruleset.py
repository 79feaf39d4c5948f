"""Load a whole rule set: read every file, parse in parallel on a cold start, reuse a cache when warm.

The cache is keyed by every rule file's path, size, modification time and inode (and the engine
version), so any edited, added or removed file invalidates it without a warm start reading the
rules; the rule set's own digest is over the files' content. Written atomically (write, then rename).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import multiprocessing
import os
import pickle
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from mamori.detect.sigma.correlation import vet_correlations
from mamori.detect.sigma.loader import RULE_SUFFIXES, iter_rule_texts, parse_rule_text
from mamori.detect.sigma.model import Correlation, Filter, Refusal, RefusalKind, Rule, RuleSet
from mamori.detect.sigma.plan import Plan, SelectionPlans, rule_plans

CACHE_VERSION = "mamori-sigma-9"  # bump when the model or plan classes change
PARALLEL_THRESHOLD = 400  # files; below this a worker pool costs more than it saves


def default_cache_dir() -> Path:
    """Where compiled rule sets are cached: ``$MAMORI_CACHE_DIR``, else ``$XDG_CACHE_HOME/mamori``."""
    explicit = os.environ.get("MAMORI_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mamori"


Parsed = tuple[list[Rule | Correlation | Filter], list[Refusal], dict[str, tuple[Plan, SelectionPlans]]]


def _parse_chunk(args: tuple[list[tuple[str, bytes]], Mapping[str, Sequence[str]] | None]) -> Parsed:
    """Parse and compile a share of the rule files (runs in a worker process on a cold start)."""
    chunk, placeholders = args
    items: list[Rule | Correlation | Filter] = []
    refused: list[Refusal] = []
    plans: dict[str, tuple[Plan, SelectionPlans]] = {}
    for path, text in chunk:
        got, bad = parse_rule_text(path, text, placeholders)
        items.extend(got)
        refused.extend(bad)
    for item in items:
        if isinstance(item, Rule):
            try:
                plans[item.path] = rule_plans(item)
            except (TypeError, ValueError, KeyError) as exc:
                refused.append(Refusal(item.path, f"cannot compile: {exc}", item.id, kind=RefusalKind.CANNOT_COMPILE))
    return [i for i in items if not isinstance(i, Rule) or i.path in plans], refused, plans


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cycle collector while building millions of small, acyclic rule objects (parsing or
    unpickling them): it would scan them again and again for nothing (3x slower loads measured)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.freeze()  # the rules live as long as the process: keep them out of later collections


def load_ruleset(
    sources: Sequence[Path],
    cache_dir: Path | None = None,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    workers: int | None = None,
    use_cache: bool = True,
    background_cache_write: bool = False,
) -> RuleSet:
    """Load every rule under ``sources`` (folders, files, zips) into one RuleSet with its refusals.

    ``background_cache_write``: write the cache from a forked child so a cold start does not wait for
    it (half a second for the SigmaHQ set); only for callers that end soon after (the hunt command),
    since the child is not reaped."""
    ruleset, write_cache = load_ruleset_later_cache(sources, cache_dir, placeholders, workers, use_cache)
    write_cache(background_cache_write)
    return ruleset


def load_ruleset_later_cache(
    sources: Sequence[Path],
    cache_dir: Path | None = None,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    workers: int | None = None,
    use_cache: bool = True,
) -> tuple[RuleSet, Callable[[bool], None]]:
    """``load_ruleset``, leaving the cache write (after a cold load) to the caller: the second item writes
    it when called, from a forked child if asked (``background``). For a caller that has better use for
    the CPU right now (a hunt whose every core is matching) and writes once its work is done."""
    setting = repr(sorted((placeholders or {}).items())).encode()
    stamp = rule_files_stamp(sources, setting) if use_cache else None
    cache_file = (cache_dir or default_cache_dir()) / f"rules-{stamp}.pickle"
    if stamp is not None and cache_file.exists():
        try:
            with cache_file.open("rb") as handle, no_gc():
                cached = pickle.load(handle)
            if isinstance(cached, RuleSet):
                return cached, _written
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            pass
    texts = [(path, data if isinstance(data, bytes) else data.encode()) for path, data in iter_rule_texts(sources)]
    digest = hashlib.blake2b(CACHE_VERSION.encode(), digest_size=20)
    digest.update(setting)
    for path, data in texts:
        digest.update(path.encode())
        digest.update(b"\x00")
        digest.update(hashlib.blake2b(data, digest_size=16).digest())
    key = digest.hexdigest()
    with no_gc():
        items, refused, plans = _parse_all(texts, placeholders, workers)
    ruleset = _assemble(items, refused, key, plans)

    def write_cache(background: bool) -> None:
        if stamp is None:
            return
        if background:
            write_in_child(lambda: write_pickle(cache_file, ruleset))
        else:
            write_pickle(cache_file, ruleset)

    return ruleset, write_cache


def _written(background: bool) -> None:
    """The cache write of a rule set read from the cache: nothing to do."""


def rule_files_stamp(sources: Sequence[Path], setting: bytes) -> str | None:
    """The cache key of a rule set: every rule file's path, size, modification time and inode (what
    Python itself trusts for its bytecode), so a warm start reads no rule file at all; None when a
    source is missing (the cold path then says which)."""
    digest = hashlib.blake2b(CACHE_VERSION.encode(), digest_size=20)
    digest.update(setting)
    try:
        for source in sources:
            for path in rule_files(str(source)) if source.is_dir() else [str(source)]:
                status = os.stat(path)
                if stat.S_ISREG(status.st_mode):
                    digest.update(f"{path}\x00{status.st_size}\x00{status.st_mtime_ns}\x00{status.st_ino}\n".encode())
    except OSError:
        return None
    return digest.hexdigest()


def rule_files(folder: str) -> list[str]:
    """Every rule file under a folder, in a stable order (plain strings: thousands of files)."""
    found: list[str] = []
    for root, _dirs, names in os.walk(folder):
        found.extend(os.path.join(root, n) for n in names if n.lower().endswith(RULE_SUFFIXES))
    return sorted(found)


def _parse_all(texts: list[tuple[str, bytes]], placeholders: Mapping[str, Sequence[str]] | None,
               workers: int | None) -> Parsed:
    count = workers or min(os.cpu_count() or 1, 4)
    if count < 2 or len(texts) < PARALLEL_THRESHOLD or "forkserver" not in multiprocessing.get_all_start_methods():
        return _parse_chunk((texts, placeholders))
    chunks = [(texts[i::count], placeholders) for i in range(count)]
    context = multiprocessing.get_context("forkserver")  # never fork a process with running threads
    with context.Pool(count - 1) as pool:
        pending = pool.map_async(_parse_chunk, chunks[1:])
        first = _parse_chunk(chunks[0])
        rest = pending.get()
    items = list(first[0])
    refused = list(first[1])
    plans = dict(first[2])
    for got, bad, more in rest:
        items.extend(got)
        refused.extend(bad)
        plans.update(more)
    return items, refused, plans


def _assemble(items: list[Rule | Correlation | Filter], refused: list[Refusal], key: str,
              plans_by_path: dict[str, tuple[Plan, SelectionPlans]]) -> RuleSet:
    """Order rules by path, refuse duplicate ids, split rules from correlations, apply the meta-filters."""
    ruleset = RuleSet(digest=key, refused=sorted(refused, key=lambda r: r.path))
    seen: dict[str, str] = {}
    filters: list[Filter] = []
    for item in sorted(items, key=lambda i: i.path):
        if isinstance(item, Filter):
            filters.append(item)
            continue
        if item.id in seen:
            ruleset.refused.append(Refusal(item.path, f"duplicate rule id {item.id} (first in {seen[item.id]})",
                                           item.id, kind=RefusalKind.DUPLICATE_ID))
            continue
        seen[item.id] = item.path
        if isinstance(item, Correlation):
            ruleset.correlations.append(item)
        else:
            ruleset.rules.append(item)
            ruleset.plans[item.id], ruleset.selection_plans[item.id] = plans_by_path[item.path]
    apply_filters(ruleset, filters)
    ruleset.correlations, refusals = vet_correlations(ruleset.correlations, ruleset.rules)
    ruleset.refused.extend(refusals)
    return ruleset


# the first words of the reasons of a filter refused for tuning no rule (``hunt_shares`` merges these over
# the shares: a filter may tune rules of another share); code tells them apart by ``Refusal.kind``, not words
FILTER_NAMES_NO_RULE = "the filter names no loaded rule"
FILTER_APPLIES_TO_NONE = "the filter applies to no rule"


def apply_filters(ruleset: RuleSet, filters: Sequence[Filter]) -> None:
    """Tune the rules with the meta-filters that apply to them (``Filter.applies_to``): each such rule
    gets the filter (keeping its own id, author and selections) and its plan made again, now
    ``(rule) and not (filter)``; the workers compiled the rules before any filter was known. A filter
    naming no loaded rule, or applying to none (a log source no named rule has), is refused with the
    reason; a filter id met twice is refused the second time."""
    if not filters:
        return
    seen: dict[str, str] = {}
    used: list[Filter] = []
    for meta_filter in filters:
        if meta_filter.id in seen:
            ruleset.refused.append(Refusal(meta_filter.path, f"duplicate filter id {meta_filter.id} "
                                           f"(first in {seen[meta_filter.id]})", meta_filter.id,
                                           kind=RefusalKind.DUPLICATE_ID))
        else:
            seen[meta_filter.id] = meta_filter.path
            used.append(meta_filter)
    known = {r.id for r in ruleset.rules} | {r.name for r in ruleset.rules if r.name}
    tuned: dict[str, int] = {}
    for position, rule in enumerate(ruleset.rules):
        mine = tuple(f for f in used if f.applies_to(rule))
        if mine:
            rule = ruleset.rules[position] = replace(rule, filters=rule.filters + mine)
            ruleset.plans[rule.id] = rule_plans(rule)[0]  # (the selection plans stay the rule's own)
            for meta_filter in mine:
                tuned[meta_filter.id] = tuned.get(meta_filter.id, 0) + 1
    for meta_filter in used:
        if meta_filter.id in tuned:
            ruleset.filters.append(meta_filter)
            continue
        named = [r for r in meta_filter.rules if r in known]
        if meta_filter.rules and not named:
            kind = RefusalKind.FILTER_NAMES_NO_RULE
            reason = f"{FILTER_NAMES_NO_RULE}: {', '.join(meta_filter.rules)}; name loaded rules by id or name"
        else:
            kind = RefusalKind.FILTER_APPLIES_TO_NONE
            reason = (f"{FILTER_APPLIES_TO_NONE}: no {'named ' if named else ''}rule has a log source inside "
                      f"{meta_filter.logsource.label()} (product/category/service)")
        ruleset.refused.append(Refusal(meta_filter.path, reason, meta_filter.id, kind=kind))
    ruleset.refused.sort(key=lambda r: r.path)


def write_in_child(write: Callable[[], None]) -> None:
    """Run ``write`` (a cache write) in a forked copy of this process, which then exits at once, so the
    caller does not wait for it; in this process where there is no fork. The copy runs at the lowest
    priority, so it never slows what runs next (the next command, the next test), and lets go of the
    standard streams at once, so a caller reading this command's output through pipes sees them close
    when the command ends, not when the cache is written."""
    try:
        pid = os.fork() if hasattr(os, "fork") else -1
    except OSError:
        pid = -1
    if pid < 0:
        write()
    elif pid == 0:  # the child: write, then leave without running the parent's exit handlers
        try:
            _into_background()
            write()
        finally:
            os._exit(0)


def _into_background() -> None:
    """Lowest CPU priority, and the standard streams on /dev/null (see ``write_in_child``)."""
    try:
        os.nice(19)
        null = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):
            os.dup2(null, stream)
        os.close(null)
    except OSError:
        pass  # still writes the cache, only less politely


def write_pickle(cache_file: Path, value: object) -> None:
    """Pickle ``value`` to ``cache_file`` atomically (a temporary file, then a rename); a cache that
    cannot be written only costs time, so write errors are ignored."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".tmp{os.getpid()}")
        with temporary.open("wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        temporary.replace(cache_file)
    except OSError:
        pass
