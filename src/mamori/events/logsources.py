"""Which Sigma log sources an event serves, read from data files in ``events/logsources/``.

Each YAML file there names the event sources it applies to (the ``_source`` column) and a list of
entries. An entry says which Sigma log source (product / category / service) the events that meet
its ``when`` conditions serve, and, optionally, ``fields``: a rule field -> event column map that
holds only for those events (Security 4688 calls Sysmon's ``Image`` ``NewProcessName``)::

    sources: [evtx, winjson]
    entries:
      - serves: {product: windows, category: process_creation}
        when: {Channel: [Security], EventID: ["4688"]}
        fields: {Image: NewProcessName, ParentImage: ParentProcessName}

A rule applies to an event when every part of the rule's log source that the rule names is equal
to the same part of one entry the event serves. Mapping is data: a new source needs no engine code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import polars as pl
import yaml

from mamori.errors import MamoriError
from mamori.events import schema

LOGSOURCE_PARTS = ("product", "category", "service")


@dataclass(frozen=True)
class LogSource:
    """A Sigma log source: any of product, category and service may be absent."""

    product: str | None = None
    category: str | None = None
    service: str | None = None

    def label(self) -> str:
        """Return the log source as ``product/category/service`` with ``-`` for a missing part."""
        return "/".join(p or "-" for p in (self.product, self.category, self.service))


@dataclass(frozen=True)
class MappingEntry:
    """One row of a mapping file: the log source served by events meeting ``when``."""

    serves: LogSource
    when: tuple[tuple[str, tuple[str, ...]], ...]
    fields: tuple[tuple[str, str], ...] = ()
    sources: tuple[str, ...] = ()
    origin: str = ""

    def covers(self, wanted: LogSource) -> bool:
        """Tell whether a rule whose log source is ``wanted`` applies to the events of this entry."""
        return all(
            getattr(wanted, part) is None or getattr(wanted, part) == getattr(self.serves, part)
            for part in LOGSOURCE_PARTS
        )


@dataclass(frozen=True)
class LogSourceTable:
    """All mapping entries, loaded once from the data files."""

    entries: tuple[MappingEntry, ...] = field(default_factory=tuple)

    def entries_for(self, wanted: LogSource) -> list[MappingEntry]:
        """Return the entries whose events a rule with log source ``wanted`` applies to."""
        return [e for e in self.entries if e.covers(wanted)]

    def served(self) -> list[LogSource]:
        """Return every distinct log source some mapping entry serves."""
        return sorted({e.serves for e in self.entries}, key=LogSource.label)


def _parse_file(path: Path | str, text: str) -> list[MappingEntry]:
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise MamoriError(f"not valid YAML: {exc}", where=str(path)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise MamoriError("a log-source mapping needs an 'entries' list", where=str(path))
    sources = tuple(str(s) for s in data.get("sources") or ())
    entries = []
    for i, raw in enumerate(data["entries"]):
        where = f"{path}: entries[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("serves"), dict):
            raise MamoriError("each entry needs a 'serves' map", where=where)
        serves = LogSource(**{k: str(v) for k, v in raw["serves"].items() if k in LOGSOURCE_PARTS})
        when_raw = raw.get("when") or {}
        if not isinstance(when_raw, dict):
            raise MamoriError("'when' must map field names to lists of values", where=where)
        when = tuple(
            (str(k), tuple(str(x) for x in (v if isinstance(v, list) else [v]))) for k, v in when_raw.items()
        )
        fields = tuple((str(k), str(v)) for k, v in (raw.get("fields") or {}).items())
        entries.append(MappingEntry(serves, when, fields, sources, str(path)))
    return entries


@functools.cache
def builtin_table() -> LogSourceTable:
    """Load the mapping files shipped in ``mamori/events/logsources``."""
    entries: list[MappingEntry] = []
    folder = resources.files("mamori.events") / "logsources"
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith((".yaml", ".yml")):
            entries.extend(_parse_file(f"mamori/events/logsources/{item.name}", item.read_text("utf-8")))
    return LogSourceTable(tuple(entries))


def load_table(paths: Iterable[Path]) -> LogSourceTable:
    """Load the built-in mapping files plus extra ones a user supplies."""
    entries = list(builtin_table().entries)
    for path in paths:
        entries.extend(_parse_file(path, path.read_text("utf-8")))
    return LogSourceTable(tuple(entries))


def entry_mask(entry: MappingEntry, frame: pl.DataFrame) -> pl.Expr:
    """Return a boolean expression true on the rows of ``frame`` that ``entry`` serves."""
    if entry.sources and schema.SOURCE in frame.columns:
        mask: pl.Expr = pl.col(schema.SOURCE).is_in(list(entry.sources))
    else:
        mask = pl.lit(True)
    for name, values in entry.when:
        if name not in frame.columns:
            return pl.lit(False)
        mask = mask & pl.col(name).is_in(list(values)).fill_null(False)
    return mask


def route(frame: pl.DataFrame, entries: list[MappingEntry]) -> pl.Series:
    """Return a boolean Series: rows of ``frame`` served by any of ``entries``."""
    if not entries:
        return pl.Series([False] * frame.height, dtype=pl.Boolean)
    expr = pl.any_horizontal([entry_mask(e, frame) for e in entries])
    return frame.select(expr.alias("m")).to_series()


def apply_field_aliases(frame: pl.DataFrame, entries: list[MappingEntry]) -> pl.DataFrame:
    """Add or fill the rule-side field names that some entries give another name in the events."""
    updates: dict[str, pl.Expr] = {}
    for entry in entries:
        if not entry.fields:
            continue
        mask = entry_mask(entry, frame)
        for rule_field, event_column in entry.fields:
            if event_column not in frame.columns:
                continue
            base = updates.get(rule_field)
            if base is None:
                base = pl.col(rule_field) if rule_field in frame.columns else pl.lit(None, dtype=pl.Utf8)
            updates[rule_field] = pl.when(mask).then(pl.col(event_column)).otherwise(base)
    if not updates:
        return frame
    return frame.with_columns([expr.alias(name) for name, expr in updates.items()])


def entries_by_source(table: LogSourceTable) -> Mapping[str, list[MappingEntry]]:
    """Group mapping entries by the event source they apply to (for ``mamori sources``)."""
    grouped: dict[str, list[MappingEntry]] = {}
    for entry in table.entries:
        for source in entry.sources or ("*",):
            grouped.setdefault(source, []).append(entry)
    return grouped
