"""Sysmon for Linux: the XML events it writes to syslog (``<Event><System>...<EventID>1</EventID>...
<EventData><Data Name="Image">/usr/bin/curl</Data>...``), with or without the syslog header.

Fields: ``EventID``, ``Computer``, ``Channel`` (``Linux-Sysmon/Operational``), ``ProcessID`` and every
``<Data Name=...>`` under its name (``Image``, ``CommandLine``, ``ParentImage``, ``User``,
``TargetFilename``, ``DestinationIp``...), XML entities decoded. Time from ``UtcTime`` (UTC), else the
``SystemTime`` attribute.
"""

from __future__ import annotations

import re

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import ERROR, error_where, head_text, hstack, nulls, text_source
from mamori.sources.kv import pairs_frame, widen
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import parse_iso

SOURCE = "sysmon_linux"
DATA_START = '<Data Name="'
DATA_REST = r'^[^"]+">[^<]*</Data>'
DATA = DATA_START + DATA_REST[1:]  # an element: r'<Data Name="[^"]+">[^<]*</Data>'
ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))
# The <System> fields, each the first group of the first match of its regex in the event text.
SYSTEM = (
    ("EventID", r"<EventID>(\d+)</EventID>"),
    ("Computer", r"<Computer>([^<]*)</Computer>"),
    ("Channel", r"<Channel>([^<]*)</Channel>"),
    ("ProcessID", r'<Execution ProcessID="(\d+)"'),
    ("SystemTime", r'SystemTime="([^"]+)"'),
)
TEMPLATES = 16  # kinds of event (their first row's <Data> names) read the fast way in one batch, at most
TEMPLATE_ROWS = 32  # rows of a kind, at least, for its template to be worth its fixed cost
_ELEMENT = re.compile(DATA_REST[1:])

# A column of the frame ``data_fields`` builds: (name, full-height values, (first row, place in that row)).
Column = tuple[str, pl.Series, tuple[int, int]]


def unescape_xml(column: pl.Expr) -> pl.Expr:
    """Decode the five XML entities in a text column."""
    for entity, char in ENTITIES:
        column = column.str.replace_all(entity, char, literal=True)
    return column


def data_fields(texts: pl.Series, kinds: pl.Series | None = None) -> pl.DataFrame:
    """The ``<Data Name="K">V</Data>`` elements of each event as columns, as ``pairs_frame`` reads ``K=V``.

    Every element starts with ``<Data Name="``, so the texts are cut there with a plain split: the pieces
    after the first that go on like an element (``K">V</Data>``) are the elements the element regex finds
    (but for the odd cases read by that regex itself, see ``_regex_fields``). Events of one kind list the
    same names in the same order: the rows of a kind (``kinds``: the EventID, read here when not given)
    that are its first row's template are read as a whole (``_template_rows``), cheaper than cutting every
    piece at its ``">`` and pivoting the pairs, which the other rows take (``_piece_columns``). Same
    columns, values and order either way."""
    if texts.str.contains(DATA_START + ">", literal=True).any():
        return _regex_fields(texts)  # an element may span a cut (a name ending with ``<Data Name=``)
    n = len(texts)
    sections = texts.str.splitn(DATA_START, 2).struct.field("field_1")  # from the first element on
    left = sections.is_not_null()  # rows holding an element that no template has read
    if kinds is None:
        kinds = texts.str.extract(SYSTEM[0][1], 1)
    groups = (pl.DataFrame({"k": kinds,
                            "r": pl.int_range(n, eager=True, dtype=pl.UInt32)})
              .filter(left).group_by("k", maintain_order=True).agg("r").head(TEMPLATES)["r"])
    found: dict[str, tuple[list[pl.Series], list[pl.Series], tuple[int, int]]] = {}  # rows, values, place
    for rows in groups:
        template = _template(str(sections[int(rows[0])])) if len(rows) >= TEMPLATE_ROWS else None
        if template is None:
            continue
        names, tail = template
        read, values = _template_rows(sections if len(rows) == n else sections.gather(rows), names, tail)
        if not len(read):
            continue  # the kind's first row is not read so (a name or value holds a ">"), nor the others
        read = read if len(rows) == n else rows.gather(read)
        first = int(read[0])
        for place, (name, value) in enumerate(zip(names, values, strict=True)):
            read_by, values_of, where = found.get(name, ([], [], (first, place)))
            found[name] = ([*read_by, read], [*values_of, value], min(where, (first, place)))
        left = left.scatter(read, False)
    columns: dict[str, Column] = {}
    for name, (read_by, values_of, where) in found.items():
        if len(read_by) == 1 and len(read_by[0]) == n:  # every row, in order
            full = values_of[0].alias(name)
        else:
            full = nulls(n, name).scatter(pl.concat(read_by), pl.concat(values_of))
        _add(columns, name, full, where)
    if left.any():
        rest = _piece_columns(texts, left)
        if rest is None:
            return _regex_fields(texts)
        for place, (column, first) in enumerate(rest):
            _add(columns, column.name, column, (first, place))
    return pl.DataFrame([column for _, column, _ in sorted(columns.values(), key=lambda c: c[2])])


def _add(columns: dict[str, Column], name: str, values: pl.Series, where: tuple[int, int]) -> None:
    """Put a full-height column in ``columns``, merged with the one of that name already there (the two
    hold values in different rows) and placed where its name is first met."""
    if name in columns:
        _, kept, place = columns[name]
        values, where = kept.fill_null(values), min(place, where)
    columns[name] = (name, values, where)


