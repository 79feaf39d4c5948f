"""IBM QRadar Log Event Extended Format (LEEF 1.0 and 2.0), bare or over syslog.

Fields: ``leef_version``, ``deviceVendor``, ``deviceProduct``, ``deviceVersion``, ``eventId``, and the
attributes as sent (``src``, ``dst``, ``srcPort``, ``usrName``, ``devTime``...). LEEF 1.0 separates
attributes by tab; LEEF 2.0 names its separator in the header (a character or ``x09``/``0x09``).
Time from ``devTime`` (epoch milliseconds or ``MMM dd yyyy HH:mm:ss``), else the syslog header.
"""

from __future__ import annotations

import polars as pl

from mamori.events import schema
from mamori.sources.base import ReadOptions
from mamori.sources.batch import ERROR, error_where, groups, head_text, hstack, text_source
from mamori.sources.kv import pairs_frame
from mamori.sources.syslog_header import syslog_parts
from mamori.sources.timeparse import parse_epoch, with_formats

SOURCE = "leef"
_F = r"((?:[^|\\]|\\.)*)"
LEEF = (r"(?s)LEEF:(?P<leef_version>[12]\.0)\|(?P<deviceVendor>" + _F[1:-1] + r")\|(?P<deviceProduct>" + _F[1:-1]
        + r")\|(?P<deviceVersion>" + _F[1:-1] + r")\|(?P<eventId>" + _F[1:-1] + r")\|(?P<rest>.*)$")


def parse_leef(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse LEEF records; records without a LEEF header get an ``_error``."""
    header = syslog_parts(texts, options)
    parts = groups(texts, LEEF)
    rest = parts["rest"].fill_null("")
    v2 = parts["leef_version"] == "2.0"
    delimiter = pl.select(pl.when(v2).then(rest.str.extract(r"^([^|]*)\|", 1)).otherwise(pl.lit("\t"))).to_series()
    delimiter = delimiter.str.replace(r"^(?:0?x)?([0-9a-fA-F]{2})$", "HEX$1")
    attributes = pl.select(pl.when(v2).then(rest.str.replace(r"^[^|]*\|", "")).otherwise(rest)).to_series()
    delimiter = delimiter.fill_null("\t")
    pieces = []
    for sep in delimiter.unique().to_list():
        mask = delimiter == sep
        char = chr(int(sep[3:], 16)) if sep.startswith("HEX") else (sep or "\t")
        split = attributes.filter(mask).str.split(char).list.eval(
            pl.element().filter(pl.element().str.contains("=", literal=True)))
        pieces.append(pl.DataFrame({"_i": mask.arg_true(), "kv": split}))
    lists = pl.concat(pieces).sort("_i")["kv"]
    frame = pairs_frame(lists, unquote=False)
    frame = hstack(parts.drop("rest"), frame)
    times = header[schema.TIME]
    if "devTime" in frame.columns:
        text_time = with_formats(frame["devTime"], ("%b %d %Y %H:%M:%S%.f %Z", "%b %d %Y %H:%M:%S%.f %z"),
                                 ("%b %d %Y %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"), options.default_timezone)
        times = parse_epoch(frame["devTime"]).fill_null(text_time).fill_null(times)
    error = error_where(parts["leef_version"].is_null(), "no LEEF header")
    return frame.with_columns(times.alias(schema.TIME), header["hostname"].alias(schema.HOST), error.alias(ERROR))


def sniff_leef(head: bytes, name: str) -> bool:
    """Claim files whose first line carries a LEEF header."""
    return "LEEF:" in head_text(head).split("\n", 1)[0]


SPECS = [text_source(SOURCE, "IBM QRadar LEEF 1.0 / 2.0", parse_leef, sniff_leef, priority=60)]
