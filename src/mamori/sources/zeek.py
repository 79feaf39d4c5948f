"""Zeek logs: the TSV form (``#separator``, ``#path``, ``#fields`` headers) and the JSON form
(``LogAscii::use_json``), for every log type (conn, dns, http, ssl, x509, smb_files, dce_rpc,
kerberos, rdp, files, notice...).

Fields keep Zeek's names (``ts``, ``uid``, ``id.orig_h``, ``id.resp_p``, ``query``, ``qtype_name``,
``method``, ``host``, ``uri``, ``user_agent``...); ``zeek_path`` names the log (from ``#path``, the
JSON ``_path``, or the file name) so the log-source mapping can route ``service: dns``, ``http``...
TSV ``-`` is null and ``(empty)`` an empty string; sets stay as Zeek writes them (comma-separated).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions, ReadResult, SourceSpec
from mamori.sources.batch import (
    ERROR,
    PARSERS,
    finish_json,
    head_text,
    json_fields,
    parse_records,
    read_json,
)
from mamori.sources.text import iter_line_chunks
from mamori.sources.timeparse import parse_auto

SOURCE = "zeek"


def _path_from_name(name: str) -> str | None:
    match = re.match(r"^([a-z_0-9]+?)(?:[.\-]\d|\.log|\.json)", Path(name).name)
    return match.group(1) if match else None


def parse_zeek_json(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Zeek JSON records (``ts`` is epoch seconds or ISO 8601)."""
    frame = finish_json(json_fields(texts), options, ("ts", "@timestamp"), ("_system_name",), zone="UTC")
    if "_path" in frame.columns:
        frame = frame.with_columns(pl.col("_path").alias("zeek_path"))
    return frame


def tsv_frame(lines: list[str], fields: list[str], separator: str, unset: str, empty: str) -> pl.DataFrame:
    """Split Zeek TSV data lines into the ``#fields`` columns, in bulk; a line with the wrong number of
    columns gets an ``_error``."""
    column = pl.Series("t", lines, dtype=pl.Utf8)
    parts = column.str.split(separator)
    counts = parts.list.len()
    frame = pl.DataFrame({"p": parts}).select([
        pl.col("p").list.get(i, null_on_oob=True).alias(name) for i, name in enumerate(fields)
    ])
    frame = frame.with_columns([
        pl.when(pl.col(c) == unset).then(None).when(pl.col(c) == empty).then(pl.lit("")).otherwise(pl.col(c)).alias(c)
        for c in fields
    ])
    error = pl.select(pl.when(counts != len(fields)).then(
        pl.lit(f"expected {len(fields)} tab-separated columns (#fields), found ") + counts.cast(pl.Utf8))
        .otherwise(None)).to_series()
    return frame.with_columns(error.alias(ERROR))


def read_zeek(path: Path, options: ReadOptions) -> Iterator[ReadResult]:
    """Read a Zeek log, TSV with headers or JSON lines."""
    from mamori.sources.text import read_head

    if head_text(read_head(path)).startswith("{"):
        default_path = _path_from_name(path.name)
        for result in read_json(path, options, parse_zeek_json, source=SOURCE):
            frame = result.frame
            if frame.height and default_path:
                base = frame["zeek_path"] if "zeek_path" in frame.columns else pl.lit(None, dtype=pl.Utf8)
                frame = frame.with_columns(pl.coalesce(base, pl.lit(default_path)).alias("zeek_path"))
            yield ReadResult(frame, result.problems)
        return
    origin = str(path)
    header = _Header(log_path=_path_from_name(path.name))
    for first, lines in iter_line_chunks(path, options.encoding):
        header = yield from _tsv_lines(lines, first, header, origin, options)