def _template(section: str) -> tuple[list[str], str] | None:
    """The names of the elements of an event's text from its first element on, and what follows the last
    element, when each piece is an element, each name is met once and holds no ``=``; else None."""
    pieces = section.split(DATA_START)
    if not all(_ELEMENT.match(piece) for piece in pieces):
        return None
    names = [piece.split('">', 1)[0] for piece in pieces]
    if len(set(names)) != len(names) or any("=" in name for name in names):
        return None
    return names, pieces[-1].split("</Data>", 1)[1]


def _template_rows(sections: pl.Series, names: list[str], tail: str) -> tuple[pl.Series, list[pl.Series]]:
    """The rows whose text from the first element on (``sections``) is the elements ``names`` one after the
    other, then ``tail``; and the values of those elements in those rows, one Series per name.

    A section is cut at each ">": a value holding none ends the piece after the name's (``V</Data``); those
    pieces joined and cut at each ``</Data`` give the values. The row is the template's when the template's
    text with those values put in is the section and no value holds a "<" (then its pieces read as
    ``_piece_columns`` reads them). A few passes over each row's text where cutting each element out of it
    and then its value out of the element cost a pass per element."""
    m = len(names)
    parts = pl.DataFrame({"s": sections}).with_columns(pl.col("s").str.split(">").alias("p"))
    joined = pl.concat_str([pl.col("p").list.get(2 * i + 1, null_on_oob=True) for i in range(m)])
    frame = parts.select("s", joined.str.split("</Data").alias("v"))
    frame = frame.select("s", pl.col("v").list.len().alias("n"),
                         *[pl.col("v").list.get(i, null_on_oob=True).alias(str(i)) for i in range(m)])
    rebuilt = [pl.lit(f'{names[0]}">')]
    for i in range(m):
        after = f'</Data>{DATA_START}{names[i + 1]}">' if i < m - 1 else f"</Data>{tail}"
        rebuilt += [pl.col(str(i)), pl.lit(after)]
    values = pl.concat_str([pl.col(str(i)) for i in range(m)])
    fits = frame.select(
        (pl.col("n") == m + 1) & (pl.concat_str(rebuilt) == pl.col("s")) & ~values.str.contains("<", literal=True)
    ).to_series().fill_null(False)
    kept = frame.filter(fits)
    return fits.arg_true(), [kept[str(i)] for i in range(m)]


def _piece_columns(texts: pl.Series, rows: pl.Series) -> list[tuple[pl.Series, int]] | None:
    """The elements of the ``rows`` of ``texts`` (the pieces after a ``<Data Name="`` that go on like an
    element) as full-height columns, each with the row it is first met in, in the order first met; None
    when a name holds an ``=`` (the element regex reads those, see ``_regex_fields``)."""
    cuts = texts.filter(rows).str.split(DATA_START).list.slice(1)
    pieces = pl.DataFrame({"p": cuts, "_r": rows.arg_true()}).explode("p").drop_nulls("p")
    pieces = pieces.filter(pieces["p"].str.contains(DATA_REST))
    split = pieces["p"].str.splitn('">', 2)  # a name holds no quote: the first ``">`` ends it
    names = split.struct.field("field_0")
    if names.str.contains("=", literal=True).any():
        return None
    values = split.struct.field("field_1").str.splitn("</Data>", 2).struct.field("field_0")  # V holds no "<"
    wide = widen(pl.DataFrame({"_r": pieces["_r"], "key": names, "value": values}), len(texts), unquote=False)
    # a key's column holds a value in the rows holding the key, from the first on
    return [(column, int(column.is_not_null().arg_max() or 0)) for column in wide.get_columns()]


def _regex_fields(texts: pl.Series) -> pl.DataFrame:
    """``data_fields`` by the element regex itself: names holding "=" (``K=V`` is cut there) and texts
    where an element may span a cut (its name ending with ``<Data Name=`` and the next cut's quote
    closing it)."""
    return pairs_frame(texts.str.extract_all(DATA).list.eval(
        pl.element().str.replace(r'^<Data Name="([^"]+)">([^<]*)</Data>$', "${1}=${2}")), unquote=False)


def system_fields(texts: pl.Series) -> pl.DataFrame:
    """The ``<System>`` fields of each event (``SYSTEM``), null where their element is missing."""
    return pl.DataFrame([texts.str.extract(pattern, 1).alias(name) for name, pattern in SYSTEM])


def parse_sysmon_linux(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Sysmon for Linux XML events; lines with no ``<Event>`` are errors."""
    system = system_fields(texts)
    frame = data_fields(texts, system["EventID"])  # events of one EventID list the same <Data> names
    entities = frame.select(pl.all().str.contains("&", literal=True).any()).row(0) if frame.width else ()
    frame = frame.with_columns([unescape_xml(pl.nth(i)) for i, has in enumerate(entities) if has])
    frame = hstack(system, frame.select([c for c in frame.columns if c not in system.columns]))
    utc = frame["UtcTime"] if "UtcTime" in frame.columns else pl.Series([None] * len(texts), dtype=pl.Utf8)
    times = parse_iso(utc, "UTC")
    if times.null_count():
        times = times.fill_null(parse_iso(frame["SystemTime"], "UTC"))
    if times.null_count():  # the syslog header's time, read only when some event has no time of its own
        times = times.fill_null(syslog_parts(texts, options)[schema.TIME])
    error = error_where(frame["EventID"].is_null(), "no Sysmon <Event> XML")
    return frame.with_columns(times.alias(schema.TIME), frame["Computer"].alias(schema.HOST), error.alias(ERROR))


def sniff_sysmon_linux(head: bytes, name: str) -> bool:
    """Claim syslog files holding Sysmon for Linux XML events."""
    text = head_text(head)
    return "<Event>" in text and "Linux-Sysmon" in text


SPECS = [text_source(SOURCE, "Sysmon for Linux (XML events in syslog)", parse_sysmon_linux, sniff_sysmon_linux,
                     priority=85)]
