"""Retro-hunt: search stored events (a lazy frame over the Parquet lake, or a frame) for new indicators.

A cheap filter built from the indicators' values runs first, inside the scan (so Parquet readers
skip what cannot match and read only the mapped columns); the exact matcher then runs on the few
rows left, so a retro-hunt finds exactly what live matching would have found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from mamori.intel.matcher import (
    ColumnSource,
    IndicatorIndex,
    Matcher,
    _ipv4_int,
    _normalise,
    load_mapping,
)
from mamori.intel.patterns import Kind


def _prefilter(index: IndicatorIndex, mapping: Sequence[ColumnSource], columns: set[str]) -> pl.Expr:
    """An expression true for every row that may match (never false for a row that does)."""
    if index.expressions:
        return pl.lit(True)
    clauses: list[pl.Expr] = []
    for source in mapping:
        if source.column not in columns:
            continue
        column = pl.col(source.column)
        table = index.exact.get(source.kind)
        if table is not None and table.height:
            values = table["value"].unique().to_list()
            if source.kind == Kind.IP:
                # IPv6 may be written in several forms: let every IPv6 value through to the exact stage.
                clauses.append(column.str.strip_chars().is_in(values) | column.str.contains(":", literal=True))
            elif source.kind == Kind.DOMAIN or source.extract is not None:
                # A superset test on substrings: parent domains, hash lists, paths.
                clauses.append(column.str.to_lowercase().str.contains_any(values, ascii_case_insensitive=True))
            else:
                clauses.append(_normalise(column, source.kind).is_in(values))
        if source.kind == Kind.IP and index.cidr4:
            ip = _ipv4_int(column.str.strip_chars())
            for prefix, nets in index.cidr4.items():
                clauses.append(
                    (ip // (1 << (32 - prefix))).cast(pl.UInt32).is_in(nets["net"].to_list()).fill_null(False)
                )
        if source.kind == Kind.IP and index.cidr6:
            clauses.append(column.str.contains(":", literal=True))
    if not clauses:
        return pl.lit(False)
    return pl.any_horizontal(clauses).fill_null(False)


def retro_hunt(
    indicators: Iterable[Any],
    events: pl.LazyFrame | pl.DataFrame,
    *,
    mapping: Sequence[ColumnSource] | None = None,
) -> pl.DataFrame:
    """Matches of indicators (store records or ``IndicatorInput``) in stored events, as live matching."""
    index = IndicatorIndex.build(indicators)
    matcher = Matcher(index, mapping if mapping is not None else load_mapping())
    lazy = events.lazy()
    names = set(lazy.collect_schema().names())
    wanted: list[str] = [c for c in ("_uid", "_time") if c in names]
    wanted += sorted({s.column for s in matcher.mapping if s.column in names and s.kind in matcher.kinds})
    candidates = lazy.filter(_prefilter(index, matcher.mapping, names)).select(wanted).collect()
    return matcher.match(candidates)