def read_zeek_lines(lines: Sequence[str], name: str, options: ReadOptions) -> Iterator[ReadResult]:
    """Read a Zeek log given as its lines (a tailed or received chunk, the file's ``#`` header lines
    first) as ``read_zeek`` reads the file ``name``: offsets are line numbers counted from 1, the origin
    is ``name``, the kind of log comes from ``#path`` or the name. No file is written."""
    first_text = next((line for line in lines if line.strip()), "")
    if not first_text.lstrip().startswith("{"):
        yield from _tsv_lines(lines, 1, _Header(log_path=_path_from_name(name)), name, options)
        return
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    default_path = _path_from_name(name)
    for start in range(0, len(numbered), options.batch_rows):
        part = numbered[start:start + options.batch_rows]
        result = parse_records([t for _, t in part], parse_zeek_json, source=SOURCE, origin=name,
                               offsets=[n for n, _ in part], options=options)
        frame = result.frame
        if frame.height and default_path:
            base = frame["zeek_path"] if "zeek_path" in frame.columns else pl.lit(None, dtype=pl.Utf8)
            frame = frame.with_columns(pl.coalesce(base, pl.lit(default_path)).alias("zeek_path"))
        yield ReadResult(frame, result.problems)


def _tsv_lines(lines: Sequence[str], first: int, header: _Header, origin: str,
               options: ReadOptions) -> Generator[ReadResult, None, _Header]:
    """Batches of the data lines of a TSV log's lines (numbered from ``first``), the ``#`` lines updating
    the header on the way; returns the header as the last line left it."""
    segment: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        if line.startswith("#"):
            if segment:
                yield from _parse_segment(segment, header, origin, options)
                segment = []
            header = header.update(line)
        elif line.strip():
            segment.append((first + i, line))
    if segment:
        yield from _parse_segment(segment, header, origin, options)
    return header


@dataclass(frozen=True)
class _Header:
    """The state the ``#`` lines of a Zeek TSV log set for the data lines that follow them."""

    fields: tuple[str, ...] = ()
    log_path: str | None = None
    separator: str = "\t"
    unset: str = "-"
    empty: str = "(empty)"

    def update(self, line: str) -> _Header:
        """Return the state after one header line."""
        if line.startswith("#separator"):
            return replace(self, separator=line[11:].strip().encode().decode("unicode_escape") or "\t")
        key, found, value = line[1:].partition(self.separator)
        if not found:
            key, _, value = line[1:].partition(" ")
        value = value.strip()
        parts = tuple(value.split(self.separator) if self.separator in value else value.split())
        if key == "fields":
            return replace(self, fields=parts)
        if key == "path":
            return replace(self, log_path=value)
        if key == "unset_field":
            return replace(self, unset=value)
        if key == "empty_field":
            return replace(self, empty=value)
        return self


def _parse_tsv(series: pl.Series, options: ReadOptions, header: _Header) -> pl.DataFrame:
    if not header.fields:
        return pl.DataFrame({ERROR: ["no #fields header before this line"] * len(series)})
    frame = tsv_frame(series.to_list(), list(header.fields), header.separator, header.unset, header.empty)
    if "ts" in frame.columns:
        frame = frame.with_columns(parse_auto(frame["ts"], "UTC").alias(schema.TIME))
    return frame.with_columns(pl.lit(header.log_path, dtype=pl.Utf8).alias("zeek_path"))


def _parse_segment(segment: list[tuple[int, str]], header: _Header, origin: str,
                   options: ReadOptions) -> Iterator[ReadResult]:
    parser = functools.partial(_parse_tsv, header=header)
    for start in range(0, len(segment), options.batch_rows):
        part = segment[start:start + options.batch_rows]
        yield parse_records([t for _, t in part], parser, source=SOURCE, origin=origin,
                            offsets=[n for n, _ in part], options=options)


def sniff_zeek(head: bytes, name: str) -> bool:
    """Claim Zeek TSV (``#separator`` header) and Zeek JSON (``uid`` with ``id.orig_h``)."""
    text = head_text(head)
    return text.startswith("#separator") or ('"id.orig_h"' in text and '"uid"' in text)


PARSERS[SOURCE] = parse_zeek_json
SPECS = [SourceSpec(SOURCE, "Zeek logs (TSV with headers, JSON)", read_zeek, sniff_zeek, priority=80)]
