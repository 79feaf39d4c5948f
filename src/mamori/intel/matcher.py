"""IOC matching over event batches: every observable in every mapped column against every indicator.

The work is columnar. Values of the mapped columns (``observables.yaml``) are gathered into one
long table of candidates (row, column, kind, normalised value), then:

- exact values (IPs, URLs, hashes, e-mail addresses, file names) meet the indicator table in one
  hash join per kind;
- domains are expanded to their parent domains first (``a.b.evil.example`` also looks up
  ``b.evil.example`` and ``evil.example``), on unique values only;
- IPv4 networks are matched by masking the address to each prefix length present and joining;
- the few indicators that are expressions (AND, LIKE, MATCHES, ...) are evaluated on the
  candidates of their kind.

No Python code runs per event; Python runs once per unique IPv6 value at most.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from mamori.intel.errors import IntelError, PatternNotSupported
from mamori.intel.patterns import Boolean, Comparison, Expression, Kind, compile_pattern, kind_of

MATCH_SCHEMA: dict[str, pl.DataType] = {
    "_uid": pl.Utf8(),
    "_time": pl.Datetime("ns", "UTC"),
    "indicator_id": pl.Utf8(),
    "indicator_name": pl.Utf8(),
    "sources": pl.Utf8(),
    "confidence": pl.Int64(),
    "kind": pl.Utf8(),
    "field": pl.Utf8(),
    "value": pl.Utf8(),
}
_EXTRACTS = {"basename", "hash_list", "url_host", "email_address"}
_INDICATOR_FRAME: dict[str, Any] = {
    "indicator_id": pl.Utf8,
    "pattern": pl.Utf8,
    "name": pl.Utf8,
    "sources": pl.Utf8,
    "confidence": pl.Int64,
    "pattern_type": pl.Utf8,
}
_SIMPLE = r"^\[\s*([a-z0-9-]+):([A-Za-z0-9_.'\-]+)\s*=\s*'([^'\\]*)'\s*\]$"


@dataclass(frozen=True)
class ColumnSource:
    """An event column holding observables of one kind, with the extraction to apply first."""

    column: str
    kind: Kind
    extract: str | None = None


def load_mapping(path: str | Path | None = None) -> tuple[ColumnSource, ...]:
    """Read which columns hold which observable kinds (``observables.yaml`` by default)."""
    if path is None:
        text = resources.files("mamori.intel").joinpath("observables.yaml").read_text(encoding="utf-8")
        where = "mamori/intel/observables.yaml"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    data = yaml.safe_load(text) or {}
    sources: list[ColumnSource] = []
    for kind_name, entries in data.items():
        try:
            kind = Kind(kind_name)
        except ValueError:
            raise IntelError(
                f"unknown observable kind {kind_name!r}", where=where, hint="use " + ", ".join(Kind)
            ) from None
        for entry in entries or []:
            if isinstance(entry, str):
                sources.append(ColumnSource(entry, kind))
            elif isinstance(entry, dict) and entry.get("extract") in _EXTRACTS and "column" in entry:
                sources.append(ColumnSource(str(entry["column"]), kind, str(entry["extract"])))
            else:
                raise IntelError(
                    f"bad entry {entry!r} under {kind_name}",
                    where=where,
                    hint="a column name or {column, extract}",
                )
    return tuple(sources)


@dataclass(frozen=True)
class IndicatorInput:
    """What the index needs of an indicator."""

    indicator_id: str
    pattern: str
    name: str = ""
    sources: str = ""
    confidence: int = 50
    pattern_type: str = "stix"


@dataclass(frozen=True)
class IndicatorIndex:
    """Indicators compiled for matching: exact-value tables, IPv4 networks, IPv6 networks, expressions."""

    meta: pl.DataFrame
    exact: dict[Kind, pl.DataFrame]
    cidr4: dict[int, pl.DataFrame]
    cidr6: list[tuple[ipaddress.IPv6Network, int]]
    expressions: list[tuple[int, Expression]]
    refused: list[tuple[str, str]]

    @property
    def size(self) -> int:
        """How many indicators the index holds."""
        return self.meta.height

    @classmethod
    def build(cls, indicators: Iterable[IndicatorInput] | Iterable[Any]) -> IndicatorIndex:
        """Compile indicators (``IndicatorInput`` or store ``IndicatorRecord`` values) into an index.

        Simple one-value patterns are parsed in bulk with column operations; the rest one by one.
        Patterns that cannot be matched are listed in ``refused`` with the reason.
        """
        items = list(indicators)
        frame = pl.DataFrame(
            {
                "indicator_id": [i.object_id if hasattr(i, "object_id") else i.indicator_id for i in items],
                "pattern": [i.pattern for i in items],
                "name": [i.name for i in items],
                "sources": [i.sources if isinstance(i.sources, str) else ", ".join(i.sources) for i in items],
                "confidence": pl.Series([int(i.confidence) for i in items], dtype=pl.Int64),
                "pattern_type": [i.pattern_type for i in items],
            },
            schema=_INDICATOR_FRAME,
        )
        return cls.from_frame(frame)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> IndicatorIndex:
        """Compile indicators given as a frame (id, pattern, name, sources, confidence, pattern_type)."""
        frame = frame.with_row_index("idx")
        meta = frame.select(
            "idx",
            "indicator_id",
            indicator_name=pl.col("name"),
            sources="sources",
            confidence=pl.col("confidence").cast(pl.Int64),
        )
        patterns = frame.select("idx", "pattern", stix=pl.col("pattern_type") == "stix")
        return cls._compile(meta, patterns)

    @classmethod
    def _compile(cls, meta: pl.DataFrame, patterns: pl.DataFrame) -> IndicatorIndex:
        parsed = patterns.with_columns(
            pl.col("pattern").str.strip_chars().str.extract_groups(_SIMPLE).alias("g")
        ).unnest("g")
        parsed = parsed.rename({"1": "otype", "2": "path", "3": "raw"})
        pairs = parsed.filter(pl.col("otype").is_not_null()).select("otype", "path").unique()
        kinds = pl.DataFrame(
            {
                "otype": pairs["otype"],
                "path": pairs["path"],
                "kind": [str(kind_of(t, p) or "") for t, p in zip(pairs["otype"], pairs["path"], strict=True)],
            },
            schema={"otype": pl.Utf8, "path": pl.Utf8, "kind": pl.Utf8},
        )
        parsed = parsed.join(kinds, on=["otype", "path"], how="left")
        fast = parsed.filter(
            pl.col("stix") & pl.col("kind").is_not_null() & (pl.col("kind") != "") & ~pl.col("raw").str.contains("/")
        )
        slow = parsed.join(fast.select("idx"), on="idx", how="anti")
        rows: list[pl.DataFrame] = []
        for kind in Kind:
            part = fast.filter(pl.col("kind") == str(kind))
            if part.height:
                rows.append(
                    pl.DataFrame({"value": _normalise_expr(part["raw"], kind), "idx": part["idx"]}).with_columns(
                        kind=pl.lit(str(kind))
                    )
                )
        cidr4_rows: list[tuple[int, int, int]] = []
        cidr6: list[tuple[ipaddress.IPv6Network, int]] = []
        expressions: list[tuple[int, Expression]] = []
        refused: list[tuple[str, str]] = []
        extra: list[tuple[str, str, int]] = []
        ids = meta["indicator_id"]
        for idx, pattern, stix in slow.select("idx", "pattern", "stix").iter_rows():
            try:
                compiled = compile_pattern(pattern, pattern_type="stix" if stix else "other", where=ids[idx])
            except PatternNotSupported as exc:
                refused.append((ids[idx], exc.message))
                continue
            for atom in compiled.atoms:
                if atom.cidr:
                    network = ipaddress.ip_network(atom.value)
                    if isinstance(network, ipaddress.IPv4Network):
                        cidr4_rows.append(
                            (network.prefixlen, int(network.network_address) >> (32 - network.prefixlen), idx)
                        )
                    else:
                        cidr6.append((network, idx))
                else:
                    extra.append((str(atom.kind), atom.value, idx))
            expressions.extend((idx, e) for e in compiled.expressions)
        if extra:
            rows.append(
                pl.DataFrame(
                    {
                        "value": [e[1] for e in extra],
                        "idx": pl.Series([e[2] for e in extra], dtype=pl.UInt32),
                        "kind": [e[0] for e in extra],
                    }
                )
            )
        exact_all = pl.concat([r.select("kind", "value", "idx") for r in rows]) if rows else None
        exact: dict[Kind, pl.DataFrame] = {}
        if exact_all is not None:
            for kind in Kind:
                table = exact_all.filter(pl.col("kind") == str(kind)).select("value", "idx").unique()
                if table.height:
                    exact[kind] = table
        cidr4: dict[int, pl.DataFrame] = {}
        for prefix in sorted({r[0] for r in cidr4_rows}):
            chosen = [r for r in cidr4_rows if r[0] == prefix]
            cidr4[prefix] = pl.DataFrame(
                {
                    "net": pl.Series([r[1] for r in chosen], dtype=pl.UInt32),
                    "idx": pl.Series([r[2] for r in chosen], dtype=pl.UInt32),
                }
            )
        return cls(meta=meta, exact=exact, cidr4=cidr4, cidr6=cidr6, expressions=expressions, refused=refused)

    def kinds(self) -> set[Kind]:
        """The observable kinds any indicator of the index looks for."""
        found = set(self.exact)
        if self.cidr4 or self.cidr6:
            found.add(Kind.IP)
        found.update(_expression_kinds(e) for _, e in self.expressions)
        return found


def _expression_kinds(expression: Expression) -> Kind:
    return expression.kind if isinstance(expression, Comparison) else _expression_kinds(expression.terms[0])


def _normalise_expr(values: pl.Series, kind: Kind) -> pl.Series:
    frame = pl.DataFrame({"v": values})
    return frame.select(_normalise(pl.col("v"), kind))["v"]


def _normalise(expr: pl.Expr, kind: Kind) -> pl.Expr:
    """Vectorised twin of ``patterns.normalise`` (IPv6 compression is done separately on unique values)."""
    text = expr.str.strip_chars()
    if kind == Kind.IP:
        return text
    text = text.str.to_lowercase()
    if kind == Kind.DOMAIN:
        return text.str.strip_chars_end(".")
    if kind == Kind.URL:
        return text.str.strip_chars_end("/")
    return text


def _extract(expr: pl.Expr, how: str | None) -> pl.Expr:
    if how == "basename":
        return expr.str.replace(r"^.*[\\/]", "")
    if how == "url_host":
        return expr.str.extract(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/]*@)?([^/:?#\[\]]+)", 1)
    if how == "email_address":
        return expr.str.extract(r"([A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+)", 1)
    return expr


def candidates(events: pl.DataFrame, mapping: Sequence[ColumnSource], kinds: set[Kind]) -> pl.DataFrame:
    """The long table (row, field, kind, value) of normalised observables found in mapped columns."""
    parts: list[pl.DataFrame] = []
    present = set(events.columns)
    for source in mapping:
        if source.kind not in kinds or source.column not in present:
            continue
        column = events.get_column(source.column)
        if isinstance(column.dtype, pl.Categorical | pl.Enum):
            column = column.cast(pl.Utf8)
        if column.dtype != pl.Utf8:
            continue  # numbers and nested values hold no observables
        base = pl.DataFrame({"row": pl.Series(range(events.height), dtype=pl.UInt32), "v": column})
        if source.extract == "hash_list":
            values = base.select("row", v=pl.col("v").str.extract_all(r"[0-9A-Fa-f]{32,128}")).explode("v")
        else:
            values = base.select("row", v=_extract(pl.col("v"), source.extract))
        values = values.select(
            "row",
            field=pl.lit(source.column),
            kind=pl.lit(str(source.kind)),
            value=_normalise(pl.col("v"), source.kind),
        ).filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
        parts.append(values)
    if not parts:
        return pl.DataFrame(schema={"row": pl.UInt32, "field": pl.Utf8, "kind": pl.Utf8, "value": pl.Utf8})
    return pl.concat(parts)


def _ipv4_int(value: pl.Expr) -> pl.Expr:
    octets = value.str.split_exact(".", 3)
    total: pl.Expr | None = None
    for position in range(4):
        octet = octets.struct.field(f"field_{position}").cast(pl.UInt32, strict=False)
        shifted = octet * (1 << (8 * (3 - position)))
        total = shifted if total is None else total + shifted
    assert total is not None
    return total


def _domain_suffixes(values: pl.DataFrame, depth: int = 8) -> pl.DataFrame:
    unique = values.select("value").unique().with_columns(parts=pl.col("value").str.split("."))
    frames = [
        unique.filter(pl.col("parts").list.len() > i).select(
            "value", suffix=pl.col("parts").list.slice(i).list.join(".")
        )
        for i in range(depth)
    ]
    return pl.concat(frames)


def _like_regex(pattern: str) -> str:
    out = []
    for char in pattern:
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
    return "(?s)^" + "".join(out) + "$"


class Matcher:
    """Matches event batches against an indicator index, giving one row per (event, indicator)."""

    def __init__(self, index: IndicatorIndex, mapping: Sequence[ColumnSource] | None = None) -> None:
        self.index = index
        self.mapping = tuple(mapping) if mapping is not None else load_mapping()
        self.kinds = index.kinds()

    def match(self, events: pl.DataFrame) -> pl.DataFrame:
        """All matches in a batch: the event (``_uid``, ``_time``), the indicator, and the field and value."""
        cands = candidates(events, self.mapping, self.kinds)
        hits = self._hits(cands)
        if hits.height == 0:
            return pl.DataFrame(schema=MATCH_SCHEMA)
        hits = hits.unique(subset=["row", "idx"], keep="first", maintain_order=True)
        core = events.select(
            row=pl.int_range(0, events.height, dtype=pl.UInt32),
            _uid=pl.col("_uid") if "_uid" in events.columns else pl.lit(None, pl.Utf8),
            _time=pl.col("_time") if "_time" in events.columns else pl.lit(None, pl.Datetime("ns", "UTC")),
        )
        joined = hits.join(core, on="row").join(self.index.meta, on="idx")
        return joined.select(list(MATCH_SCHEMA)).cast(MATCH_SCHEMA)  # type: ignore[arg-type]

    def _hits(self, cands: pl.DataFrame) -> pl.DataFrame:
        frames: list[pl.DataFrame] = []
        for kind, table in self.index.exact.items():
            of_kind = cands.filter(pl.col("kind") == str(kind))
            if of_kind.height == 0:
                continue
            if kind == Kind.IP:
                of_kind = self._compress_ipv6(of_kind)
            if kind == Kind.DOMAIN:
                suffixes = _domain_suffixes(of_kind)
                found = suffixes.join(table, left_on="suffix", right_on="value").select("value", "idx")
                frames.append(of_kind.join(found, on="value").select("row", "field", "kind", "value", "idx"))
            else:
                frames.append(of_kind.join(table, on="value").select("row", "field", "kind", "value", "idx"))
        ips = cands.filter(pl.col("kind") == str(Kind.IP))
        if self.index.cidr4 and ips.height:
            v4 = ips.with_columns(ip=_ipv4_int(pl.col("value"))).filter(pl.col("ip").is_not_null())
            for prefix, table in self.index.cidr4.items():
                shifted = v4.with_columns(net=(pl.col("ip") // (1 << (32 - prefix))).cast(pl.UInt32))
                frames.append(shifted.join(table, on="net").select("row", "field", "kind", "value", "idx"))
        if self.index.cidr6 and ips.height:
            frames.append(self._ipv6_networks(ips))
        for idx, expression in self.index.expressions:
            rows = self._evaluate(expression, cands)
            if rows.height:
                frames.append(rows.with_columns(idx=pl.lit(idx, dtype=pl.UInt32)))
        frames = [f for f in frames if f.height]
        if not frames:
            return pl.DataFrame(
                schema={
                    "row": pl.UInt32,
                    "field": pl.Utf8,
                    "kind": pl.Utf8,
                    "value": pl.Utf8,
                    "idx": pl.UInt32,
                }
            )
        return pl.concat([f.select("row", "field", "kind", "value", "idx") for f in frames])

    @staticmethod
    def _compress_ipv6(values: pl.DataFrame) -> pl.DataFrame:
        v6 = values.filter(pl.col("value").str.contains(":", literal=True))
        if v6.height == 0:
            return values
        unique = v6["value"].unique().to_list()
        table = pl.DataFrame({"value": unique, "norm": [_compress(v) for v in unique]})
        return values.join(table, on="value", how="left").with_columns(value=pl.coalesce("norm", "value")).drop("norm")

    def _ipv6_networks(self, ips: pl.DataFrame) -> pl.DataFrame:
        unique = ips.filter(pl.col("value").str.contains(":", literal=True))["value"].unique().to_list()
        pairs: list[tuple[str, int]] = []
        for text in unique:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            pairs.extend((text, idx) for network, idx in self.index.cidr6 if address in network)
        if not pairs:
            return pl.DataFrame(
                schema={
                    "row": pl.UInt32,
                    "field": pl.Utf8,
                    "kind": pl.Utf8,
                    "value": pl.Utf8,
                    "idx": pl.UInt32,
                }
            )
        table = pl.DataFrame({"value": [p[0] for p in pairs], "idx": pl.Series([p[1] for p in pairs], dtype=pl.UInt32)})
        return ips.join(table, on="value")

    def _evaluate(self, expression: Expression, cands: pl.DataFrame) -> pl.DataFrame:
        """Rows (with the field and value that satisfied it) where an expression holds."""
        if isinstance(expression, Comparison):
            of_kind = cands.filter(pl.col("kind") == str(expression.kind))
            if expression.kind == Kind.IP:
                of_kind = self._compress_ipv6(of_kind)
            condition = _condition(expression, of_kind)
            return (
                of_kind.filter(condition).unique(subset=["row"], keep="first").select("row", "field", "kind", "value")
            )
        results = [self._evaluate(term, cands) for term in expression.terms]
        if expression.operator == "OR":
            return pl.concat(results).unique(subset=["row"], keep="first")
        current = results[0]
        for other in results[1:]:
            current = current.join(other.select("row"), on="row", how="semi")
        return current


def _compress(text: str) -> str:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text.lower()


def _condition(comparison: Comparison, values: pl.DataFrame) -> pl.Expr:
    kind, operator = comparison.kind, comparison.operator
    constants = [_compress(v) if kind == Kind.IP and ":" in v else _normal_text(kind, v) for v in comparison.values]
    value = pl.col("value")
    condition: pl.Expr
    if operator in ("=", "IN"):
        condition = value.is_in(constants)
    elif operator == "!=":
        condition = ~value.is_in(constants)
    elif operator == "LIKE":
        condition = value.str.contains(_like_regex(constants[0]))
    elif operator == "MATCHES":
        condition = value.str.contains(comparison.values[0])
    elif operator == "ISSUBSET":
        network = ipaddress.ip_network(comparison.values[0], strict=False)
        if isinstance(network, ipaddress.IPv4Network):
            ip = _ipv4_int(value)
            low, high = int(network.network_address), int(network.broadcast_address)
            condition = ip.is_between(low, high).fill_null(False)
        else:
            members = [v for v in values["value"].unique().to_list() if _in_network(v, network)]
            condition = value.is_in(members)
    else:
        ops = {
            ">": value > constants[0],
            "<": value < constants[0],
            ">=": value >= constants[0],
            "<=": value <= constants[0],
        }
        condition = ops[operator]
    return ~condition if comparison.negated else condition


def _normal_text(kind: Kind, value: str) -> str:
    from mamori.intel.patterns import normalise

    return normalise(kind, value)


def _in_network(text: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(text) in network
    except ValueError:
        return False


def flatten_terms(expression: Expression) -> list[Comparison]:
    """The comparisons inside an expression (for explanations)."""
    if isinstance(expression, Comparison):
        return [expression]
    return [c for term in expression.terms for c in flatten_terms(term)]


__all__ = [
    "Boolean",
    "ColumnSource",
    "IndicatorIndex",
    "IndicatorInput",
    "Matcher",
    "candidates",
    "load_mapping",
]
